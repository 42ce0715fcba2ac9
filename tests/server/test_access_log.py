"""The access log: one JSON line per request, kept and written in batches, never a secret."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisor.server.access_log import MAX_CLIENT, AccessLog, UtcStamp

SCIM = "application/scim+json"


class Recorder:
    """A sink that remembers each write (a batch) and each flush."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self.flushes = 0

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        self.flushes += 1

    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for batch in self.writes for line in batch.splitlines()]


class Broken:
    def write(self, text: str) -> None:
        raise BrokenPipeError("the reader went away")

    def flush(self) -> None:
        raise AssertionError("flush after a failed write")


def _log(sink: Any, **kw: Any) -> AccessLog:
    return AccessLog(sink, clock=lambda: 1_796_026_344.394, **kw)


def in_loop(fn: Any) -> Any:
    """Run ``fn`` inside a running event loop, as the server calls the access log."""

    async def run() -> Any:
        return fn()

    return asyncio.run(run())


def _one(log: AccessLog, path: str = "/scim/v2/Users", status: int = 200) -> None:
    log.request("GET", path, status, 0.16, "t1", "127.0.0.1")


# -- timestamps -----------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=4_102_444_800_000_000))  # 1970 to 2100, in microseconds
def test_the_timestamp_is_what_datetime_writes(micros: int) -> None:
    now = micros / 1_000_000
    want = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert UtcStamp()(now) == want


def test_the_timestamp_keeps_up_as_seconds_pass() -> None:
    stamp = UtcStamp()
    assert stamp(0.999) == "1970-01-01T00:00:00.999Z"
    assert stamp(1.0) == "1970-01-01T00:00:01.000Z"
    assert stamp(86_400.25) == "1970-01-02T00:00:00.250Z"
    assert stamp(0.5) == "1970-01-01T00:00:00.500Z"  # back in time (a clock step): still right


# -- batching -------------------------------------------------------------------------------------


def test_a_line_is_the_request_as_json_and_is_kept_until_flushed() -> None:
    sink = Recorder()
    log = _log(sink, flush_seconds=60)

    def two() -> None:
        _one(log)
        log.request("POST", '/scim/v2/Users/"odd"\u00e9', 409, 1.5, None, "10.0.0.7")

    in_loop(two)
    assert sink.writes == []
    log.flush()
    assert len(sink.writes) == 1 and sink.flushes == 1  # both lines in one write
    assert sink.lines() == [
        {
            "time": "2026-11-30T08:12:24.394Z",
            "method": "GET",
            "path": "/scim/v2/Users",
            "status": 200,
            "ms": 0.16,
            "tenant": "t1",
            "client": "127.0.0.1",
        },
        {
            "time": "2026-11-30T08:12:24.394Z",
            "method": "POST",
            "path": '/scim/v2/Users/"odd"\u00e9',
            "status": 409,
            "ms": 1.5,
            "tenant": None,
            "client": "10.0.0.7",
        },
    ]
    log.flush()
    assert len(sink.writes) == 1  # nothing kept, nothing written


def test_a_long_path_is_cut_short() -> None:
    from provisor.server.access_log import MAX_PATH

    sink = Recorder()
    log = _log(sink, flush_seconds=60)
    in_loop(lambda: log.request("GET", "/scim/v2/" + "A" * 40_000, 401, 0.1, None, "10.0.0.7"))
    log.flush()
    (line,) = sink.lines()
    assert line["path"] == ("/scim/v2/" + "A" * 40_000)[:MAX_PATH] + "..." and line["status"] == 401


def test_a_secret_token_in_the_path_is_redacted() -> None:
    """A Secret Token pasted onto the Tenant URL (``/scim/v2/Users/pvs_...``) was logged in clear,
    401 lines included: the README says no Secret Token reaches the access log."""
    token = "pvs_" + "Zz9-_q" * 7 + "W"
    sink = Recorder()
    log = _log(sink, flush_seconds=60)
    in_loop(lambda: log.request("GET", f"/scim/v2/Users/{token}", 401, 0.1, None, "10.0.0.7"))
    in_loop(lambda: log.request("GET", f"/scim/v2/{token}/Users", 404, 0.1, "t1", "10.0.0.7"))
    log.flush()
    assert [line["path"] for line in sink.lines()] == [
        "/scim/v2/Users/[redacted]",
        "/scim/v2/[redacted]/Users",
    ]
    assert "pvs_" not in "".join(sink.writes)


def test_a_full_buffer_is_written_at_once() -> None:
    sink = Recorder()
    log = _log(sink, batch_lines=3, flush_seconds=60)
    in_loop(lambda: (_one(log), _one(log)))
    assert sink.writes == []
    in_loop(lambda: _one(log))  # the third line fills the batch
    assert len(sink.writes) == 1 and len(sink.lines()) == 3


def test_without_an_event_loop_each_line_is_written_at_once() -> None:
    sink = Recorder()
    log = _log(sink)
    _one(log)
    assert len(sink.lines()) == 1


def test_in_a_server_kept_lines_are_written_within_flush_seconds() -> None:
    sink = Recorder()

    async def serve() -> None:
        log = _log(sink, flush_seconds=0.05)
        _one(log)
        _one(log)
        assert sink.writes == []  # kept: the loop has not turned yet
        await asyncio.sleep(0.2)
        assert len(sink.writes) == 1 and len(sink.lines()) == 2
        _one(log)  # a new batch, a new timer
        await asyncio.sleep(0.2)
        assert len(sink.writes) == 2 and len(sink.lines()) == 3

    asyncio.run(serve())


