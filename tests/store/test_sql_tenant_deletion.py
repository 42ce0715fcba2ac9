"""A tenant deleted in steps (``store/sql/tenant_deletion``): the write lock is free between them,
a stopped deletion leaves a marked, consistent tenant that refuses tokens and settings, and
running it again finishes it; the other tenants are untouched."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from provisor.store.base import DeletionProgress, Member, TenantDeleting, TenantNotFound
from provisor.store.sql import SqlStore, steps
from provisor.store.sql.tables import emails, memberships, request_traces, resource_counts, resources, tokens

BIG = 2 * steps.BATCH + 500  # members of the big group: three ranges of keys


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SqlStore]:
    # every statement its own step, and no pause: the steps are what is tested, not their timing
    monkeypatch.setattr(steps, "STEP_SECONDS", 0.0)
    monkeypatch.setattr(steps, "PAUSE_SECONDS", 0.0)
    s = SqlStore(f"sqlite:///{tmp_path / 'p.db'}")
    yield s
    s.close()


def fill(store: SqlStore, name: str, users: int) -> str:
    """A tenant with ``users`` Users (each with an email), one group of them all, a group holding
    that group, a token and a request trace."""
    tenant = store.create_tenant(name, {"trace": 9}).id
    store.add_token(tenant, digest(name), "p", "l", None)
    with store.batch():
        ids = [
            store.create(tenant, "User", {"userName": f"u{i}", "emails": [{"value": f"u{i}@x"}]}).id
            for i in range(users)
        ]
    big = store.create(tenant, "Group", {"displayName": "all"}, [Member(i) for i in ids])
    store.create(tenant, "Group", {"displayName": "outer"}, [Member(big.id, type="Group"), Member(ids[0])])
    when = datetime.now(UTC)
    store.add_trace(
        tenant, time=when, method="GET", target="/Users", status=200, request=None, response=None, keep=9
    )
    return tenant


def rows(store: SqlStore, tenant: str) -> dict[str, int]:
    """The rows of each table that belong to ``tenant``."""
    mine = select(resources.c.pk).where(resources.c.tenant_id == tenant).scalar_subquery()
    queries = {
        "resources": select(func.count()).select_from(resources).where(resources.c.tenant_id == tenant),
        "emails": select(func.count()).select_from(emails).where(emails.c.resource_pk.in_(mine)),
        "memberships": select(func.count())
        .select_from(memberships)
        .where(memberships.c.group_pk.in_(mine) | memberships.c.member_pk.in_(mine)),
        "tokens": select(func.count()).select_from(tokens).where(tokens.c.tenant_id == tenant),
        "traces": select(func.count())
        .select_from(request_traces)
        .where(request_traces.c.tenant_id == tenant),
        "counts": select(func.count())
        .select_from(resource_counts)
        .where(resource_counts.c.tenant_id == tenant),
    }
    with store.engine.connect() as conn:
        return {name: conn.execute(q).scalar_one() for name, q in queries.items()}


def dangling(store: SqlStore) -> int:
    """Memberships or emails whose resource is gone (none, ever)."""
    pks = select(resources.c.pk).scalar_subquery()
    with store.engine.connect() as conn:
        return sum(
            conn.execute(select(func.count()).select_from(t).where(~c.in_(pks))).scalar_one()
            for t, c in (
                (memberships, memberships.c.group_pk),
                (memberships, memberships.c.member_pk),
                (emails, emails.c.resource_pk),
            )
        )


def test_the_write_lock_is_free_between_steps_and_a_big_group_goes_in_ranges(store: SqlStore) -> None:
    gone = fill(store, "gone", BIG)
    kept = fill(store, "kept", 3)
    before = rows(store, kept)
    assert before["traces"] == 1
    path = store.engine.url.database
    assert path is not None
    members_seen: list[int] = []
    heard: list[DeletionProgress] = []

    def between(step: DeletionProgress) -> None:
        heard.append(step)
        # another process takes the write lock at once, without waiting: the step let it go
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            members_seen.append(other.execute("SELECT count(*) FROM memberships").fetchone()[0])
            other.execute("ROLLBACK")
        finally:
            other.close()

    store.delete_tenant("gone", progress=between)

    assert rows(store, gone) == dict.fromkeys(before, 0)
    assert rows(store, kept) == before
    assert dangling(store) == 0
    with pytest.raises(TenantNotFound):
        store.get_tenant("gone")
    # the big group's members went a range at a time, never more than BATCH in one step
    drops = [a - b for a, b in zip(members_seen, members_seen[1:], strict=False)]
    assert max(drops) <= steps.BATCH and len(members_seen) >= 3
    # progress counts the tenant's resources (BIG users, 2 groups) up to all of them
    total = BIG + 2
    assert {s.total for s in heard} == {total} and heard[-1].deleted == total
    assert [s.deleted for s in heard] == sorted(s.deleted for s in heard)


def test_a_stopped_deletion_leaves_a_marked_consistent_tenant_that_a_second_run_finishes(
    store: SqlStore,
) -> None:
    gone = fill(store, "gone", BIG)
    kept = fill(store, "kept", 3)
    before = rows(store, kept)
    calls = 0

    def stop_at_the_second(step: DeletionProgress) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.delete_tenant("gone", progress=stop_at_the_second)

    marked = store.get_tenant("gone")
    assert marked.deleting is not None
    assert [t.deleting is not None for t in store.list_tenants()] == [True, False]
    left = rows(store, gone)
    assert left["tokens"] == 0 and 0 < left["memberships"] < BIG + 2 and left["resources"] == BIG + 2
    assert dangling(store) == 0
    # its token is gone and no new one, setting or namesake is taken
    assert store.token_by_hash(digest("gone")) is None
    with pytest.raises(TenantDeleting, match="being deleted"):
        store.add_token("gone", digest("new"), "p", "l", None)
    with pytest.raises(TenantDeleting):
        store.update_settings(gone, {"trace": 5})
    with pytest.raises(TenantDeleting, match="name is taken"):
        store.create_tenant("gone")
    assert store.get_tenant("gone").settings == marked.settings

    store.delete_tenant(gone)  # by id, the second time

    assert rows(store, gone) == dict.fromkeys(before, 0)
    assert rows(store, kept) == before and dangling(store) == 0
    assert store.create_tenant("gone").deleting is None  # the name is free again


def test_what_a_server_writes_while_the_deletion_runs_is_deleted_too(store: SqlStore) -> None:
    """A server's token cache honours a token up to a second after it is deleted: a User and a
    membership written between two steps go with the tenant."""
    gone = fill(store, "gone", 5)
    written: list[str] = []

    def write_between(step: DeletionProgress) -> None:
        if not written:
            user = store.create(gone, "User", {"userName": "late", "emails": [{"value": "late@x"}]})
            store.create(gone, "Group", {"displayName": "late group"}, [Member(user.id)])
            written.append(user.id)

    store.delete_tenant("gone", progress=write_between)

    assert written
    assert set(rows(store, gone).values()) == {0}
    assert dangling(store) == 0


def test_unknown_tenant(store: SqlStore) -> None:
    with pytest.raises(TenantNotFound):
        store.delete_tenant("nobody")


def test_a_tenant_being_deleted_counts_the_resources_it_still_holds(store: SqlStore) -> None:
    """Its kept counts go only in the deletion's last step: until then the rows are counted."""
    gone = fill(store, "gone", BIG)
    kept = fill(store, "kept", 3)

    def stop_once_some_are_deleted(step: DeletionProgress) -> None:
        if step.deleted:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.delete_tenant("gone", progress=stop_once_some_are_deleted)

    by_type = select(resources.c.resource_type, func.count()).group_by(resources.c.resource_type)
    with store.engine.connect() as conn:
        left = {kind: n for kind, n in conn.execute(by_type.where(resources.c.tenant_id == gone))}
    assert 0 < sum(left.values()) < BIG + 2
    assert store.count_resources(gone) == left
    assert store.count_resources(kept) == {"User": 3, "Group": 2}
