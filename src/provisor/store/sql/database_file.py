"""The SQLite file a store opened, as a readiness check sees it.

A pooled connection answers a read from its page cache while SQLite's WAL index says nothing
changed, so a file deleted, moved away, replaced by another (a backup copied over it) or
overwritten under a running server still answers ``/readyz``'s read, while every request that
needs a page not cached fails. :meth:`DatabaseFile.check` looks at the file itself: it is still
the file at the path the store opened (the same device and inode), it starts with SQLite's header,
and a new connection can read the tenants table. It is a cheap look, not ``doctor``'s
``quick_check``: bytes overwritten past the header are found when a request reads them.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from provisor.store.base import StoreUnavailable
from provisor.store.sql.engine import rw_uri

#: Seconds the check's own connection waits for a lock (a read in WAL mode takes none but in
#: recovery): short, as the check runs on the server's event loop.
_CHECK_TIMEOUT = 0.5


#: The first bytes of every SQLite database file (its header's magic string).
_HEADER = b"SQLite format 3\x00"


class DatabaseFile:
    """The file of an SQLite store, remembered when the store opened it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # The header is read through a descriptor held until :meth:`close`, never one opened and
        # closed at each check: closing any descriptor of the file drops every POSIX lock the
        # process holds on it, SQLite's among them, and another process then takes this one's
        # WAL for its own to checkpoint and delete (its writes went to a WAL no one else read).
        self._fd = os.open(path, os.O_RDONLY)
        found = os.fstat(self._fd)
        self._identity = (found.st_dev, found.st_ino)
        self._uri = rw_uri(str(path.resolve()))

    def close(self) -> None:
        """Let go of the file (after the store's connections are closed)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @classmethod
    def of(cls, url: str) -> DatabaseFile | None:
        """The file of the SQLite URL ``url``; None for an in-memory database or a ``file:`` URI."""
        database = make_url(url).database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return cls(Path(database))

    def check(self) -> None:
        """Raise :class:`StoreUnavailable` unless the file at the path is the one opened and a
        new connection reads it."""
        try:
            found = os.stat(self.path)
        except OSError as exc:
            raise StoreUnavailable(f"the database file {self.path} is gone ({exc.strerror})") from exc
        if (found.st_dev, found.st_ino) != self._identity:
            raise StoreUnavailable(
                f"the database file {self.path} was replaced since the server opened it: restart the server"
            )
        try:
            header = os.pread(self._fd, len(_HEADER), 0)
        except OSError as exc:
            raise StoreUnavailable(f"the database file {self.path} cannot be read ({exc.strerror})") from exc
        if not (os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)):
            # a read-only file or file system: reads go on, every write fails (SQLite keeps its
            # -wal and -shm files beside the database, so the folder counts too)
            raise StoreUnavailable(f"the database file {self.path} cannot be written")
        if header != _HEADER:  # the pages a new connection reads may all be in the WAL yet
            raise StoreUnavailable(f"the database file {self.path} is no SQLite database any more")
        try:
            conn = sqlite3.connect(self._uri, uri=True, timeout=_CHECK_TIMEOUT)
            try:
                conn.execute("SELECT id FROM tenants LIMIT 1").fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the database file {self.path} cannot be read ({exc})") from exc
