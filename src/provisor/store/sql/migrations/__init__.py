"""Alembic migrations for the SQL store; :func:`provisor.store.sql.migrate.upgrade` runs them."""
