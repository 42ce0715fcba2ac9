"""Alembic migrations for the engine-state database (version table ``engine_state_version``).

:func:`provisor.store.sql.engine_state.upgrade` runs them whenever a ``SqlEngineState`` opens.
"""
