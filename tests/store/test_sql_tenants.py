"""SqlStore as a TenantStore: tenants, Secret Token hashes, cascades, isolation."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from provisor.store.base import (
    InvalidTenantName,
    Member,
    Query,
    ResourceNotFound,
    StoreBusy,
    StoreError,
    TenantNotFound,
    UnknownMember,
)
from provisor.store.sql import SqlStore
from provisor.store.sql import tenants as tenants_sql
from provisor.store.sql.tables import emails, memberships, resources, tenants, tokens


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


def test_touch_without_waiting_is_busy_at_once_and_keeps_the_busy_timeout(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'touch.db'}", engine_options={"busy_timeout_ms": 4000})
    t = store.create_tenant("contoso")
    info = store.add_token(t.id, digest("a"), "p", "l", None)
    other = sqlite3.connect(tmp_path / "touch.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer
    started = time.monotonic()
    with pytest.raises(StoreBusy):
        store.touch_token(info.id, datetime(2026, 1, 1, tzinfo=UTC), wait=False)
    assert time.monotonic() - started < 2  # not the 4 s busy timeout
    other.execute("ROLLBACK")
    other.close()
    when = datetime(2026, 1, 2, tzinfo=UTC)
    store.touch_token(info.id, when, wait=False)
    assert store.list_tokens(t.id)[0].last_used == when
    # every connection the store keeps still waits its 4 s for other writes
    held = [store.connections.acquire() for _ in range(3)]
    try:
        assert {conn[1].execute("PRAGMA busy_timeout").fetchone()[0] for conn in held} == {4000}
    finally:
        for conn in held:
            store.connections.release(conn)
    store.close()


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


def test_a_mapping_setting_merges_into_the_stored_one(sql_store: SqlStore) -> None:
    sql_store.create_tenant("t", {"compat": {"a": False, "b": False}, "odd": "not a mapping"})
    changed = sql_store.update_settings("t", {"compat": {"b": True, "a": None}, "odd": {"x": 1}})
    assert dict(changed.settings) == {"compat": {"b": True}, "odd": {"x": 1}}
    assert dict(sql_store.get_tenant("t").settings) == dict(changed.settings)
    sql_store.update_settings("t", {"compat": None})
    assert dict(sql_store.get_tenant("t").settings) == {"odd": {"x": 1}}


def hand_edit(store: SqlStore, name: str, text: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(tenants.update().where(tenants.c.name == name).values(settings=text))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "they are not JSON: unexpected character"),
        ("", "they are not JSON: "),
        ("[1, 2]", "they are an array where a JSON object belongs"),
        ("null", "they are null where a JSON object belongs"),
        ('"entra"', "they are a string where a JSON object belongs"),
        ("7", "they are a number where a JSON object belongs"),
        ("true", "they are true or false where a JSON object belongs"),
    ],
)
def test_settings_that_cannot_be_read_are_told_not_raised(sql_store: SqlStore, text: str, why: str) -> None:
    """Every way of reading the tenant says why, with no settings, instead of failing (or reading a
    list as none: ``context_for`` would then allow any network)."""
    tenant = sql_store.create_tenant("t", {"allowed_networks": ["10.0.0.0/8"]})
    sql_store.create_tenant("other", {"trace": 5})
    token = sql_store.add_token(tenant.id, digest("tok"), "pvs_tok", "entra", None)
    hand_edit(sql_store, "t", text)
    found = sql_store.get_tenant("t")
    assert found.unreadable is not None and found.unreadable.startswith(why) and dict(found.settings) == {}
    listed = [(t.name, t.unreadable) for t in sql_store.list_tenants()]
    assert listed == [("other", None), ("t", found.unreadable)]
    by_hash = sql_store.token_by_hash(digest("tok"))
    assert by_hash is not None and by_hash[0].id == token.id and by_hash[1].unreadable == found.unreadable
    repaired = sql_store.update_settings("t", {"trace": 3})
    assert repaired.unreadable is None and dict(repaired.settings) == {"trace": 3}
    again = sql_store.get_tenant("t")
    assert again.unreadable is None and dict(again.settings) == {"trace": 3}


def test_concurrent_changes_of_different_switches_both_survive(
    sql_store: SqlStore, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two admins at once (`tenant set --compat A=off` and `--compat B=off`): the second change
    runs while the first has read the settings and not yet written them; neither is lost."""
    sql_store.create_tenant("t", {"compat": {"string_booleans": False}})
    other = SqlStore(db_url)
    failures: list[Exception] = []

    def second_change() -> None:
        try:
            other.update_settings("t", {"compat": {"free_type_labels": False}})
        except Exception as exc:  # reported by the test's thread
            failures.append(exc)

    second = threading.Thread(target=second_change)
    real_find = tenants_sql._find

    def find_then_let_the_other_in(conn: Any, key: str) -> Any:
        found = real_find(conn, key)
        if second.ident is None and threading.current_thread() is not second:
            second.start()
            # it waits for the write lock the first change holds, or (reading outside it) finishes
            second.join(timeout=2)
        return found

    monkeypatch.setattr(tenants_sql, "_find", find_then_let_the_other_in)
    try:
        sql_store.update_settings("t", {"compat": {"active_by_default": False}})
        second.join(timeout=60)
        assert not second.is_alive() and not failures, failures
    finally:
        other.close()
    assert dict(sql_store.get_tenant("t").settings["compat"]) == {
        "string_booleans": False,
        "active_by_default": False,
        "free_type_labels": False,
    }


@pytest.mark.parametrize(
    "name",
    ["", " ", "\t\n", "a\tb", "a\nb", "a\x00b", "a\x85b", "a\u2028b", "x" * 201, "d71e260a" * 4],
)
def test_create_tenant_refuses_bad_names(sql_store: SqlStore, name: str) -> None:
    with pytest.raises(InvalidTenantName):
        sql_store.create_tenant(name)
    assert sql_store.list_tenants() == []


def test_create_tenant_refuses_a_name_shaped_like_an_existing_id(sql_store: SqlStore) -> None:
    first = sql_store.create_tenant("first")
    with pytest.raises(InvalidTenantName):
        sql_store.create_tenant(first.id)
    assert [t.name for t in sql_store.list_tenants()] == ["first"]
    assert sql_store.create_tenant("x" * 200).name == "x" * 200


def test_an_id_wins_over_a_legacy_name_that_looks_like_it(sql_store: SqlStore) -> None:
    real = sql_store.create_tenant("real")
    with sql_store.engine.begin() as conn:  # a name stored before names were checked
        conn.execute(tenants.insert(), {"id": "f" * 32, "name": real.id, "settings": "{}", "created": 0})
    assert sql_store.get_tenant(real.id).name == "real"
    assert sql_store.update_settings(real.id, {"strict": True}).name == "real"
    sql_store.delete_tenant(real.id)
    assert [t.name for t in sql_store.list_tenants()] == [real.id]
