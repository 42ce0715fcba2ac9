"""Resource ids: UUIDv7 (RFC 9562 section 5.7), written as 32 lower-case hex digits.

A resource's ``id`` (RFC 7643 section 3.1) is assigned here, unique and never reused, opaque to
clients. A UUIDv7 leads with the creation time in milliseconds, so new ids sort after the ids
before them: a create inserts into the end of the ``(tenant, type, id)`` unique index instead of
a random leaf of it. With random UUIDv4 ids, each create of a group commit dirtied a different
leaf page of that index (read from disk, then written to the WAL at commit); time-ordered ids
took an in-process create on a 170,000-resource database from 300-380 us to 233-253 us (min of
five runs, three alternating pairs; docs/benchmarks.md). The 74 random bits keep ids
unguessable; tenants are isolated by the store, never by the id.
"""

from __future__ import annotations

import os
import time

_VERSION = 0x7 << 76
_VARIANT = 0b10 << 62
_RAND_B = (1 << 62) - 1


def new_id() -> str:
    """A new UUIDv7 as 32 hex digits (the dash-less form ids have always had here)."""
    ms = time.time_ns() // 1_000_000
    # One read of the system's randomness, split into rand_a and rand_b: 74 bits, as
    # ``secrets.randbits(74)`` reads and keeps them (10 bytes, the low 6 bits dropped), without
    # its two Python calls.
    rand = int.from_bytes(os.urandom(10)) >> 6
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | _VERSION | (rand >> 62) << 64 | _VARIANT | (rand & _RAND_B)
    return value.to_bytes(16).hex()  # 128 bits: f"{value:032x}", at half its cost
