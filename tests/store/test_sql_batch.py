"""Group commit (``SqlStore.batch``): writes share one commit, and each fails alone."""

from __future__ import annotations

import pytest

from provisor.store.base import Change, Query, UniquenessViolation


def names(store, tenant_id):
    return sorted(r.data["userName"] for r in store.search(tenant_id, "User", Query(count=100)).resources)


def test_writes_in_a_batch_commit_together_and_a_failure_rolls_back_alone(sql_store, tenant_id):
    with sql_store.batch():
        a = sql_store.create(tenant_id, "User", {"userName": "a"})
        with pytest.raises(UniquenessViolation):
            sql_store.create(tenant_id, "User", {"userName": "A"})
        with pytest.raises(RuntimeError):
            sql_store.update(tenant_id, "User", a.id, lambda cur: (_ for _ in ()).throw(RuntimeError("no")))
        sql_store.update(tenant_id, "User", a.id, lambda cur: Change({**cur.data, "displayName": "Ay"}))
        sql_store.create(tenant_id, "User", {"userName": "b"})
    assert names(sql_store, tenant_id) == ["a", "b"]
    got = sql_store.get(tenant_id, "User", a.id)
    assert got.data["displayName"] == "Ay" and got.version == 2


def test_an_exception_escaping_the_batch_stores_nothing(sql_store, tenant_id):
    with pytest.raises(KeyError), sql_store.batch():
        sql_store.create(tenant_id, "User", {"userName": "lost"})
        raise KeyError("boom")
    assert names(sql_store, tenant_id) == []


def test_nested_batches_are_one(sql_store, tenant_id):
    with sql_store.batch():
        with sql_store.batch():
            sql_store.create(tenant_id, "User", {"userName": "inner"})
        sql_store.create(tenant_id, "User", {"userName": "outer"})
    assert names(sql_store, tenant_id) == ["inner", "outer"]


def counts(store, tenant_id):
    """(kept count, kept deletions) of the tenant's Users, and the real COUNT."""
    from sqlalchemy import text

    with store.engine.connect() as conn:
        kept = conn.execute(
            text("SELECT n, removed FROM resource_counts WHERE tenant_id = :t AND resource_type = 'User'"),
            {"t": tenant_id},
        ).one()
        real = conn.execute(
            text("SELECT COUNT(*) FROM resources WHERE tenant_id = :t AND resource_type = 'User'"),
            {"t": tenant_id},
        ).scalar_one()
    return (kept[0], kept[1]), real


def test_a_batch_writes_each_count_once_and_failed_writes_add_nothing(sql_store, tenant_id, recorder):
    """The kept counts (``resource_counts``: resources and deletions) are deferred to the commit:
    one UPDATE per tenant and type for the whole batch, and a write that rolls back to its
    savepoint takes its share back with it."""
    before = [sql_store.create(tenant_id, "User", {"userName": f"old{i}"}).id for i in range(3)]
    assert counts(sql_store, tenant_id) == ((3, 0), 3)
    recorder.clear()
    with sql_store.batch():
        for i in range(5):
            sql_store.create(tenant_id, "User", {"userName": f"new{i}"})
        with pytest.raises(UniquenessViolation):
            sql_store.create(tenant_id, "User", {"userName": "NEW0"})
        sql_store.delete(tenant_id, "User", before[0])
        with pytest.raises(RuntimeError):
            with sql_store.connections.write() as tx:  # a write that deletes, then fails
                sql_store._count(tx, tenant_id, "User", -1)
                raise RuntimeError("rolled back")
        sql_store.delete(tenant_id, "User", before[1])
    updates = [
        s for s, _ in recorder.mentioning("resource_counts") if s.lstrip().upper().startswith("UPDATE")
    ]
    assert len(updates) == 1, updates
    assert counts(sql_store, tenant_id) == ((6, 2), 6)
    # outside a batch each write is its own transaction: still counted at its commit
    sql_store.delete(tenant_id, "User", before[2])
    assert counts(sql_store, tenant_id) == ((5, 3), 5)


def test_a_write_that_ends_the_whole_transaction_fails_the_whole_batch(tmp_path):
    """SQLITE_FULL may make SQLite roll back the batch's whole transaction, not just the statement:
    then no write of the batch may be reported stored (their replies wait for the commit), the
    later writes of the batch fail too, and the batch itself raises StoreFull."""
    import sqlite3

    from sqlalchemy import Engine, event

    from provisor.store.base import StoreFull
    from provisor.store.sql import SqlStore

    db = tmp_path / "full.db"
    SqlStore(f"sqlite:///{db}").close()
    with sqlite3.connect(db) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]

    def cap(dbapi_connection, record):
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 8:d}")

    event.listen(Engine, "connect", cap)
    try:
        store = SqlStore(f"sqlite:///{db}")
        tenant = store.create_tenant("acme").id
        outcomes: list[str] = []
        with pytest.raises(StoreFull), store.batch():
            store.create(tenant, "User", {"userName": "one"})
            outcomes.append("one")
            try:
                store.create(tenant, "User", {"userName": "big", "displayName": "x" * 200_000})
                outcomes.append("big")
            except StoreFull:
                outcomes.append("big refused")
            try:
                store.create(tenant, "User", {"userName": "three"})
                outcomes.append("three")
            except StoreFull:
                outcomes.append("three refused")
        # SQLite ended the transaction: nothing of the batch is stored, whatever seemed to succeed
        assert outcomes == ["one", "big refused", "three refused"]
        assert names(store, tenant) == []
        store.create(tenant, "User", {"userName": "after"})  # the store goes on
        assert names(store, tenant) == ["after"]
        store.close()
    finally:
        event.remove(Engine, "connect", cap)
