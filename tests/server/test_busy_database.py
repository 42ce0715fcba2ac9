"""A database another process keeps locked past the busy timeout: the write is answered 503 with
Retry-After (a SCIM Error, logged as a warning without a traceback), nothing is stored, and the
next write after the lock is released goes through. Reads never wait (WAL)."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.conftest import GROUP, PATCH_OP, LiveServer, assert_scim_error, make_user

from provisor.server import ServerConfig, create_app
from provisor.server.auth import issue_token
from provisor.store.sql import SqlStore


@contextmanager
def busy_server(tmp_path: Path, busy_timeout_ms: int = 150) -> Iterator[tuple[LiveServer, str, Path]]:
    from provisor.cli.serving import BackgroundServer

    db = tmp_path / "busy.db"
    store = SqlStore(f"sqlite:///{db}", engine_options={"busy_timeout_ms": busy_timeout_ms})
    server = BackgroundServer(create_app(store, ServerConfig(access_log=False))).start()
    tenant = store.create_tenant("acme")
    token, _ = issue_token(store, tenant.id)
    try:
        yield LiveServer(store, server), token, db
    finally:
        server.stop()
        store.close()


@contextmanager
def write_lock(db: Path) -> Iterator[None]:
    """Another process's writer holding the database (as ``BEGIN IMMEDIATE`` does) until the end."""
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_write_that_cannot_get_the_lock_is_503_and_changes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with busy_server(tmp_path) as (live, token, db), live.client(token) as client:
        created = client.post("/Users", json=make_user("first@x.com"))
        assert created.status_code == 201, created.text
        uid = created.json()["id"]
        patch = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "displayName", "value": "New"}],
        }
        with caplog.at_level(logging.WARNING, logger="provisor.server"), write_lock(db):
            for r in (
                client.post("/Users", json=make_user("second@x.com")),
                client.patch(f"/Users/{uid}", json=patch),
                client.post("/Groups", json={"schemas": [GROUP], "displayName": "G"}),
                client.delete(f"/Users/{uid}"),
            ):
                body = assert_scim_error(r, 503)
                assert r.headers["retry-after"] == "1"
                assert "busy" in body["detail"]
            # reads go on while the lock is held (WAL): the first user, unchanged
            r = client.get(f"/Users/{uid}")
            assert r.status_code == 200 and "displayName" not in r.json()
            assert client.get("/Users").json()["totalResults"] == 1
        assert "Traceback" not in caplog.text and "unhandled" not in caplog.text
        assert any(rec.levelno == logging.WARNING and "busy" in rec.getMessage() for rec in caplog.records)
        # the lock released: the same writes go through
        assert client.post("/Users", json=make_user("second@x.com")).status_code == 201
        assert client.patch(f"/Users/{uid}", json=patch).json()["displayName"] == "New"
        assert client.get("/Users").json()["totalResults"] == 2


def test_a_read_never_waits_for_the_lock_to_record_its_token(tmp_path: Path) -> None:
    """The first request of a token records its use (``token list``) without waiting: under
    another writer's lock that record is skipped, and the read is answered at once."""
    with busy_server(tmp_path, busy_timeout_ms=4000) as (live, token, db), live.client(token) as client:
        assert client.get("/Users").status_code == 200  # this token's use is recorded
        tenant = live.store.get_tenant("acme")
        fresh, info = issue_token(live.store, tenant.id, label="fresh")
        with write_lock(db), live.client(fresh) as second:
            started = time.monotonic()
            assert second.get("/Users").status_code == 200
            assert time.monotonic() - started < 2  # not the 4 s busy timeout
        used = {t.label: t.last_used for t in live.store.list_tokens(tenant.id)}
        assert used["fresh"] is None and all(v is not None for k, v in used.items() if k != "fresh")


def test_a_bulk_request_under_the_lock_says_when_to_send_it_again(tmp_path: Path) -> None:
    """A /Bulk whose operations found the database busy: each operation's result is 503, and the
    response says when to send it again (``Retry-After``); nothing stored. Without the lock: no
    Retry-After."""
    group = {"schemas": [GROUP], "displayName": "G"}
    bulk = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": make_user("bulk-a@x.com")},
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": group},
        ],
    }
    with busy_server(tmp_path) as (live, token, db), live.client(token) as client:
        with write_lock(db):
            r = client.post("/Bulk", json=bulk)
            assert r.status_code == 200 and r.headers["retry-after"] == "1"
            assert [op["status"] for op in r.json()["Operations"]] == ["503", "503"]
        assert client.get("/Users").json()["totalResults"] == 0
        assert client.get("/Groups").json()["totalResults"] == 0
        r = client.post("/Bulk", json=bulk)
        assert r.status_code == 200 and "retry-after" not in r.headers
        assert [op["status"] for op in r.json()["Operations"]] == ["201", "201"]
