"""provisor.store.sql.ids: resource ids are RFC 9562 UUIDv7, time-ordered, in the dash-less form."""

from __future__ import annotations

import time
import uuid

import pytest

from provisor.store.base import Query, StoreError
from provisor.store.sql import SqlStore, resources
from provisor.store.sql.ids import new_id


def test_ids_are_uuid7_with_the_creation_time_first() -> None:
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000
    parsed = uuid.UUID(hex=made)
    assert made == parsed.hex and len(made) == 32 and made == made.lower()
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert before <= int(made[:12], 16) <= after


def test_ids_sort_by_creation_and_never_repeat() -> None:
    first = [new_id() for _ in range(2000)]
    time.sleep(0.002)
    later = [new_id() for _ in range(2000)]
    assert len(set(first + later)) == 4000
    assert max(first) < min(later)  # a later millisecond sorts after: creates append to the index


def test_a_create_whose_new_id_is_taken_takes_another(
    sql_store: SqlStore, tenant_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All but impossible (74 random bits in one millisecond), and still not an error: the store
    draws a new id. The same id twice in a row is an error of the store, never a wrong tenant."""
    first = sql_store.create(tenant_id, "User", {"userName": "a"})
    fresh = new_id()
    ids = iter([first.id, fresh])
    monkeypatch.setattr(resources, "new_id", lambda: next(ids))
    second = sql_store.create(tenant_id, "User", {"userName": "b"})
    assert second.id == fresh and sql_store.get(tenant_id, "User", fresh).data == {"userName": "b"}
    monkeypatch.setattr(resources, "new_id", lambda: first.id)
    with pytest.raises(StoreError, match="id was taken") as caught:
        sql_store.create(tenant_id, "User", {"userName": "c"})
    assert type(caught.value) is StoreError
    assert [r.data["userName"] for r in sql_store.search(tenant_id, "User", Query()).resources] == ["a", "b"]
