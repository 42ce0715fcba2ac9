"""Run the alembic migrations programmatically, once per process-visible schema change.

:func:`upgrade` is called whenever a store is opened. It is idempotent (at head it only reads the
version) and safe against concurrent openers: on SQLite the upgrade runs inside ``BEGIN
IMMEDIATE``, so a second process (``provisor tenant create`` beside a running server) waits for the
first, then finds the schema at head and does nothing.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from provisor.store.sql.engine import txn


def _config() -> Config:
    location = str(resources.files("provisor.store.sql").joinpath("migrations"))
    cfg = Config()
    cfg.set_main_option("script_location", location)
    return cfg


@cache
def head_revision() -> str:
    """The newest migration's revision id."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at (None for an empty database)."""
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest revision; a no-op when it is already there."""
    head = head_revision()
    with txn(engine, "none").connect() as conn:
        if current_revision(conn) == head:
            return
    with txn(engine, "write").begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(7643)"))  # SQLite: BEGIN IMMEDIATE
        # Re-check under the write lock: another process may have migrated meanwhile.
        if current_revision(conn) == head:
            return
        cfg = _config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
