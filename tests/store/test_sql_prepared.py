"""The hot path on DBAPI connections (store/sql/prepared.py): IN lists compiled per size, write
transactions that lock up front and roll back on any exception, kept connections that go back
to the pool."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.store.conftest import Recorder
from tests.store.test_sql_resources import bulk_users, dml_rows

from provisor.scim.filter.parser import parse_filter
from provisor.scim.schema.model import default_registry
from provisor.store.base import Change, Member, MemberDelta, Query, UniquenessViolation, UnknownMember
from provisor.store.sql import SqlStore
from provisor.store.sql.prepared import PreparedIn
from provisor.store.sql.tables import emails, memberships, resources


def count(store: SqlStore, table: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def ids_in(order: tuple[str, ...] | None) -> int:
    return sum(1 for name in order or () if name.startswith("id_"))


def test_in_lists_compile_per_power_of_two_and_pad(sql_store: SqlStore) -> None:
    resolve: PreparedIn = sql_store._members.resolve
    parts = resolve.parts({"tenant": "t"}, ["a", "b", "c"])
    assert len(parts) == 1
    statement, params = parts[0]
    assert ids_in(statement.order) == 4
    assert [params[f"id_{i}"] for i in range(4)] == ["a", "b", "c", "c"]
    long = resolve.parts({"tenant": "t"}, [str(i) for i in range(1100)])
    assert [ids_in(p[0].order) for p in long] == [512, 512, 128]
    assert long[0][0] is long[1][0]  # compiled once per size
    assert resolve.parts({"tenant": "t"}, []) == []


def test_member_deltas_across_chunks(sql_store: SqlStore, tenant_id: str, recorder: Recorder) -> None:
    ids = bulk_users(sql_store, tenant_id, 1800)
    group = sql_store.create(tenant_id, "Group", {"displayName": "G"}, [Member(i) for i in ids[:1200]])
    assert len(group.members or ()) == 1200
    recorder.clear()
    delta = MemberDelta(add=tuple(Member(i) for i in ids[1200:1800]), remove=tuple(ids[:700]))
    after = sql_store.update(
        tenant_id, "Group", group.id, lambda cur: Change(cur.data, delta), with_members=True
    )
    assert dml_rows(recorder, "memberships") == 1300
    assert [m.value for m in after.members or ()] == ids[700:1800]
    assert [m.value for m in sql_store.get(tenant_id, "Group", group.id).members or ()] == ids[700:1800]


def test_a_failing_updater_rolls_back_and_propagates_unchanged(sql_store: SqlStore, tenant_id: str) -> None:
    user = sql_store.create(tenant_id, "User", {"userName": "a", "emails": [{"value": "a@x.org"}]})
    boom = RuntimeError("boom")

    def updater(cur: Any) -> Change:
        raise boom

    for _ in range(3):  # the connection goes back clean each time
        with pytest.raises(RuntimeError) as caught:
            sql_store.update(tenant_id, "User", user.id, updater)
        assert caught.value is boom
    assert sql_store.get(tenant_id, "User", user.id).version == 1
    idle = [c for _, c in sql_store.connections._idle]
    assert idle and not any(c.in_transaction for c in idle)  # type: ignore[attr-defined]


def test_writes_are_all_or_nothing(sql_store: SqlStore, tenant_id: str) -> None:
    sql_store.create(tenant_id, "User", {"userName": "taken"})
    with pytest.raises(UniquenessViolation) as caught:
        sql_store.create(tenant_id, "User", {"userName": "TAKEN", "emails": [{"value": "x@y.org"}]})
    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
    with pytest.raises(UnknownMember):
        sql_store.create(tenant_id, "Group", {"displayName": "G"}, [Member("nope")])
    user = sql_store.create(tenant_id, "User", {"userName": "b", "emails": [{"value": "b@y.org"}]})

    def rename_and_clash(cur: Any) -> Change:
        return Change({"userName": "taken", "emails": [{"value": "other@y.org"}]})

    with pytest.raises(UniquenessViolation):
        sql_store.update(tenant_id, "User", user.id, rename_and_clash)
    assert count(sql_store, resources) == 2 and count(sql_store, emails) == 1
    assert sql_store.get(tenant_id, "User", user.id).data["userName"] == "b"


def test_writes_take_the_write_lock_up_front(sql_store: SqlStore, tenant_id: str) -> None:
    user = sql_store.create(tenant_id, "User", {"userName": "a"})
    other = sqlite3.connect(sql_store.engine.url.database or "", timeout=0, isolation_level=None)
    outcome: list[str] = []

    def updater(cur: Any) -> Change:
        try:  # the store has read the row: its transaction must already hold the write lock
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            outcome.append("free")
        except sqlite3.OperationalError as exc:
            outcome.append(str(exc))
        return Change({"userName": "b"})

    sql_store.update(tenant_id, "User", user.id, updater)
    other.close()
    assert outcome == ["database is locked"]


def test_kept_connections_are_bounded_and_returned_on_close(db_url: str) -> None:
    store = SqlStore(db_url)
    tenant = store.create_tenant("t").id
    made = store.create(tenant, "Group", {"displayName": "G"})

    def work(i: int) -> None:
        store.create(tenant, "User", {"userName": f"u{i}"})
        store.get(tenant, "Group", made.id)

    with ThreadPoolExecutor(max_workers=40) as pool:
        list(pool.map(work, range(400)))
    pool_ = store.engine.pool
    assert pool_.checkedout() == len(store.connections._idle) <= 4  # type: ignore[attr-defined]
    store.close()
    assert pool_.checkedout() == 0  # type: ignore[attr-defined]


def test_general_searches_load_members_in_their_transaction(sql_store: SqlStore, tenant_id: str) -> None:
    """Searches through SQLAlchemy run the prepared member statements on their own connection."""
    rt = default_registry().resource_type("Group")
    assert rt is not None
    ids = bulk_users(sql_store, tenant_id, 3)
    sql_store.create(tenant_id, "Group", {"displayName": "Sales"}, [Member(i) for i in ids])
    page = sql_store.search(tenant_id, "Group", Query(filter=parse_filter('displayName sw "sal"', rt)))
    assert [m.value for m in page.resources[0].members or ()] == ids
    assert count(sql_store, memberships) == 3
