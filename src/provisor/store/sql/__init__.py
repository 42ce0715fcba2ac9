"""The SQL store: SQLAlchemy Core over SQLite (default) or, later, PostgreSQL.

from provisor.store.sql import SqlStore
store = SqlStore("sqlite:///provisor.db")   # creates/migrates the schema
"""

from provisor.store.sql.store import SqlStore

__all__ = ["SqlStore"]
