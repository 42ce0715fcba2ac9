"""A database with no room left (a full disk; here SQLite's page limit, which fails the same way,
SQLITE_FULL): a write is answered 507 Insufficient Storage, a SCIM Error logged as one error line
without a traceback; nothing is stored, reads go on, and once there is room writes work again."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from tests.conftest import GROUP, LiveServer, assert_scim_error, make_user

from provisor.server import ServerConfig, create_app
from provisor.server.auth import issue_token
from provisor.store.sql import SqlStore


@pytest.fixture
def page_limit() -> Iterator[dict[str, int]]:
    """Every new SQLite connection gets ``PRAGMA max_page_count`` = ``limit["pages"]`` (when set)."""
    limit: dict[str, int] = {}

    def cap(dbapi_connection: Any, record: Any) -> None:
        if "pages" in limit:
            dbapi_connection.execute(f"PRAGMA max_page_count = {limit['pages']:d}")

    event.listen(Engine, "connect", cap)
    yield limit
    event.remove(Engine, "connect", cap)


def test_a_write_with_no_room_left_is_507_and_changes_nothing(
    tmp_path: Path, page_limit: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    from provisor.cli.serving import BackgroundServer

    db = tmp_path / "full.db"
    SqlStore(f"sqlite:///{db}").close()  # migrated while there is room
    with sqlite3.connect(db) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    page_limit["pages"] = pages + 12
    store = SqlStore(f"sqlite:///{db}")
    server = BackgroundServer(create_app(store, ServerConfig(access_log=False))).start()
    tenant = store.create_tenant("acme")
    token, _ = issue_token(store, tenant.id)
    live = LiveServer(store, server)
    try:
        with live.client(token) as client, caplog.at_level(logging.WARNING, logger="provisor.server"):
            made = 0
            for i in range(200):  # fill it up
                r = client.post("/Users", json=make_user(f"u{i}@x.com", displayName="x" * 3000))
                if r.status_code != 201:
                    break
                made += 1
            else:
                raise AssertionError("the database never filled up")
            body = assert_scim_error(r, 507)
            assert "room" in body["detail"]
            assert_scim_error(client.post("/Groups", json={"schemas": [GROUP], "displayName": "G"}), 507)
            # nothing half-written, and reads go on
            assert client.get("/Users", params={"count": 0}).json()["totalResults"] == made
            assert store.count_resources(tenant.id) == {"User": made}
            assert "Traceback" not in caplog.text and "unhandled" not in caplog.text
            assert any(
                rec.levelno == logging.ERROR and "no room" in rec.getMessage() for rec in caplog.records
            )
            # room again: a delete frees nothing on disk at once, a bigger limit does
            page_limit["pages"] = pages + 1000
            store.connections.close()  # the pool's connections are replaced, with the new limit
            store.engine.dispose()
            r = client.post("/Users", json=make_user("after@x.com"))
            assert r.status_code == 201, r.text
    finally:
        server.stop()
        store.close()
