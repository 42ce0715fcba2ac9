"""SqlStore as a TenantStore: tenants, Secret Token hashes, cascades, isolation."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from provisor.store.base import Member, Query, ResourceNotFound, StoreError, TenantNotFound, UnknownMember
from provisor.store.sql import SqlStore
from provisor.store.sql.tables import emails, memberships, resources, tokens


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def counts(store: SqlStore) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (resources, emails, memberships, tokens)
        }


def test_token_by_hash_returns_token_and_tenant(sql_store: SqlStore) -> None:
    t = sql_store.create_tenant("contoso", {"compat": "entra"})
    info = sql_store.add_token("contoso", digest("pv_secret"), "pv_sec", "entra", None)  # by name works too
    token, tenant = sql_store.token_by_hash(digest("pv_secret")) or pytest.fail("token not found")
    assert token == info and tenant == t and token.expires is None
    with pytest.raises(StoreError):
        sql_store.add_token(t.id, digest("pv_secret"), "pv_sec", "again", None)
    with pytest.raises(TenantNotFound):
        sql_store.add_token("nope", digest("other"), "p", "l", None)


def test_touch_and_revoke(sql_store: SqlStore) -> None:
    t = sql_store.create_tenant("contoso")
    info = sql_store.add_token(t.id, digest("a"), "p", "l", datetime(2031, 1, 1, tzinfo=UTC))
    when = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
    sql_store.touch_token(info.id, when)
    assert sql_store.list_tokens(t.id)[0].last_used == when
    first = sql_store.revoke_token(info.id)
    assert sql_store.revoke_token(info.id).revoked == first.revoked  # idempotent


def test_delete_tenant_cascades_and_spares_others(sql_store: SqlStore) -> None:
    gone = sql_store.create_tenant("gone").id
    kept = sql_store.create_tenant("kept").id
    for tenant in (gone, kept):
        sql_store.add_token(tenant, digest(tenant), "p", "l", None)
        u = sql_store.create(tenant, "User", {"userName": "a", "emails": [{"value": "a@x"}]})
        sql_store.create(tenant, "Group", {"displayName": "g"}, [Member(u.id)])
    before = counts(sql_store)
    sql_store.delete_tenant("gone")
    assert counts(sql_store) == {name: n // 2 for name, n in before.items()}


def test_tenant_isolation(sql_store: SqlStore) -> None:
    a = sql_store.create_tenant("a").id
    b = sql_store.create_tenant("b").id
    ua = sql_store.create(a, "User", {"userName": "x"})
    with pytest.raises(UnknownMember):
        sql_store.create(b, "Group", {"displayName": "g"}, [Member(ua.id)])
    with pytest.raises(ResourceNotFound):
        sql_store.update(b, "User", ua.id, lambda cur: pytest.fail("must not be called"))
    with pytest.raises(ResourceNotFound):
        sql_store.delete(b, "User", ua.id)
    assert sql_store.search(b, "User", Query()).total == 0
    assert sql_store.search(a, "User", Query()).total == 1


def test_resources_need_an_existing_tenant(sql_store: SqlStore) -> None:
    with pytest.raises(TenantNotFound):
        sql_store.create("no-such-tenant", "User", {"userName": "x"})


def test_settings_merge_and_remove(sql_store: SqlStore) -> None:
    sql_store.create_tenant("t", {"a": 1, "b": 2})
    assert dict(sql_store.update_settings("t", {"b": None, "c": 3}).settings) == {"a": 1, "c": 3}
    with pytest.raises(TenantNotFound):
        sql_store.update_settings("nope", {})
