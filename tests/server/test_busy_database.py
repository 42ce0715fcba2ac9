"""A database another process keeps locked past the busy timeout: the write is answered 503 with
Retry-After (a SCIM Error, logged as a warning without a traceback), nothing is stored, and the
next write after the lock is released goes through. Reads never wait (WAL), nor does anything
else the server answers while its writes wait for the lock (``server/writes.py``)."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tests.conftest import GROUP, PATCH_OP, LiveServer, assert_scim_error, create_user, make_user

from provisor.server import ServerConfig, create_app
from provisor.server.auth import issue_token
from provisor.store.sql import SqlStore


@contextmanager
def busy_server(
    tmp_path: Path, busy_timeout_ms: int = 150, settings: dict[str, object] | None = None
) -> Iterator[tuple[LiveServer, str, Path]]:
    from provisor.cli.serving import BackgroundServer

    db = tmp_path / "busy.db"
    store = SqlStore(f"sqlite:///{db}", engine_options={"busy_timeout_ms": busy_timeout_ms})
    server = BackgroundServer(create_app(store, ServerConfig(access_log=False))).start()
    tenant = store.create_tenant("acme", settings)
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


def test_a_bulk_request_under_the_lock_is_503_and_changes_nothing(tmp_path: Path) -> None:
    """A /Bulk that could not get the database within the busy timeout: none of its operations
    ran, so the whole request is answered 503 with Retry-After (send it all again); nothing
    stored. Without the lock, its operations run as usual."""
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
            body = assert_scim_error(r, 503)
            assert r.headers["retry-after"] == "1" and "busy" in body["detail"]
        assert client.get("/Users").json()["totalResults"] == 0
        assert client.get("/Groups").json()["totalResults"] == 0
        r = client.post("/Bulk", json=bulk)
        assert r.status_code == 200 and "retry-after" not in r.headers
        assert [op["status"] for op in r.json()["Operations"]] == ["201", "201"]


#: How long the tests below hold the lock, and how long a request may take meanwhile: far less,
#: with room for a loaded CI machine (before the batcher took the lock without waiting, every
#: request waited for the whole hold).
HOLD = 3.0
FAST = 1.0


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_reads_and_health_checks_go_on_while_a_write_waits_for_the_lock(tmp_path: Path) -> None:
    """Another process holds the write lock for 3 s (a large ``tenant delete``, say) while a POST
    waits for it: /healthz and reads are answered at once meanwhile, and the POST is stored as
    soon as the lock is released (within the 10 s busy timeout), once."""
    with busy_server(tmp_path, busy_timeout_ms=10_000) as (live, token, db), live.client(token) as client:
        uid = create_user(client, "first@x.com")["id"]
        with ThreadPoolExecutor(1) as pool, live.client(token) as writer:
            with write_lock(db):
                held = time.monotonic()
                waiting = pool.submit(timed, lambda: writer.post("/Users", json=make_user("second@x.com")))
                time.sleep(0.3)  # the POST is in, waiting for the lock
                for call in (
                    lambda: httpx.get(f"{live.root}/healthz"),
                    lambda: client.get(f"/Users/{uid}"),
                    lambda: client.get("/Users", params={"filter": 'userName eq "first@x.com"'}),
                ):
                    r, took = timed(call)
                    assert r.status_code == 200 and took < FAST, (r.request.url, took)
                time.sleep(max(0.0, HOLD - (time.monotonic() - held)))
                assert not waiting.done()
            r, took = waiting.result()
        assert r.status_code == 201, r.text
        assert took >= HOLD - 0.5
        assert client.get("/Users").json()["totalResults"] == 2


def test_a_traced_tenant_is_answered_while_its_trace_waits_for_the_lock(tmp_path: Path) -> None:
    """A traced request keeps its trace (a write) after the answer: under another process's lock
    the answer and the next requests go out at once, and the trace is kept once the lock is free."""
    settings = {"trace": 5}
    with (
        busy_server(tmp_path, busy_timeout_ms=10_000, settings=settings) as (live, token, db),
        live.client(token) as client,
    ):
        uid = create_user(client, "first@x.com")["id"]
        tenant = live.store.get_tenant("acme")
        with write_lock(db):
            for _ in range(3):
                r, took = timed(lambda: client.get(f"/Users/{uid}"))
                assert r.status_code == 200 and took < FAST, took
        deadline = time.monotonic() + 5
        while len(live.store.traces(tenant.id)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [t.method for t in live.store.traces(tenant.id)] == ["POST", "GET", "GET", "GET"]
