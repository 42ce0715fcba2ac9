"""The hot path: Core statements compiled once, run straight on pooled DBAPI connections.

A lookup by id or by ``userName eq`` runs on every Entra request, a create or a PATCH on most of
the others. Going through a SQLAlchemy ``Connection`` costs ~100 us of Python per statement on a
small machine (events, compiled-cache lookup, result machinery) and a pool checkout ~10 us more;
the database work is ~10 us a statement plus the COMMIT. So the statements on that path are
written in SQLAlchemy Core as usual, compiled once for the engine's dialect (:class:`Prepared`,
:class:`PreparedIn` for IN lists), and executed with the DBAPI cursor of a connection checked out
of the engine's own pool and kept for reuse (:class:`Connections`). Every other statement (general
filters, tenants, migrations) goes through SQLAlchemy as usual.

Only plain scalar parameters are allowed: no expanding IN lists (:class:`PreparedIn` compiles one
statement per list size instead) and no types with bind processors. Writes run in
:meth:`Connections.write`: ``BEGIN IMMEDIATE`` ... ``COMMIT`` on SQLite (the driver's implicit
transaction elsewhere), ROLLBACK on any exception, which then propagates unchanged. A caller that
must not wait for SQLite's write lock (the server's event loop) takes it first with
:meth:`Connections.try_write_lock`, which answers at once, and lets its next write join it.

``Connections.observers`` is a diagnostics hook: each callable is given ``(sql, rowcount)`` after
every statement run here (tests count statements and rows with it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import add, itemgetter
from types import TracebackType
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine, bindparam
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor
from sqlalchemy.pool import PoolProxiedConnection, QueuePool
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

from provisor.store.sql.engine import is_locked, store_error, unusable

Row = tuple[Any, ...]
Observer = Callable[[str, int], None]


_T = TypeVar("_T")


def _every_row(cursor: Any) -> list[Row]:
    return list(cursor.fetchall())


class Prepared:
    """One statement compiled for an engine's dialect, with its parameter order."""

    __slots__ = ("_pick", "constants", "order", "sql")

    def __init__(self, engine: Engine, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        assert isinstance(compiled, SQLCompiler)
        if compiled.escaped_bind_names:
            raise ValueError("prepared statements need plain bind parameter names")
        constants: dict[str, Any] = {}
        for name, bind in compiled.binds.items():
            if bind.expanding:
                raise ValueError(f"expanding parameter {name!r}: use PreparedIn")
            if not bind.required:
                constants[name] = bind.effective_value  # literals in the statement, e.g. ``+ 1``
        self.sql: str = str(compiled)
        self.order: tuple[str, ...] | None = (
            tuple(compiled.positiontup) if compiled.positiontup is not None else None
        )
        self.constants = constants
        #: the positional parameters of a mapping, as a tuple (``itemgetter`` of two or more names
        #: returns one; of one name, the value alone, hence the wrapper)
        self._pick: Callable[[Mapping[str, Any]], tuple[Any, ...]] | None = None
        if self.order is not None:
            if len(self.order) >= 2:
                self._pick = itemgetter(*self.order)
            else:
                names = self.order
                self._pick = lambda params: tuple(params[k] for k in names)

    def args(self, params: Mapping[str, Any]) -> Any:
        """The DBAPI parameters for ``params`` (a tuple for positional paramstyles, else a dict)."""
        if self.constants:
            params = {**self.constants, **params}
        return self._pick(params) if self._pick is not None else dict(params)


class PreparedIn:
    """A statement with one IN list, compiled once per list size (powers of two up to ``CHUNK``).

    ``build(names)`` returns the statement with ``bindparam(name)`` for each list element. Longer
    lists are split into chunks; shorter ones are padded by repeating their last value, which
    changes nothing for ``x IN (...)``, so at most ``log2(CHUNK) + 1`` statements are compiled.
    """

    CHUNK = 512

    def __init__(self, engine: Engine, name: str, build: Callable[[list[str]], ClauseElement]) -> None:
        self._engine = engine
        self._name = name
        self._build = build
        self._compiled: dict[int, tuple[Prepared, list[str]]] = {}

    def _for(self, size: int) -> tuple[Prepared, list[str]]:
        found = self._compiled.get(size)
        if found is None:
            names = [f"{self._name}_{i}" for i in range(size)]
            found = (Prepared(self._engine, self._build(names)), names)
            self._compiled[size] = found  # a race compiles it twice, harmlessly
        return found

    def parts(
        self, params: Mapping[str, Any], values: Sequence[Any]
    ) -> list[tuple[Prepared, dict[str, Any]]]:
        """(statement, parameters) for each chunk of ``values``; none when ``values`` is empty."""
        out = []
        for start in range(0, len(values), self.CHUNK):
            part = list(values[start : start + self.CHUNK])
            size = 1 << (len(part) - 1).bit_length()
            part += [part[-1]] * (size - len(part))
            prepared, names = self._for(size)
            out.append((prepared, {**params, **dict(zip(names, part, strict=True))}))
        return out


def in_list(names: list[str]) -> list[BindParameter[Any]]:
    """``bindparam(name)`` for each name, for a :class:`PreparedIn` builder's ``column.in_(...)``."""
    return [bindparam(n) for n in names]


class Runner(Protocol):
    """Something that runs prepared reads: a :class:`Transaction` or :class:`OnConnection`."""

    def rows(self, statement: Prepared, params: Mapping[str, Any]) -> list[Row]: ...


class Scanner(Runner, Protocol):
    """A :class:`Runner` that also hands a reader the rows as they are fetched (``scan``)."""

    def scan(
        self, statement: Prepared, params: Mapping[str, Any], read: Callable[[Iterator[Row]], None]
    ) -> None: ...


class NeedsSnapshot(Exception):
    """A read on :class:`OneStatement` came to a second statement: read again in one transaction."""


class OneStatement:
    """Runs a read that mostly takes one statement (Entra's match, a read by id) in the database's
    own autocommit snapshot, without BEGIN and COMMIT; a second statement raises
    :class:`NeedsSnapshot`, and the caller reads again in a read transaction (``Connections.read``).
    Two autocommit statements may see two states of the database, another process writing
    between them: a version with the members or groups of another."""

    __slots__ = ("_conns", "_used")

    def __init__(self, conns: Connections) -> None:
        self._conns = conns
        self._used = False

    def _first(self) -> None:
        if self._used:
            raise NeedsSnapshot
        self._used = True

    def rows(self, statement: Prepared, params: Mapping[str, Any]) -> list[Row]:
        self._first()
        return self._conns.rows(statement, params)

    def scan(
        self, statement: Prepared, params: Mapping[str, Any], read: Callable[[Iterator[Row]], None]
    ) -> None:
        self._first()
        self._conns.scan(statement, params, read)


class OnConnection:
    """Prepared statements on a SQLAlchemy ``Connection``, inside the transaction it is in."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def rows(self, statement: Prepared, params: Mapping[str, Any]) -> list[Row]:
        return [tuple(r) for r in self.conn.exec_driver_sql(statement.sql, statement.args(params))]

    def scan(
        self, statement: Prepared, params: Mapping[str, Any], read: Callable[[Iterator[Row]], None]
    ) -> None:
        """:meth:`Connections.scan` on this connection: the rows ``read`` leaves are never fetched."""
        result = self.conn.exec_driver_sql(statement.sql, statement.args(params))
        try:
            read(tuple(r) for r in result)
        finally:
            result.close()


class Connections:
    """DBAPI connections checked out of ``engine``'s pool, kept for reuse by every thread.

    A connection is used by one thread at a time: it is taken from a LIFO list and put back after
    the statement or transaction. At most ``keep`` idle connections are kept, and only while
    fewer than ``pool_size`` connections are checked out; otherwise one goes back to the pool, so
    a thread waiting in an exhausted pool is always served by the next release, never starved by
    connections idling here. A connection whose read failed goes back to the pool (which resets
    it); one whose transaction could not be rolled back is invalidated. :meth:`close` returns the
    idle ones; the store disposes of the engine after.
    """

    def __init__(self, engine: Engine, keep: int = 4) -> None:
        self.engine = engine
        self.observers: list[Observer] = []
        dbapi = engine.dialect.loaded_dbapi
        #: The DBAPI's IntegrityError (constraint failures: unique indexes, foreign keys).
        self.IntegrityError: type[Exception] = dbapi.IntegrityError
        self._sqlite = engine.dialect.name == "sqlite"
        self._idle: list[tuple[PoolProxiedConnection, DBAPIConnection]] = []
        pool = engine.pool
        self._queue = pool if isinstance(pool, QueuePool) else None
        self._keep = min(keep, pool.size()) if isinstance(pool, QueuePool) else keep
        self._closed = False
        #: this thread's open group-commit transaction (``tx``) and write lock to join (``held``)
        self._batch = threading.local()
        #: SQLite connections of :meth:`try_write_lock`, set never to wait for the lock; with the
        #: statement that gives one back the engine's busy timeout
        self._nowait: list[tuple[PoolProxiedConnection, DBAPIConnection]] = []
        self._restore_wait: str | None = None

    # -- checkout ------------------------------------------------------------------------------

    def acquire(self) -> tuple[PoolProxiedConnection, DBAPIConnection]:
        try:
            return self._idle.pop()
        except IndexError:
            try:
                fairy = self.engine.raw_connection()
            except Exception as exc:  # the pool's connect runs no handle_error event
                gone = unusable(exc)
                if gone is not None:
                    raise gone from exc
                raise
            dbapi = fairy.dbapi_connection
            assert dbapi is not None
            return fairy, dbapi

    def release(self, conn: tuple[PoolProxiedConnection, DBAPIConnection]) -> None:
        queue = self._queue
        if (
            not self._closed
            and len(self._idle) < self._keep
            and (queue is None or queue.checkedout() < queue.size())
        ):
            self._idle.append(conn)
        else:
            conn[0].close()

    def close(self) -> None:
        """Return every idle connection to the pool; later releases go straight to the pool."""
        self._closed = True
        while self._idle:
            self._idle.pop()[0].close()
        while self._nowait:
            self._release_nowait(self._nowait.pop())

    def _acquire_nowait(self) -> tuple[PoolProxiedConnection, DBAPIConnection]:
        """A connection whose busy timeout is 0: a ``BEGIN IMMEDIATE`` on it fails at once when
        another connection holds the write lock, instead of waiting in SQLite's busy handler."""
        try:
            return self._nowait.pop()
        except IndexError:
            pass
        conn = self.acquire()
        try:
            cursor = conn[1].cursor()
            try:
                if self._restore_wait is None:
                    wait = int(cursor.execute("PRAGMA busy_timeout").fetchone()[0])
                    self._restore_wait = f"PRAGMA busy_timeout={wait:d}"
                cursor.execute("PRAGMA busy_timeout=0")
            finally:
                cursor.close()
        except BaseException:
            conn[0].close()  # still waits as configured: nothing was changed on it
            raise
        return conn

    def _release_nowait(self, conn: tuple[PoolProxiedConnection, DBAPIConnection]) -> None:
        """Keep a no-wait connection for the next :meth:`try_write_lock`, or give it back its busy
        timeout and return it to the pool (never a connection that would not wait, to others)."""
        if not self._closed and len(self._nowait) < _KEEP_NOWAIT:
            self._nowait.append(conn)
            return
        try:
            assert self._restore_wait is not None
            cursor = conn[1].cursor()
            cursor.execute(self._restore_wait)
            cursor.close()
        except Exception:
            conn[0].invalidate()
        else:
            conn[0].close()

    # -- statements ----------------------------------------------------------------------------

    def rows(self, statement: Prepared, params: Mapping[str, Any]) -> list[Row]:
        """Run one read in the database's own autocommit transaction (one statement, one snapshot)."""
        return self._read(statement, params, _every_row)

    def scan(
        self, statement: Prepared, params: Mapping[str, Any], read: Callable[[Iterator[Row]], None]
    ) -> None:
        """:meth:`rows` for a reader that may stop early: ``read`` is given the rows as the cursor
        fetches them, and those it leaves are never computed (SQLite computes a row when it is
        fetched). The connection is released when ``read`` returns."""
        self._read(statement, params, lambda cursor: read(iter(cursor.fetchone, None)))

    def _read(self, statement: Prepared, params: Mapping[str, Any], fetch: Callable[[Any], _T]) -> _T:
        """Run one read and ``fetch`` what it needs of the cursor, on a connection of its own."""
        conn = self.acquire()
        try:
            cursor = conn[1].cursor()
            try:
                cursor.execute(statement.sql, statement.args(params))
                found = fetch(cursor)
                if self.observers:
                    self._notify(statement.sql, cursor.rowcount)
            finally:
                cursor.close()
            if not self._sqlite:
                conn[1].commit()  # end the implicit transaction other drivers open
        except BaseException as exc:
            conn[0].close()  # the pool resets it
            gone = unusable(exc)
            if gone is not None:
                raise gone from exc
            raise
        self.release(conn)
        return found

    def write_now(self, statement: Prepared, params: Mapping[str, Any]) -> int:
        """Run one write statement in its own transaction without waiting for the write lock: on
        SQLite with a busy timeout of 0 for this statement only, so :class:`StoreBusy` comes at
        once when another writer holds the database. For writes that may be skipped (a token's
        "last used"), never for a client's. Returns the rows changed."""
        conn = self.acquire()
        cursor = conn[1].cursor()
        try:
            wait = cursor.execute("PRAGMA busy_timeout").fetchone()[0] if self._sqlite else None
            if wait is not None:
                cursor.execute("PRAGMA busy_timeout=0")
            try:
                cursor.execute(statement.sql, statement.args(params))  # SQLite: autocommits
                changed: int = cursor.rowcount
                if not self._sqlite:
                    conn[1].commit()
            finally:
                if wait is not None:
                    cursor.execute(f"PRAGMA busy_timeout={int(wait):d}")
            cursor.close()
        except BaseException as exc:
            conn[0].close()  # the pool resets it (and rolls back whatever was begun)
            translated = store_error(exc)
            if translated is not None:
                raise translated from exc
            raise
        self.release(conn)
        return changed

    def write(self) -> Transaction | Savepoint:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite): ``with conns.write() as tx: ...``.

        Inside :meth:`batch` it is a savepoint of the batch's transaction instead; inside a
        :class:`WriteLock`, the first write (or batch) is that lock's transaction.
        """
        outer: Transaction | None = getattr(self._batch, "tx", None)
        if outer is not None:
            return Savepoint(outer)
        held: Transaction | None = getattr(self._batch, "held", None)
        if held is not None:  # begun already: its ``with`` block enters it without beginning
            self._batch.held = None
            return held
        return Transaction(self, "BEGIN IMMEDIATE" if self._sqlite else None)

    def try_write_lock(self) -> WriteLock | None:
        """The database's write lock taken now, or None at once when another connection holds it.

        ``with lock: ...``: the first write transaction (or :meth:`batch`) this thread begins in the
        block is the lock's transaction, begun already; a lock no write took is let go at the end
        of the block. This is for a caller that must not wait inside SQLite's busy handler (the
        server's event loop, which answers reads meanwhile): it tries again later itself, and only
        then runs the writes, so a retry never repeats one.

        On a SQLite file the ``BEGIN IMMEDIATE`` runs on a connection kept with a busy timeout of
        0 (setting it back and forth on a shared connection would cost two statements a write).
        Once that statement has the lock, nothing else in the transaction waits for one (in WAL
        mode a commit needs no other lock; a checkpoint after it never waits). Elsewhere (an
        in-memory database, one connection; other databases, which lock rows, not the database)
        the transaction begins as any write's does.
        """
        if not (self._sqlite and self._queue is not None):
            tx = Transaction(self, "BEGIN IMMEDIATE" if self._sqlite else None)
            tx.__enter__()
            return WriteLock(self, tx)
        conn = self._acquire_nowait()
        cursor = conn[1].cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            cursor.close()
            if is_locked(exc):
                self._release_nowait(conn)
                return None
            conn[0].invalidate()  # unknown state, and no wait configured: never reuse it
            translated = store_error(exc)
            if translated is not None:
                raise translated from exc
            raise
        tx = Transaction(self, None, nowait=True)
        tx.adopt(conn, cursor)
        return WriteLock(self, tx)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit: every :meth:`write` of this thread inside the block is a savepoint of one
        transaction, committed once at the end. A write that fails rolls back to its savepoint and
        raises as usual, leaving the others; if the final commit fails, the block raises.

        A SQLite commit costs a write of every changed page to the WAL; sharing it between the
        writes that arrive together is what lets one worker take many writes per second.
        """
        if getattr(self._batch, "tx", None) is not None:
            yield
            return
        with self.write() as tx:
            assert isinstance(tx, Transaction)
            self._batch.tx = tx
            try:
                yield
            finally:
                self._batch.tx = None

    def read(self) -> Transaction:
        """A read transaction: several statements, one snapshot."""
        return Transaction(self, "BEGIN" if self._sqlite else None)

    def _notify(self, sql: str, rowcount: int) -> None:
        for observer in self.observers:
            observer(sql, rowcount)


