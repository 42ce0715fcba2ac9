"""Hot-path reads: Core statements compiled once, run straight on a pooled DBAPI connection.

A lookup by id or by ``userName eq`` runs on every Entra request. Going through a SQLAlchemy
``Connection`` costs ~100 us of Python per statement on a small machine (events, result
machinery); the database work is ~10 us. So the few statements on that path are written in
SQLAlchemy Core as usual, compiled once for the engine's dialect, and executed on a connection
checked out of the same pool. Only plain scalar parameters are allowed (no expanding IN lists, no
types with bind processors); everything else goes through SQLAlchemy as usual.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


class Prepared:
    """One compiled read statement: ``all(engine, params)`` returns its rows as tuples."""

    __slots__ = ("order", "sql")

    def __init__(self, engine: Engine, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql: str = str(compiled)
        self.order: tuple[str, ...] | None = (
            tuple(compiled.positiontup) if compiled.positiontup is not None else None
        )

    def args(self, params: Mapping[str, Any]) -> Any:
        return tuple(params[k] for k in self.order) if self.order is not None else dict(params)

    def all(self, engine: Engine, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run in the database's own autocommit transaction (one statement, one snapshot)."""
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(self.sql, self.args(params))
                rows: list[tuple[Any, ...]] = list(cursor.fetchall())
            finally:
                cursor.close()
            if engine.dialect.name != "sqlite":
                raw.commit()  # end the implicit transaction other drivers open
        finally:
            raw.close()
        return rows
