"""Taking the write lock without waiting (``SqlStore.try_write_lock``): None at once while another
connection holds it; held, the next write joins it; let go when no write comes; and the no-wait
connections it keeps never serve another write, which must still wait its busy timeout."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from provisor.store.base import Query, StoreBusy, UniquenessViolation
from provisor.store.sql import SqlStore


@contextmanager
def held_elsewhere(store: SqlStore) -> Iterator[sqlite3.Connection]:
    """Another connection (as another process's) holding the write lock until the end."""
    other = sqlite3.connect(store.engine.url.database or "", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


def lock_is_free(store: SqlStore) -> bool:
    other = sqlite3.connect(store.engine.url.database or "", timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


def names(store: SqlStore, tenant_id: str) -> list[str]:
    return sorted(r.data["userName"] for r in store.search(tenant_id, "User", Query(count=100)).resources)


def test_a_held_lock_is_none_at_once_not_after_the_busy_timeout(sql_store: SqlStore) -> None:
    assert sql_store.busy_timeout == 5.0
    with held_elsewhere(sql_store):
        started = time.monotonic()
        assert sql_store.try_write_lock() is None
        assert sql_store.try_write_lock() is None  # the kept no-wait connection, again
        assert time.monotonic() - started < 1
    lock = sql_store.try_write_lock()
    assert lock is not None
    with lock:
        pass
    assert lock_is_free(sql_store)


def test_the_first_write_joins_the_lock_and_commits_as_its_own(sql_store: SqlStore, tenant_id: str) -> None:
    lock = sql_store.try_write_lock()
    assert lock is not None
    assert not lock_is_free(sql_store)  # taken when asked, before any write
    with lock:
        sql_store.create(tenant_id, "User", {"userName": "a"})
        assert lock_is_free(sql_store)  # its commit ended the lock's transaction
        sql_store.create(tenant_id, "User", {"userName": "b"})  # a later write: its own
    assert names(sql_store, tenant_id) == ["a", "b"]


def test_a_failing_first_write_rolls_back_and_lets_the_lock_go(sql_store: SqlStore, tenant_id: str) -> None:
    sql_store.create(tenant_id, "User", {"userName": "a"})
    lock = sql_store.try_write_lock()
    assert lock is not None
    with lock:
        with pytest.raises(UniquenessViolation):
            sql_store.create(tenant_id, "User", {"userName": "A"})
        assert lock_is_free(sql_store)
    assert names(sql_store, tenant_id) == ["a"]


def test_a_batch_joins_the_lock(sql_store: SqlStore, tenant_id: str) -> None:
    lock = sql_store.try_write_lock()
    assert lock is not None
    with lock, sql_store.batch():
        sql_store.create(tenant_id, "User", {"userName": "a"})
        with pytest.raises(UniquenessViolation):
            sql_store.create(tenant_id, "User", {"userName": "A"})
        sql_store.create(tenant_id, "User", {"userName": "b"})
        assert not lock_is_free(sql_store)  # one transaction until the batch ends
    assert lock_is_free(sql_store)
    assert names(sql_store, tenant_id) == ["a", "b"]


def test_a_lock_no_write_takes_is_let_go_with_nothing_written(sql_store: SqlStore, tenant_id: str) -> None:
    lock = sql_store.try_write_lock()
    assert lock is not None
    with pytest.raises(ValueError), lock:
        raise ValueError("the request was refused before it wrote")
    assert lock_is_free(sql_store)
    assert names(sql_store, tenant_id) == []


def test_no_wait_connections_never_serve_other_writes(db_url: str) -> None:
    """A write outside a lock still waits for another writer's lock as configured, rather than
    failing at once with StoreBusy; a no-wait connection beyond the few kept goes back to the pool
    with its busy timeout restored."""
    store = SqlStore(db_url, engine_options={"busy_timeout_ms": 3000})
    tenant = store.create_tenant("t").id
    for _ in range(3):
        lock = store.try_write_lock()
        assert lock is not None
        with lock:
            pass
        with held_elsewhere(store):
            assert store.try_write_lock() is None
    with held_elsewhere(store) as other:
        threading.Timer(0.3, lambda: other.execute("ROLLBACK")).start()
        started = time.monotonic()
        store.create(tenant, "User", {"userName": "waited"})  # the Timer's thread lets go first
        assert time.monotonic() - started >= 0.2
    conns = store.connections
    taken = [conns._acquire_nowait() for _ in range(3)]  # as three threads at once would
    for conn in taken:
        conns._release_nowait(conn)
    assert len(conns._nowait) == 2
    wait = taken[-1][1].cursor().execute("PRAGMA busy_timeout").fetchone()[0]  # the one given back
    assert wait == 3000
    store.close()
    reopened = SqlStore(db_url)
    assert names(reopened, tenant) == ["waited"]
    reopened.close()


def test_a_write_inside_a_lock_of_another_thread_waits_as_usual(sql_store: SqlStore, tenant_id: str) -> None:
    """The lock is offered to its own thread's writes only: another thread's write waits for it
    (its busy timeout), then goes through once the lock's transaction ends."""
    lock = sql_store.try_write_lock()
    assert lock is not None
    outcome: list[object] = []

    def elsewhere() -> None:
        try:
            outcome.append(sql_store.create(tenant_id, "User", {"userName": "other"}).data["userName"])
        except StoreBusy as exc:  # pragma: no cover - the failure this test looks for
            outcome.append(exc)

    with lock:
        thread = threading.Thread(target=elsewhere)
        thread.start()
        time.sleep(0.2)
        assert outcome == []
        sql_store.create(tenant_id, "User", {"userName": "mine"})
    thread.join()
    assert outcome == ["other"]
    assert names(sql_store, tenant_id) == ["mine", "other"]
