"""``SqlStore``: the SQL implementation of ResourceStore and TenantStore (store/base.py)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from provisor.scim.schema.model import SchemaRegistry
from provisor.store.base import UnusableDatabase
from provisor.store.sql import migrate
from provisor.store.sql.database_file import DatabaseFile
from provisor.store.sql.dialect import dialect_for
from provisor.store.sql.engine import BUSY_TIMEOUT_MS, create_store_engine, txn
from provisor.store.sql.extensions import SqlSchemaExtensions, read_declarations
from provisor.store.sql.lookups import Lookups
from provisor.store.sql.memberships import Statements
from provisor.store.sql.paging import PageCursors
from provisor.store.sql.prepared import Connections, Prepared
from provisor.store.sql.resources import SqlResources, Writes
from provisor.store.sql.tables import tenants
from provisor.store.sql.tenants import TOUCH_TOKEN, SqlTenants
from provisor.store.sql.traces import SqlTraces


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SqlStore(SqlResources, SqlTenants, SqlSchemaExtensions, SqlTraces):
    """Users, Groups, tenants, tokens, extension schemas and request traces in one SQL database
    (SQLite by default).

    Opening a store runs the migrations (idempotent, safe beside another process using the same
    file); with ``upgrade=False`` only those that create a new database, and a database at an older
    revision is refused (``migrate.OutdatedDatabase``), for commands that must not upgrade it.
    The store is thread-safe: it holds an engine (a connection pool), the few DBAPI connections
    it keeps for the hot path, and settings, so one instance serves a whole server.
    ``clock`` gives the time for ``meta`` timestamps and token records; it defaults to the system
    clock (composition roots may pass their own). Without ``registry`` the store speaks the
    default schemas with the extensions declared in the database when it opens, and follows later
    declarations through ``reload_schemas`` (``extensions``).
    """

    def __init__(
        self,
        url: str,
        *,
        registry: SchemaRegistry | None = None,
        clock: Callable[[], datetime] | None = None,
        engine_options: dict[str, Any] | None = None,
        upgrade: bool = True,
    ) -> None:
        self.url = url
        # Refused before connecting: a PostgreSQL database would otherwise get the tables before
        # the store found it cannot query it (dialect_for).
        backend = make_url(url).get_backend_name()
        if backend != "sqlite":
            raise UnusableDatabase(
                f"the store runs on SQLite (sqlite:///PATH); {backend} databases are not supported yet"
            )
        options = engine_options or {}
        self.engine: Engine = create_store_engine(url, **options)
        #: Seconds a write waits for another writer's lock before StoreBusy (the busy timeout).
        self.busy_timeout: float = options.get("busy_timeout_ms", BUSY_TIMEOUT_MS) / 1000
        try:
            migrate.upgrade(self.engine, existing=upgrade)
        except BaseException:
            self.engine.dispose()
            raise
        self._write = txn(self.engine, "write")
        self._read = txn(self.engine, "read")
        self._single = txn(self.engine, "none")
        self._dialect = dialect_for(self.engine)
        self._lookups = Lookups(self.engine, self._dialect)
        self._writes = Writes(self.engine)
        self._touch_token = Prepared(self.engine, TOUCH_TOKEN)
        self._ping = Prepared(self.engine, select(tenants.c.id).limit(1))
        self._file = DatabaseFile.of(url)
        self._members = Statements(self.engine, self._dialect)
        self._cursors = PageCursors()
        #: DBAPI connections of the engine's pool kept for the prepared statements (see ``prepared``).
        self.connections = Connections(self.engine)
        if registry is None:
            declared = read_declarations(self._single)
            self._registry, self._withdrawn = declared.registry, declared.withdrawn
            self._schemas_seen = declared.fingerprint
        else:
            self._registry, self._withdrawn, self._schemas_seen = registry, {}, None
        self._clock = clock if clock is not None else _utc_now

    def ping(self) -> None:
        """Read the database once (a page of the tenants table), and its file from disk (still
        the file opened, readable by a new connection: ``database_file``); raises when either
        cannot be read."""
        self.connections.rows(self._ping, {})
        if self._file is not None:
            self._file.check()

    @classmethod
    def open(cls, url: str) -> SqlStore:
        """Open (creating and migrating when needed) the store at ``url``, e.g. ``sqlite:///provisor.db``."""
        return cls(url)

    def batch(self) -> AbstractContextManager[None]:
        """Group commit for the writes this thread makes inside the block (see ``Connections.batch``)."""
        return self.connections.batch()

    def try_write_lock(self) -> AbstractContextManager[None] | None:
        """The database's write lock taken without waiting, or None while another writer holds it:
        ``with lock: store.create(...)`` (the first write or ``batch()`` of this thread in the
        block joins it; see ``Connections.try_write_lock``). For a caller that must not block
        (the server's event loop) and tries again later itself, up to ``busy_timeout``."""
        return self.connections.try_write_lock()

    def close(self) -> None:
        """Close every pooled connection; the store must not be used afterwards."""
        self.connections.close()
        self.engine.dispose()
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqlStore({self.engine.url.render_as_string(hide_password=True)!r})"
