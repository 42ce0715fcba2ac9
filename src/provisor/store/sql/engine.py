"""Engine construction: one SQLAlchemy engine per store, tuned for SQLite files.

SQLite gets WAL (readers never block the writer), ``synchronous=NORMAL`` unless the URL asks
for more (:data:`SYNCHRONOUS`), foreign keys, a busy timeout, and transactions we start
ourselves: ``BEGIN IMMEDIATE`` for writes, so concurrent writers queue on the database lock up
front instead of failing with "database is locked" when a deferred read transaction tries to
upgrade to a write; ``BEGIN`` (deferred) for multi-statement
reads; no transaction at all for single-statement reads. Pick one with :func:`txn` (the hot path
in ``prepared`` issues the same statements itself on the DBAPI connections it uses).

Three SQL functions are registered on every SQLite connection so that filters evaluated in SQL
agree exactly with the in-memory evaluator: ``scim_fold`` (the case folding of attributes that are
not caseExact, RFC 7643 section 2.1), ``scim_instant`` (an xsd:dateTime string to integer
microseconds) and ``scim_number`` (a number written as a string to the number).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, ExceptionContext, make_url
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool, StaticPool

from provisor.store.base import QueryTooComplex, StoreBusy, StoreError, StoreFull, StoreUnavailable
from provisor.store.sql.values import fold, instant_or_none, number_or_none

#: How long a SQLite connection waits for the write lock before giving up (milliseconds).
BUSY_TIMEOUT_MS = 5000

#: What a SQLite URL's ``synchronous`` parameter may ask (``sqlite:///p.db?synchronous=full``), and
#: what survives what. ``normal``, the default: a committed write survives the process's crash,
#: and a power loss or an operating system crash loses at most the last writes committed before
#: it, never the database's consistency (WAL). ``full``: a commit waits for the disk, so a
#: committed write survives those too, at the cost of an fsync per commit (one per group of
#: writes, ``server/writes.py``). ``extra`` adds a sync that only a rollback journal needs: in WAL,
#: what ``full`` does.
SYNCHRONOUS = ("normal", "full", "extra")

#: Execution option naming the transaction a connection starts: "write", "read" or "none".
TXN_OPTION = "provisor_txn"

TxnKind = Literal["write", "read", "none"]


def _fold_or_none(value: object) -> str | None:
    return fold(value) if isinstance(value, str) else None


def _enable_wal(cur: sqlite3.Cursor, *, busy_timeout_ms: int) -> None:
    """Switch the file to WAL, retrying while another connection holds the lock it needs.

    SQLite answers ``PRAGMA journal_mode=WAL`` with "database is locked" at once, without its busy
    handler, when another connection is switching the same fresh file at that moment (processes
    opening a new database together), so the busy timeout is applied here by hand.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    pause = 0.001
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _configure_sqlite(
    dbapi_connection: sqlite3.Connection, *, memory: bool, busy_timeout_ms: int, synchronous: str = "normal"
) -> None:
    """Pragmas and functions for one new SQLite connection (``synchronous``: one of :data:`SYNCHRONOUS`)."""
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
    cur = dbapi_connection.cursor()
    try:
        if not memory:
            _enable_wal(cur, busy_timeout_ms=busy_timeout_ms)
        cur.execute(f"PRAGMA synchronous={_SYNC_LEVEL[synchronous]}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms:d}")
        cur.execute("PRAGMA temp_store=MEMORY")
    finally:
        cur.close()
    dbapi_connection.create_function("scim_fold", 1, _fold_or_none, deterministic=True)
    dbapi_connection.create_function("scim_instant", 1, instant_or_none, deterministic=True)
    dbapi_connection.create_function("scim_number", 1, number_or_none, deterministic=True)


#: The pragma's values of :data:`SYNCHRONOUS` (never text of the URL's in the SQL).
_SYNC_LEVEL = {"normal": "NORMAL", "full": "FULL", "extra": "EXTRA"}


class BadDatabaseUrl(ValueError):
    """A database URL with a parameter the store does not take (a one-line CLI error)."""


def _synchronous(parsed: URL) -> tuple[URL, str]:
    """``parsed`` without its ``synchronous`` parameter, and the level it asks (``normal`` when
    none); BadDatabaseUrl for a level that is not one of :data:`SYNCHRONOUS`, or one given twice."""
    asked = parsed.query.get("synchronous")
    if asked is None:
        return parsed, "normal"
    if not isinstance(asked, str) or asked.lower() not in SYNCHRONOUS:
        raise BadDatabaseUrl(
            f"synchronous={asked!r} is not one of {', '.join(SYNCHRONOUS)} "
            "(normal: the default; full: every commit waits for the disk)"
        )
    return parsed.difference_update_query(["synchronous"]), asked.lower()


def _on_begin(conn: Connection) -> None:
    kind = conn.get_execution_options().get(TXN_OPTION, "read")
    if kind == "write":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif kind == "read":
        conn.exec_driver_sql("BEGIN")
    # "none": every statement runs in SQLite's own autocommit transaction.


