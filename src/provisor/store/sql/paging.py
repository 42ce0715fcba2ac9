"""Deep pages by key: where the previous page of a listing ended.

A client that reads a whole tenant by ``startIndex`` (Okta's imports, the engine's deletion
check, any SCIM client without cursors) asks for page k with ``OFFSET k * count``, and SQLite
walks k * count index entries to skip them: reading 100,000 users in pages of 1,000 walks five
million entries, and the last pages cost ~10 ms each where the first costs ~1.

An unfiltered, unsorted listing is in primary-key order, and a new resource always gets a primary
key above every existing one, so the rows before a position move only when a resource of that
tenant and type is deleted. ``resource_counts.removed`` counts those deletions. When a page ends,
the store notes "offset ``end`` starts after primary key ``pk``, as of ``removed``"; a request
for that offset while ``removed`` is unchanged reads ``pk > :pk LIMIT :count`` instead, which is
the same page at the cost of the first one. Any deletion makes every note of that tenant and type
stale, and the page is read by OFFSET again (and noted afresh).

The notes are per process and bounded; a missing note only costs the OFFSET it would have saved.
This holds where primary keys follow commit order, which SQLite's single writer guarantees.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PageStart:
    """Offset ``offset`` of a listing is the first row whose primary key is above ``after_pk``,
    as long as ``removed`` resources of its tenant and type is still the count of deletions."""

    after_pk: int
    removed: int


class PageCursors:
    """The most recent ``capacity`` page ends of unfiltered listings, shared by the threads of
    one store."""

    def __init__(self, capacity: int = 1024) -> None:
        self._capacity = capacity
        self._notes: OrderedDict[tuple[str, str, int], PageStart] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, tenant_id: str, resource_type: str, offset: int, removed: int) -> int | None:
        """The primary key that page ``offset`` starts after, if a note of it is still true."""
        key = (tenant_id, resource_type, offset)
        with self._lock:
            note = self._notes.get(key)
            if note is None:
                return None
            if note.removed != removed:
                del self._notes[key]
                return None
            self._notes.move_to_end(key)
            return note.after_pk

    def note(self, tenant_id: str, resource_type: str, offset: int, after_pk: int, removed: int) -> None:
        """Remember that offset ``offset`` starts after ``after_pk`` while ``removed`` holds."""
        key = (tenant_id, resource_type, offset)
        with self._lock:
            self._notes[key] = PageStart(after_pk, removed)
            self._notes.move_to_end(key)
            while len(self._notes) > self._capacity:
                self._notes.popitem(last=False)

    def __len__(self) -> int:
        return len(self._notes)