#: No-wait connections kept for :meth:`Connections.try_write_lock` (one thread, the event loop's,
#: takes the lock at a time; a second is kept for the odd overlap).
_KEEP_NOWAIT = 2

#: What a deferred addition does at commit: ``apply(tx, key, totals)``.
Apply = Callable[["Transaction", Hashable, tuple[int, ...]], None]


class WriteLock:
    """The write lock :meth:`Connections.try_write_lock` took: its transaction, begun, for the
    first write of this thread inside ``with lock:`` to join; rolled back (the lock let go) at the
    end of the block if no write took it."""

    __slots__ = ("_conns", "_tx")

    def __init__(self, conns: Connections, tx: Transaction) -> None:
        self._conns = conns
        self._tx = tx

    def __enter__(self) -> None:
        local = self._conns._batch
        if getattr(local, "held", None) is not None or getattr(local, "tx", None) is not None:
            self._tx.end_unused()
            raise RuntimeError("a write lock inside another write lock or batch of the same thread")
        local.held = self._tx

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        local = self._conns._batch
        if local.held is self._tx:  # no write took it: let the lock go
            local.held = None
            self._tx.end_unused()


class Transaction:
    """One transaction on a connection from :class:`Connections`; commits on a clean exit.

    :meth:`defer` adds to counters that are written once, just before the commit: a group commit
    of 16 creates updates a tenant's resource count once instead of 16 times.
    """

    __slots__ = ("_apply", "_begin", "_conn", "_conns", "_cursor", "_nowait", "broken", "deferred")

    def __init__(self, conns: Connections, begin: str | None, *, nowait: bool = False) -> None:
        """``nowait``: the transaction runs on one of the no-wait connections of
        ``try_write_lock`` (:meth:`adopt`), which goes back among those."""
        self._conns = conns
        self._begin = begin
        self._conn: tuple[PoolProxiedConnection, DBAPIConnection] | None = None
        self._cursor: DBAPICursor | None = None
        self._nowait = nowait
        #: Deferred additions by key, summed; a savepoint that rolls back restores its copy.
        self.deferred: dict[Hashable, tuple[int, ...]] = {}
        self._apply: dict[Hashable, Apply] = {}
        #: Set when the database ended this transaction itself inside one of its savepoints
        #: (SQLITE_FULL or an I/O error can roll back the whole transaction): what it failed with.
        #: Every later savepoint, and the commit, then fail with it; nothing of the batch stays.
        self.broken: BaseException | None = None

    def defer(self, key: Hashable, amounts: tuple[int, ...], apply: Apply) -> None:
        """Add ``amounts`` to the totals of ``key``; ``apply`` writes them before the commit."""
        held = self.deferred.get(key)
        if held is not None:  # summed element by element (map: no generator, no zip per write)
            if len(held) != len(amounts):
                raise ValueError(f"{len(amounts)} amounts for the {len(held)} totals of {key!r}")
            amounts = tuple(map(add, held, amounts))
        self.deferred[key] = amounts
        self._apply[key] = apply

    def _apply_deferred(self) -> None:
        deferred, self.deferred = self.deferred, {}
        for key, totals in deferred.items():
            self._apply[key](self, key, totals)

    def adopt(self, conn: tuple[PoolProxiedConnection, DBAPIConnection], cursor: DBAPICursor) -> None:
        """Take over a connection whose transaction is begun already, in place of ``with``."""
        self._conn, self._cursor = conn, cursor

    def __enter__(self) -> Transaction:
        if self._cursor is not None:  # begun by try_write_lock and joined (``Connections.write``)
            return self
        conn = self._conns.acquire()
        try:
            cursor = conn[1].cursor()
            if self._begin is not None:
                cursor.execute(self._begin)
        except BaseException as exc:
            conn[0].close()
            translated = store_error(exc)  # e.g. another writer kept the lock past the busy timeout
            if translated is not None:
                raise translated from exc
            raise
        self._conn, self._cursor = conn, cursor
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, cursor = self._conn, self._cursor
        assert conn is not None and cursor is not None
        if kind is None and self.broken is not None:  # a savepoint lost the whole transaction
            self._conn = self._cursor = None
            self._abort(conn, cursor)
            raise self.broken
        if kind is None:
            try:
                if self.deferred:
                    self._apply_deferred()
                self._conn = self._cursor = None
                conn[1].commit()
            except BaseException as exc:
                self._conn = self._cursor = None
                self._abort(conn, cursor)
                translated = store_error(exc)
                if translated is not None:
                    raise translated from exc
                raise
            cursor.close()
            self._release(conn)
        else:
            self._conn = self._cursor = None
            self._abort(conn, cursor)
            translated = store_error(exc) if exc is not None else None
            if translated is not None:  # a statement failed for the database's state: say which
                raise translated from exc
            # otherwise the original exception propagates

    def _abort(self, conn: tuple[PoolProxiedConnection, DBAPIConnection], cursor: DBAPICursor) -> None:
        try:
            cursor.close()
            conn[1].rollback()
        except Exception:
            conn[0].invalidate()  # unknown state: never reuse it
        else:
            self._release(conn)

    def _release(self, conn: tuple[PoolProxiedConnection, DBAPIConnection]) -> None:
        if self._nowait:
            self._conns._release_nowait(conn)
        else:
            self._conns.release(conn)

    def end_unused(self) -> None:
        """Roll back a transaction begun for writes that never came (``WriteLock``)."""
        conn, cursor = self._conn, self._cursor
        assert conn is not None and cursor is not None
        self._conn = self._cursor = None
        self._abort(conn, cursor)

    def active(self) -> bool:
        """Whether the database still has this transaction open (SQLite may end it on its own
        after an error such as SQLITE_FULL); drivers that cannot tell say yes."""
        conn = self._conn
        return conn is None or bool(getattr(conn[1], "in_transaction", True))

    def raw(self, sql: str) -> None:
        """Run a statement with no parameters (savepoint control)."""
        cursor = self._cursor
        assert cursor is not None, "use the transaction inside its with block"
        cursor.execute(sql)

    def execute(self, statement: Prepared, params: Mapping[str, Any]) -> DBAPICursor:
        cursor = self._cursor
        assert cursor is not None, "use the transaction inside its with block"
        cursor.execute(statement.sql, statement.args(params))
        if self._conns.observers:
            self._conns._notify(statement.sql, cursor.rowcount)
        return cursor

    def many(self, statement: Prepared, params: Sequence[Mapping[str, Any]]) -> int:
        """executemany; returns the rows changed."""
        cursor = self._cursor
        assert cursor is not None, "use the transaction inside its with block"
        cursor.executemany(statement.sql, [statement.args(p) for p in params])
        if self._conns.observers:
            self._conns._notify(statement.sql, cursor.rowcount)
        return int(cursor.rowcount)

    def rows(self, statement: Prepared, params: Mapping[str, Any]) -> list[Row]:
        return list(self.execute(statement, params).fetchall())

    def scan(
        self, statement: Prepared, params: Mapping[str, Any], read: Callable[[Iterator[Row]], None]
    ) -> None:
        """:meth:`Connections.scan` inside this transaction (the next statement drops the rest)."""
        cursor = self.execute(statement, params)
        read(iter(cursor.fetchone, None))

    def scalar(self, statement: Prepared, params: Mapping[str, Any]) -> Any:
        """The first column of the one row the statement returns (``INSERT ... RETURNING``)."""
        row = self.execute(statement, params).fetchone()
        assert row is not None, "the statement returned no row"
        return row[0]

    def first(self, statement: Prepared, params: Mapping[str, Any]) -> Row | None:
        rows = self.execute(statement, params).fetchall()
        return tuple(rows[0]) if rows else None