def _sqlite_says(exc: BaseException, words: str) -> bool:
    """Whether ``exc`` is, or was caused by, a SQLite error whose message holds ``words``, as the
    driver raises it or as SQLAlchemy wraps it."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, sqlite3.Error) and words in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def is_locked(exc: BaseException) -> bool:
    """SQLite's "database is locked": its busy timeout ran out while another writer held the lock."""
    return _sqlite_says(exc, "locked")


def is_full(exc: BaseException) -> bool:
    """SQLite's "database or disk is full" (SQLITE_FULL): the disk, or ``max_page_count``."""
    return _sqlite_says(exc, "database or disk is full")


def is_too_complex(exc: BaseException) -> bool:
    """SQLite's refusal of a statement nested too deeply to parse ("parser stack overflow") or
    evaluate ("Expression tree is too large"): one compiled from a client's filter."""
    return _sqlite_says(exc, "parser stack overflow") or _sqlite_says(exc, "Expression tree is too large")


#: SQLite's words for a database it cannot use as it is now (its file deleted under the process,
#: unreadable, damaged, or on a read-only file system): an operator's problem, not a request's.
_UNUSABLE = (
    "unable to open database file",
    "disk I/O error",
    "file is not a database",
    "database disk image is malformed",
    "attempt to write a readonly database",
)


def unusable(exc: BaseException) -> StoreUnavailable | None:
    """:class:`StoreUnavailable` for a SQLite error of :data:`_UNUSABLE`, holding the driver's error."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, sqlite3.Error) and any(words in str(current) for words in _UNUSABLE):
            return StoreUnavailable(f"the database cannot be used: {current}", current)
        current = current.__cause__ or current.__context__
    return None


def store_error(exc: BaseException) -> StoreError | None:
    """The store's exception for a database failure that is the database's state, not a bug:
    StoreBusy (locked past the busy timeout), StoreFull (no room left), StoreUnavailable (the
    file gone, damaged or read-only); None for any other."""
    if (gone := unusable(exc)) is not None:
        return gone
    if is_locked(exc):
        return StoreBusy("the database is busy with another writer")
    if is_full(exc):
        return StoreFull("the database has no room left (disk full or size limit)")
    return None


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def create_store_engine(url: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS, **kwargs: Any) -> Engine:
    """Create the engine for ``url``; SQLite files get a thread-safe pool and the setup above,
    with the ``synchronous`` level the URL asks (:data:`SYNCHRONOUS`; BadDatabaseUrl otherwise).

    ``busy_timeout_ms``: how long a SQLite write waits for the lock (e.g. longer for an admin
    command beside a running cycle). ``sqlite://`` (in memory) uses one shared connection and
    suits single-threaded tests only.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, **kwargs)
    parsed, synchronous = _synchronous(parsed)
    memory = parsed.database in (None, "", ":memory:")
    opts: dict[str, Any] = {
        "connect_args": {"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
    }
    if memory:
        opts["poolclass"] = StaticPool
    else:
        opts.update(poolclass=QueuePool, pool_size=8, max_overflow=24, pool_timeout=60)
        if parsed.database and not parsed.database.startswith("file:") and not parsed.query:
            opts["creator"] = _existing_file(parsed.database, busy_timeout_ms / 1000)
    opts.update(kwargs)
    engine = create_engine(parsed, **opts)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: sqlite3.Connection, record: ConnectionPoolEntry) -> None:
        _configure_sqlite(
            dbapi_connection, memory=memory, busy_timeout_ms=busy_timeout_ms, synchronous=synchronous
        )

    event.listen(engine, "begin", _on_begin)
    event.listen(engine, "handle_error", _on_error)
    return engine


def _existing_file(database: str, timeout: float) -> Callable[[], sqlite3.Connection]:
    """Connections to the SQLite file ``database`` that never make it anew: the file is made now
    when it is not there (a new database), and each connection opens it ``mode=rw``. A file
    deleted under a running process is then "unable to open database file" (``unusable``: 503,
    one line in the log), where a new connection made an empty database at its path, answered
    "no such table" and left that file for the next start to take as the database."""
    if not os.path.exists(database):
        sqlite3.connect(database).close()
    uri = rw_uri(database)

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=timeout)

    return connect


def _on_error(context: ExceptionContext) -> BaseException | None:
    """A statement's failure because the database cannot be used (``unusable``) raised as
    :class:`StoreUnavailable`: what a server answers 503 and a command says in one line; one
    SQLite refuses as nested too deeply (``is_too_complex``: only a statement compiled from a
    client's filter gets that deep) as :class:`QueryTooComplex`, a 400. Other failures stay as
    the driver raised them (a lock or a full disk is told apart where the write is retried or
    refused: ``store_error``)."""
    exc = context.original_exception
    if is_too_complex(exc):
        return QueryTooComplex("the filter is nested too deeply for the database; simplify it")
    return unusable(exc)


def rw_uri(path: str) -> str:
    """The SQLite URI that opens the database file at ``path`` for reading and writing, and never
    makes it (``mode=rw``)."""
    return "file:" + quote(os.path.abspath(path)) + "?mode=rw"


def txn(engine: Engine, kind: TxnKind) -> Engine:
    """An engine view whose connections start the given kind of transaction (SQLite only)."""
    return engine.execution_options(**{TXN_OPTION: kind})
