"""The event loop's group commit: concurrent writes share a commit, each with its own outcome."""

from __future__ import annotations

import asyncio

import pytest

from provisor.server.writes import WriteBatcher
from provisor.store.base import Query, UniquenessViolation
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
