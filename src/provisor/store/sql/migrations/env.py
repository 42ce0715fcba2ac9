"""Alembic environment of the SCIM store's chain (see :func:`provisor.store.sql.migrate.run_env`).

From the alembic command line, pass the database with ``-x url=sqlite:///path.db``.
"""

from provisor.store.sql.migrate import run_env
from provisor.store.sql.tables import metadata

run_env(metadata)
