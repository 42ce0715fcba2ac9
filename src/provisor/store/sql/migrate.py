"""Run alembic migration chains programmatically, once per process-visible schema change.

Two chains share this runner: the SCIM store's (``migrations/``, alembic's default version
table) and the engine state's (``engine_migrations/``, version table ``engine_state_version``),
so both can live in one database. :func:`upgrade` is called whenever a store is opened. It is
idempotent (at head it only reads the version) and safe against concurrent openers: on SQLite the
upgrade runs inside ``BEGIN IMMEDIATE``, so a second process (``provisor tenant create`` beside a
running server) waits for the first, then finds the schema at head and does nothing.

A database that is another application's (tables, and no version table of either chain) or at a
revision the scripts do not know (a newer Provisor's) is refused before anything is written to it.

Each chain declares its newest revision (``Chain.head``; a test holds it equal to the one alembic
reads from the scripts), so opening a store at head reads one row and never imports alembic:
about 0.3 s of every ``provisor`` command.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, MetaData, inspect, text

from provisor.store.base import UnusableDatabase
from provisor.store.sql.engine import create_store_engine, txn

if TYPE_CHECKING:
    from alembic.config import Config


@dataclass(frozen=True, slots=True)
class Chain:
    """One migration chain: its folder in this package, its newest revision, its version table,
    its advisory lock."""

    folder: str
    head: str
    version_table: str = "alembic_version"
    lock: int = 7643

    def config(self) -> Config:
        from alembic.config import Config

        cfg = Config()
        location = resources.files("provisor.store.sql").joinpath(self.folder)
        cfg.set_main_option("script_location", str(location))
        return cfg


STORE = Chain("migrations", "0011")
ENGINE_STATE = Chain("engine_migrations", "e0003", "engine_state_version", 7644)


def head_revision(chain: Chain = STORE) -> str:
    """The newest migration's revision id."""
    return chain.head


def script_head(chain: Chain = STORE) -> str | None:
    """The newest revision as alembic reads it from the chain's scripts (what ``Chain.head`` must be)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(chain.config()).get_current_head()


def current_revision(conn: Connection, chain: Chain = STORE) -> str | None:
    """The revision the database is at (None for an empty database), as alembic's
    ``MigrationContext.get_current_revision`` reads it, without importing alembic."""
    if not inspect(conn).has_table(chain.version_table):
        return None
    # the table name is the chain's own constant, never input
    rows = conn.execute(text(f"SELECT version_num FROM {chain.version_table}")).all()
    if len(rows) > 1:
        raise RuntimeError(f"{chain.version_table} holds {len(rows)} revisions; expected one")
    return str(rows[0][0]) if rows else None


def upgrade(engine: Engine, chain: Chain = STORE, *, existing: bool = True) -> None:
    """Bring the database to the chain's newest revision; a no-op when it is already there.

    ``existing=False`` creates the schema of a new, empty database but leaves one at an older
    revision as it is, raising :class:`OutdatedDatabase`: an upgrade is a step an operator takes
    (``provisor upgrade``, or ``provisor serve``), once no server of the older version is running
    on the database, never the side effect of a command that lists or checks something."""
    head = head_revision(chain)
    with txn(engine, "none").connect() as conn:
        if current_revision(conn, chain) == head:
            return
    from alembic import command

    with txn(engine, "write").begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"SELECT pg_advisory_xact_lock({chain.lock:d})"))  # SQLite: BEGIN IMMEDIATE
        # Re-check under the write lock: another process may have migrated meanwhile.
        current = current_revision(conn, chain)
        if current == head:
            return
        cfg = chain.config()
        check_usable(conn, chain, current, cfg)
        if current is not None and not existing:
            raise OutdatedDatabase(current, head)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class OutdatedDatabase(UnusableDatabase):
    """A database at an older revision of the schema, left as it is (``upgrade(existing=False)``)."""

    def __init__(self, current: str, head: str) -> None:
        super().__init__(
            f"its schema is at revision {current}, older than this Provisor's {head}: upgrade it with "
            "`provisor upgrade` once no server of the older version runs on it (`provisor serve` of "
            "this version upgrades it too)"
        )
        self.current = current
        self.head = head


def check_usable(conn: Connection, chain: Chain, current: str | None, cfg: Config) -> None:
    """Raise UnusableDatabase, before anything is written, for a database that is another
    application's (tables, and no version table of either chain: a ``--db`` pointing at the wrong
    file would have got Provisor's tables beside its own) or at a revision the chain's scripts do
    not know (a newer Provisor's: alembic would only say it "can't locate revision")."""
    from alembic.script import ScriptDirectory

    if current is None:
        tables = sorted(inspect(conn).get_table_names())
        if tables and not {STORE.version_table, ENGINE_STATE.version_table} & set(tables):
            shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
            raise UnusableDatabase(
                f"it is not a Provisor database (it holds other tables: {shown}); "
                "give Provisor a database of its own"
            )
        return
    if current not in {s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()}:
        raise UnusableDatabase(
            f"its schema is at revision {current}, which this Provisor does not know (its newest is "
            f"{chain.head}): a newer Provisor wrote it; run that version, or restore a backup "
            "taken before the upgrade"
        )


def run_env(metadata: MetaData, version_table: str = "alembic_version") -> None:
    """The body of a chain's alembic ``env.py``: online migrations on the connection :func:`upgrade`
    hands over, or (from the alembic command line) on ``-x url=...``."""
    from alembic import context

    if context.is_offline_mode():
        raise RuntimeError("offline (--sql) migrations are not supported")

    def run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=version_table,
            render_as_batch=True,  # SQLite can only ALTER through table copies
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("pass the database URL with -x url=...")
    engine = create_store_engine(url)
    try:
        with engine.begin() as conn:
            run(conn)
    finally:
        engine.dispose()
