"""The SQLite engine's set-up (store/sql/engine.py): how durable a commit is, as the URL asks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from provisor.store.sql import SqlStore
from provisor.store.sql.engine import BadDatabaseUrl, create_store_engine

#: PRAGMA synchronous's numbers
NORMAL, FULL, EXTRA = 1, 2, 3


def levels(store: SqlStore) -> tuple[int, int]:
    """The level of a connection of the SQLAlchemy path, and of one of the prepared hot path's
    (``engine.raw_connection``)."""
    with store.engine.connect() as conn:
        through_sqlalchemy = conn.execute(text("PRAGMA synchronous")).scalar_one()
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA synchronous")
        (raw_level,) = cursor.fetchone()
    finally:
        raw.close()
    return through_sqlalchemy, raw_level


@pytest.mark.parametrize(
    ("query", "level"),
    [
        ("", NORMAL),
        ("?synchronous=normal", NORMAL),
        ("?synchronous=full", FULL),
        ("?synchronous=EXTRA", EXTRA),
    ],
)
def test_every_connection_commits_as_durably_as_the_url_asks(tmp_path: Path, query: str, level: int) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'p.db'}{query}")
    try:
        tenant = store.create_tenant("t")
        created = store.create(tenant.id, "User", {"userName": "u@x.com"})
        assert levels(store) == (level, level)
        assert store.get(tenant.id, "User", created.id).data["userName"] == "u@x.com"
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "p.db") as conn:  # the parameter named no file of its own
        assert conn.execute("SELECT count(*) FROM resources").fetchone() == (1,)


@pytest.mark.parametrize(
    "query", ["?synchronous=off", "?synchronous=0", "?synchronous=full&synchronous=full"]
)
def test_a_level_it_does_not_take_is_refused_before_anything_is_opened(tmp_path: Path, query: str) -> None:
    """``off`` could corrupt the database on a power loss: not a level a store of identities runs
    at. Nor is a parameter given twice read as one of its values."""
    with pytest.raises(BadDatabaseUrl, match="is not one of normal, full, extra"):
        create_store_engine(f"sqlite:///{tmp_path / 'p.db'}{query}")
    assert list(tmp_path.iterdir()) == []