def test_a_new_event_loop_gets_its_own_timer() -> None:
    # A line kept in a loop that ended before its timer fired is written by the next loop's timer
    # (a server stopped and started again in one process, as tests do), not kept forever.
    sink = Recorder()
    log = _log(sink, flush_seconds=0.05)
    in_loop(lambda: _one(log, "/first"))
    assert sink.writes == []  # that loop ended with the line kept and its timer pending

    async def second() -> None:
        _one(log, "/second")
        await asyncio.sleep(0.2)

    asyncio.run(second())
    assert [line["path"] for line in sink.lines()] == ["/first", "/second"]


def test_close_writes_what_is_kept_and_later_lines_at_once() -> None:
    sink = Recorder()
    log = _log(sink, flush_seconds=60)
    in_loop(lambda: _one(log))
    assert sink.writes == []
    log.close()
    assert len(sink.lines()) == 1
    _one(log)
    assert len(sink.lines()) == 2


def test_a_failing_sink_loses_lines_but_never_fails_a_request(caplog: pytest.LogCaptureFixture) -> None:
    log = _log(Broken())
    with caplog.at_level(logging.WARNING, logger="provisor.access"):
        _one(log)
        _one(log)
    warnings = [r for r in caplog.records if r.name == "provisor.access"]
    assert len(warnings) == 1 and "lost" in warnings[0].getMessage()


# -- a live server --------------------------------------------------------------------------------


def test_a_live_server_logs_every_request_and_no_secret(tmp_path: Path) -> None:
    from provisor.cli.serving import BackgroundServer
    from provisor.server import ServerConfig, create_app
    from provisor.server.auth import issue_token
    from provisor.store.sql import SqlStore

    sink = io.StringIO()
    store = SqlStore(f"sqlite:///{tmp_path / 'log.db'}")
    tenant = store.create_tenant("logged")
    token, _ = issue_token(store, tenant.id)
    plain = store.create_tenant("plain", {"compat": {"bearer_scheme_variants": False}})
    plain_token, _ = issue_token(store, plain.id)
    app = create_app(store, ServerConfig(access_log=True), access_log=AccessLog(sink, flush_seconds=60))
    server = BackgroundServer(app).start()
    try:
        base = f"http://127.0.0.1:{server.port}/scim/v2"
        auth = {"Authorization": f"Bearer {token}", "Content-Type": SCIM}
        user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "secret.person@x.com"}
        assert httpx.post(f"{base}/Users", headers=auth, json=user).status_code == 201
        query = quote('userName eq "secret.person@x.com"')
        assert httpx.get(f"{base}/Users?filter={query}", headers=auth).status_code == 200
        assert httpx.get(f"{base}/Users", headers={"Authorization": "Bearer pvs_wrong"}).status_code == 401
        assert httpx.get(f"{base}/Nothing", headers=auth).status_code == 404
        # a bare token (no Bearer) of a tenant that takes none: refused, so not its request either
        assert httpx.get(f"{base}/Users", headers={"Authorization": plain_token}).status_code == 401
        assert sink.getvalue() == ""  # kept: flush_seconds has not passed
    finally:
        server.stop()  # uvicorn's lifespan shutdown writes the kept lines
        store.close()
    text = sink.getvalue()
    lines = [orjson.loads(line) for line in text.splitlines()]
    assert [(x["method"], x["path"], x["status"]) for x in lines] == [
        ("POST", "/scim/v2/Users", 201),
        ("GET", "/scim/v2/Users", 200),
        ("GET", "/scim/v2/Users", 401),
        ("GET", "/scim/v2/Nothing", 404),
        ("GET", "/scim/v2/Users", 401),
    ]
    # no tenant before a token is accepted; once one is, even a request for no route has its tenant
    assert [x["tenant"] for x in lines] == [tenant.id, tenant.id, None, tenant.id, None]
    assert all(x["client"] == "127.0.0.1" and x["ms"] >= 0 for x in lines)
    assert token not in text and "pvs_wrong" not in text and "secret.person" not in text
    assert plain_token not in text


def test_the_apps_lifespan_shutdown_writes_the_kept_lines(tmp_path: Path) -> None:
    from provisor.server import ServerConfig, create_app
    from provisor.store.sql import SqlStore

    sink = Recorder()
    store = SqlStore(f"sqlite:///{tmp_path / 'life.db'}")
    app = create_app(store, ServerConfig(), access_log=AccessLog(sink, flush_seconds=60))
    said: list[dict[str, Any]] = []

    async def lifespan() -> None:
        inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

        async def receive() -> dict[str, Any]:
            if inbox[0]["type"] == "lifespan.shutdown":  # a request while the server runs
                assert app.access_log is not None
                _one(app.access_log)
            return inbox.pop(0)

        async def send(message: dict[str, Any]) -> None:
            said.append(message)

        await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)

    try:
        asyncio.run(lifespan())
    finally:
        store.close()
    assert [m["type"] for m in said] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert len(sink.lines()) == 1


def test_a_client_address_longer_than_any_address_is_cut() -> None:
    """A trusted proxy's X-Forwarded-For is taken as the client; what a client behind it wrote
    there is cut like a long path, so no one decides how much the log grows by."""
    sink = io.StringIO()
    log = _log(sink)
    log.request("GET", "/scim/v2/Users", 200, 0.1, None, "A" * 5000)
    log.request("GET", "/scim/v2/Users", 200, 0.1, None, "2001:db8:85a3:8d3:1319:8a2e:370:7348")
    log.flush()
    cut, kept = (orjson.loads(line)["client"] for line in sink.getvalue().splitlines())
    assert cut == "A" * MAX_CLIENT + "..." and kept == "2001:db8:85a3:8d3:1319:8a2e:370:7348"
