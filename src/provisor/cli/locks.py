"""Telling SQLite's "database is locked" apart from other database failures, for one-line messages."""

from __future__ import annotations

import sqlite3


def is_locked(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was caused by, SQLite's "database is locked" (its busy timeout ran
    out), as the driver raises it or as SQLAlchemy wraps it."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, sqlite3.OperationalError) and "locked" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False
