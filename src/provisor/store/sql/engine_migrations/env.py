"""Alembic environment for the engine-state schema: online migrations on the connection handed over.

Run by :func:`provisor.store.sql.engine_state.upgrade`, which passes an open connection (already in
a write transaction) as ``config.attributes["connection"]``. From the alembic command line, pass the
database with ``-x url=sqlite:///job.state.db``. The version is kept in ``engine_state_version``, not
alembic's default table, so this chain never collides with the SCIM store's in a shared database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from provisor.store.sql.engine import create_store_engine
from provisor.store.sql.engine_state_tables import VERSION_TABLE, metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,  # SQLite can only ALTER through table copies
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("pass the database URL with -x url=...")
    engine = create_store_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported")
run_migrations_online()
