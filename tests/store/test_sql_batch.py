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
