"""Snapshots of a file source: anchor -> content hash, in an SQLite file (stdlib ``sqlite3``).

One snapshot per read, identified by the watermark ``"<store id>:<snapshot id>"``. A read writes
its snapshot in one transaction that also marks it complete, only once every object has been
yielded; an abandoned or failed read leaves nothing usable behind. Passing a watermark back to
``read_changes`` is the engine's statement that the cycle which received it completed
(:class:`~provisor.engine.model.Source`), so that call is the commit: every other snapshot is then
dropped. A crash mid-cycle means the engine still holds the previous watermark, and the same
changes are diffed and yielded again.

Memory: per-object state lives in SQLite, one row (anchor, kind, hash, line) per object.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

from provisor.engine.model import SourceError

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " complete INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS entry (snapshot INTEGER NOT NULL, anchor TEXT NOT NULL,"
    " kind TEXT NOT NULL, hash TEXT NOT NULL, line INTEGER NOT NULL, PRIMARY KEY (snapshot, anchor))"
    " WITHOUT ROWID",
)


class DuplicateAnchor(Exception):
    """The anchor is already in the snapshot being written (``line`` is its first line)."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class SnapshotStore:
    """The snapshot file of one file source."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level="DEFERRED")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('store', ?)", (uuid.uuid4().hex,))
            conn.commit()
        except sqlite3.Error as exc:
            raise SourceError(f"cannot open the snapshot file {self.path}: {exc}") from None
        return conn

    def _store_id(self, conn: sqlite3.Connection) -> str:
        return str(conn.execute("SELECT value FROM meta WHERE key = 'store'").fetchone()[0])

    def begin(self, base: str | None) -> tuple[str, int | None, int]:
        """Start a read: ``(watermark, base snapshot, new snapshot)``.

        With a ``base`` watermark (the engine's commit of it) every other snapshot is dropped;
        without one (a full read) unfinished snapshots and all but the newest complete one are.
        """
        with contextlib.closing(self._connect()) as conn, conn:
            store = self._store_id(conn)
            base_id: int | None = None
            if base is not None:
                base_id = self._resolve(conn, store, base)
                stale = conn.execute("SELECT id FROM snapshot WHERE id != ?", (base_id,)).fetchall()
            else:
                stale = conn.execute(
                    "SELECT id FROM snapshot WHERE complete = 0 OR id < "
                    "(SELECT COALESCE(MAX(id), 0) FROM snapshot WHERE complete = 1)"
                ).fetchall()
            for (sid,) in stale:
                conn.execute("DELETE FROM entry WHERE snapshot = ?", (sid,))
                conn.execute("DELETE FROM snapshot WHERE id = ?", (sid,))
            new_id = conn.execute("INSERT INTO snapshot (complete) VALUES (0)").lastrowid
            assert new_id is not None
        return f"{store}:{new_id}", base_id, new_id

    def _resolve(self, conn: sqlite3.Connection, store: str, watermark: str) -> int:
        owner, _, number = watermark.partition(":")
        row = None
        if owner == store and number.isdigit():
            row = conn.execute("SELECT complete FROM snapshot WHERE id = ?", (int(number),)).fetchone()
        if row is None or not row[0]:
            raise SourceError(
                f"the watermark {watermark!r} names no complete snapshot in {self.path}; run a full read"
            )
        return int(number)

    def writer(self, base: int | None, new: int) -> SnapshotWriter:
        """A writer for snapshot ``new``, diffing against ``base``."""
        return SnapshotWriter(self._connect(), base, new)


class SnapshotWriter:
    """Records one read's objects and answers "did this change since the base snapshot?"."""

    def __init__(self, conn: sqlite3.Connection, base: int | None, new: int) -> None:
        self._conn = conn
        self._base = base
        self._new = new

    def record(self, kind: str, anchor: str, digest: str, line: int) -> bool:
        """Add one object; true when it is new or its hash differs from the base snapshot."""
        try:
            self._conn.execute(
                "INSERT INTO entry (snapshot, anchor, kind, hash, line) VALUES (?, ?, ?, ?, ?)",
                (self._new, anchor, kind, digest, line),
            )
        except sqlite3.IntegrityError:
            first = self._conn.execute(
                "SELECT line FROM entry WHERE snapshot = ? AND anchor = ?", (self._new, anchor)
            ).fetchone()
            raise DuplicateAnchor(int(first[0])) from None
        if self._base is None:
            return True
        row = self._conn.execute(
            "SELECT kind, hash FROM entry WHERE snapshot = ? AND anchor = ?", (self._base, anchor)
        ).fetchone()
        return row is None or tuple(row) != (kind, digest)

    def missing(self, kind: str) -> Iterator[str]:
        """Anchors of ``kind`` in the base snapshot that this read did not record as ``kind``."""
        if self._base is None:
            return
        cursor = self._conn.execute(
            "SELECT b.anchor FROM entry b WHERE b.snapshot = ? AND b.kind = ? AND NOT EXISTS "
            "(SELECT 1 FROM entry n WHERE n.snapshot = ? AND n.anchor = b.anchor AND n.kind = b.kind)"
            " ORDER BY b.anchor",
            (self._base, kind, self._new),
        )
        while rows := cursor.fetchmany(500):
            for (anchor,) in rows:
                yield str(anchor)

    def complete(self) -> None:
        """Mark the snapshot complete and commit it with every entry, atomically."""
        self._conn.execute("UPDATE snapshot SET complete = 1 WHERE id = ?", (self._new,))
        self._conn.commit()

    def close(self) -> None:
        """Close the connection; an uncommitted snapshot is rolled back."""
        self._conn.close()
