"""Alembic environment of the engine-state chain (see :func:`provisor.store.sql.migrate.run_env`).

The version is kept in ``engine_state_version``, not alembic's default table, so this chain never
collides with the SCIM store's in a shared database. From the command line: ``-x url=...``.
"""

from provisor.store.sql.engine_state_tables import VERSION_TABLE, metadata
from provisor.store.sql.migrate import run_env

run_env(metadata, VERSION_TABLE)
