"""The event loop's group commit: concurrent writes share a commit, each with its own outcome."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from provisor.server.writes import WriteBatcher
from provisor.store.base import Query, StoreBusy, UniquenessViolation
from provisor.store.sql import SqlStore


@pytest.fixture
def store(tmp_path):
    s = SqlStore(f"sqlite:///{tmp_path / 'w.db'}")
    yield s
    s.close()


def test_concurrent_writes_batch_and_fail_independently(store):
    tenant = store.create_tenant("t").id
    sizes: list[int] = []
    batcher = WriteBatcher(store, observe=sizes.append)

    async def main():
        jobs = [
            batcher.run(lambda n=n: store.create(tenant, "User", {"userName": n}))
            for n in ["u1", "u2", "U1", "u3"]
        ]
        return await asyncio.gather(*jobs, return_exceptions=True)

    results = asyncio.run(main())
    assert [type(r).__name__ for r in results] == [
        "StoredResource",
        "StoredResource",
        "UniquenessViolation",
        "StoredResource",
    ]
    assert isinstance(results[2], UniquenessViolation)
    assert sizes == [4]  # one commit for all four
    stored = sorted(r.data["userName"] for r in store.search(tenant, "User", Query()).resources)
    assert stored == ["u1", "u2", "u3"]


def test_a_failed_commit_fails_every_write_of_the_batch(store):
    tenant = store.create_tenant("t").id

    class FailingCommit:
        def __init__(self, inner):
            self.inner = inner

        def batch(self):
            outer = self.inner.batch()

            class Ctx:
                def __enter__(self_):
                    outer.__enter__()

                def __exit__(self_, *exc):
                    outer.__exit__(RuntimeError, RuntimeError("disk full"), None)  # roll back
                    raise RuntimeError("disk full")

            return Ctx()

    batcher = WriteBatcher(FailingCommit(store))

    async def main():
        jobs = [batcher.run(lambda n=n: store.create(tenant, "User", {"userName": n})) for n in ["x", "y"]]
        return await asyncio.gather(*jobs, return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) for r in results)
    assert store.search(tenant, "User", Query()).total == 0


class LockAfter:
    """A store whose write lock is taken by another writer for the first ``busy`` tries."""

    def __init__(self, inner: SqlStore, busy: int) -> None:
        self.inner = inner
        self.busy = busy
        self.tries = 0

    def try_write_lock(self):
        self.tries += 1
        return None if self.tries <= self.busy else self.inner.try_write_lock()

    def batch(self):
        return self.inner.batch()


def test_only_taking_the_lock_is_tried_again_never_an_operation(store):
    """The lock is busy for three tries: the writes wait, then each runs once (a failing one
    too, with its own error), in one batch."""
    tenant = store.create_tenant("t").id
    runs: list[str] = []
    sizes: list[int] = []
    locking = LockAfter(store, busy=3)
    batcher = WriteBatcher(locking, observe=sizes.append)

    def create(name: str):
        runs.append(name)
        return store.create(tenant, "User", {"userName": name})

    async def main():
        jobs = [batcher.run(lambda n=n: create(n)) for n in ["a", "b", "A"]]
        return await asyncio.gather(*jobs, return_exceptions=True)

    results = asyncio.run(main())
    assert locking.tries == 4
    assert runs == ["a", "b", "A"] and sizes == [3]
    assert isinstance(results[2], UniquenessViolation)
    assert sorted(r.data["userName"] for r in store.search(tenant, "User", Query()).resources) == ["a", "b"]


def test_the_loop_runs_on_while_another_writer_holds_the_lock(store):
    """A real second connection holds the lock for 0.3 s: the loop keeps ticking meanwhile (the
    write waits off it), and the write runs once, as soon as the lock is released."""
    tenant = store.create_tenant("t").id
    other = sqlite3.connect(store.engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    runs: list[str] = []
    batcher = WriteBatcher(store)

    def create():
        runs.append("x")
        return store.create(tenant, "User", {"userName": "x"})

    async def main():
        loop = asyncio.get_running_loop()
        started = loop.time()
        loop.call_later(0.3, other.execute, "ROLLBACK")
        write = asyncio.ensure_future(batcher.run(create))
        gaps = []
        while not write.done():
            before = loop.time()
            await asyncio.sleep(0.005)
            gaps.append(loop.time() - before)
        return await write, loop.time() - started, max(gaps)

    created, took, longest_gap = asyncio.run(main())
    other.close()
    assert created.data["userName"] == "x" and runs == ["x"]
    assert took >= 0.3
    assert longest_gap < 0.2  # the lock held 0.3 s and no tick was held up that long


def test_writes_that_waited_the_busy_timeout_fail_busy_and_never_run(store):
    """Each write waits the busy timeout from its own arrival: the first gives up (StoreBusy,
    never run), the one that came later gets the lock once it is free."""
    tenant = store.create_tenant("t").id
    other = sqlite3.connect(store.engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    runs: list[str] = []
    batcher = WriteBatcher(store, busy_timeout=0.3)

    def create(name: str):
        runs.append(name)
        return store.create(tenant, "User", {"userName": name})

    async def main():
        loop = asyncio.get_running_loop()
        loop.call_later(0.45, other.execute, "ROLLBACK")
        first = asyncio.ensure_future(batcher.run(lambda: create("first")))
        await asyncio.sleep(0.25)
        second = asyncio.ensure_future(batcher.run(lambda: create("second")))
        return await asyncio.gather(first, second, return_exceptions=True)

    first, second = asyncio.run(main())
    other.close()
    assert isinstance(first, StoreBusy)
    assert second.data["userName"] == "second"
    assert runs == ["second"]
    assert [r.data["userName"] for r in store.search(tenant, "User", Query()).resources] == ["second"]


def test_an_eager_write_runs_at_once_when_the_lock_is_free_and_waits_off_the_loop_when_not(store):
    """``run_eagerly`` (a request's trace): in the same turn of the loop, without a flush, when
    the lock is free; while another writer holds it, queued like any write, then run once."""
    tenant = store.create_tenant("t").id
    sizes: list[int] = []
    batcher = WriteBatcher(store, observe=sizes.append)
    other = sqlite3.connect(store.engine.url.database, isolation_level=None)

    async def main():
        now = await batcher.run_eagerly(lambda: store.create(tenant, "User", {"userName": "now"}))
        assert sizes == []  # no flush: run in place
        other.execute("BEGIN IMMEDIATE")
        asyncio.get_running_loop().call_later(0.2, other.execute, "ROLLBACK")
        later = await batcher.run_eagerly(lambda: store.create(tenant, "User", {"userName": "later"}))
        return now, later

    now, later = asyncio.run(main())
    other.close()
    assert (now.data["userName"], later.data["userName"]) == ("now", "later")
    assert sizes == [1]