class Savepoint:
    """A write inside :meth:`Connections.batch`: ``SAVEPOINT`` ... ``RELEASE`` on the batch's
    transaction, or ``ROLLBACK TO`` when the block raises (the exception propagates)."""

    __slots__ = ("_deferred", "_outer")

    def __init__(self, outer: Transaction) -> None:
        self._outer = outer
        self._deferred: dict[Hashable, tuple[int, ...]] = {}

    def __enter__(self) -> Transaction:
        if self._outer.broken is not None:  # an earlier write of the batch lost its transaction
            raise self._outer.broken
        self._outer.raw("SAVEPOINT provisor_write")
        self._deferred = dict(self._outer.deferred)  # what a rollback to here restores
        return self._outer

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        translated = store_error(exc) if exc is not None else None
        if kind is not None and not self._outer.active():
            # The database rolled the whole transaction back (SQLITE_FULL, say): there is no
            # savepoint to return to, and the batch's earlier writes are gone too. Say so to this
            # write, to every later one and at the commit, rather than let the batch carry on in a
            # new transaction and report writes stored that are not.
            broken = translated if translated is not None else exc
            assert broken is not None
            self._outer.broken = broken
            raise broken from exc if broken is not exc else None
        if kind is not None:
            self._outer.raw("ROLLBACK TO SAVEPOINT provisor_write")
            self._outer.deferred = self._deferred
        self._outer.raw("RELEASE SAVEPOINT provisor_write")
        if translated is not None:
            raise translated from exc
