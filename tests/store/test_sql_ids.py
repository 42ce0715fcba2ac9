"""provisor.store.sql.ids: resource ids are RFC 9562 UUIDv7, time-ordered, in the dash-less form."""

from __future__ import annotations

import time
import uuid

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
