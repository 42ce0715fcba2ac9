"""Alembic environment: online migrations on the connection the store hands over.

Run by :func:`provisor.store.sql.migrate.upgrade`, which passes an open connection (already in a
write transaction) as ``config.attributes["connection"]``. From the alembic command line, pass the
database with ``-x url=sqlite:///path.db``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from provisor.store.sql.engine import create_store_engine
from provisor.store.sql.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
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
