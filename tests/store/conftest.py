"""Fixtures for the SQL store tests: a fresh SQLite file per test, a tenant, a statement recorder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from provisor.store.sql import SqlStore


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'provisor.db'}"


@pytest.fixture
def sql_store(db_url: str) -> Iterator[SqlStore]:
    store = SqlStore(db_url)
    yield store
    store.close()


@pytest.fixture
def tenant_id(sql_store: SqlStore) -> str:
    return sql_store.create_tenant("contoso").id


class Recorder:
    """Every statement the store sends, with the number of rows it touched: both those run through
    SQLAlchemy and the prepared ones run on DBAPI cursors (``SqlStore.connections.observers``)."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, int]] = []

    def clear(self) -> None:
        self.statements.clear()

    def mentioning(self, word: str) -> list[tuple[str, int]]:
        return [(s, n) for s, n in self.statements if word in s.lower()]


@pytest.fixture
def recorder(sql_store: SqlStore) -> Iterator[Recorder]:
    rec = Recorder()

    def after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        rec.statements.append((statement, cursor.rowcount))

    def observe(statement: str, rowcount: int) -> None:
        rec.statements.append((statement, rowcount))

    event.listen(sql_store.engine, "after_cursor_execute", after)
    sql_store.connections.observers.append(observe)
    yield rec
    sql_store.connections.observers.remove(observe)
    event.remove(sql_store.engine, "after_cursor_execute", after)
