"""What the access log and metrics say of requests the app did not answer in full (a real server
on loopback, ``cli/coalescing.py`` and ``server/observability.py``): the status the client got
(408 for a body the server stopped waiting for, 499 for a client that went before its body did,
not the app's 400 that went nowhere); one line and one count for each request the protocol
answers itself, before the app; and latency to the answer, not to the end of what the app does
after it (a traced tenant's trace write)."""

from __future__ import annotations

import io
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.cli.sockets import read_until_closed
from tests.conftest import LiveServer

from provisor.server.access_log import AccessLog

TIMEOUT = 0.6


class Observed:
    """A server with its access log in memory (written at once)."""

    def __init__(self, server: LiveServer, sink: io.StringIO) -> None:
        self.server = server
        self.sink = sink

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.server.server.port), timeout=10)

    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.sink.getvalue().splitlines()]

    def wait_for_line(self, matches: Callable[[dict[str, Any]], bool], seconds: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = [line for line in self.lines() if matches(line)]
            if found:
                return found[-1]
            time.sleep(0.02)
        raise AssertionError(f"no such access-log line in {self.lines()}")

    def counted(self, method: str, route: str, status: str) -> float:
        text = httpx.get(f"{self.server.root}/metrics").text
        for family in text_string_to_metric_families(text):
            if family.name == "provisor_http_requests":
                for sample in family.samples:
                    if sample.name.endswith("_total") and sample.labels == {
                        "method": method,
                        "route": route,
                        "status": status,
                    }:
                        return sample.value
        return 0.0


@pytest.fixture
def observed(tmp_path: Path) -> Iterator[Observed]:
    from provisor.cli.serving import BackgroundServer
    from provisor.server import ServerConfig, create_app
    from provisor.store.sql import SqlStore

    sink = io.StringIO()
    store = SqlStore(f"sqlite:///{tmp_path / 'observed.db'}")
    app = create_app(store, ServerConfig(access_log=True), access_log=AccessLog(sink, batch_lines=1))
    server = BackgroundServer(app, header_timeout=TIMEOUT, body_timeout=TIMEOUT, max_connections=2).start()
    try:
        yield Observed(LiveServer(store, server), sink)
    finally:
        server.stop()
        store.close()


def _post_head(token: str, length: int) -> bytes:
    return (
        f"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/scim+json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_a_body_the_server_stopped_waiting_for_is_logged_and_counted_as_its_408(observed: Observed) -> None:
    _, token = observed.server.new_tenant()
    with observed.connect() as s:
        s.sendall(_post_head(token, 100) + b"{")
        assert read_until_closed(s).startswith(b"HTTP/1.1 408 ")
    line = observed.wait_for_line(lambda x: x["method"] == "POST")
    assert (line["path"], line["status"]) == ("/scim/v2/Users", 408)  # it said 400, the app's answer
    assert observed.counted("POST", "Users", "408") == 1
    assert observed.counted("POST", "Users", "400") == 0


def test_a_client_that_went_before_its_body_is_logged_and_counted_as_499(observed: Observed) -> None:
    _, token = observed.server.new_tenant()
    with observed.connect() as s:
        s.sendall(_post_head(token, 100) + b"{")
        time.sleep(0.1)
    line = observed.wait_for_line(lambda x: x["method"] == "POST")
    assert line["status"] == 499  # nginx's "client closed request": no answer reached anyone
    assert observed.counted("POST", "Users", "499") == 1
    assert observed.counted("POST", "Users", "400") == 0


@pytest.mark.parametrize(
    ("sent", "status", "method", "path", "route"),
    [
        (
            b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n",
            408,
            "GET",
            "/scim/v2/Users",
            "Users",
        ),  # never completed
        (b"\x16\x03\x01 not http at all\r\n\r\n", 400, None, None, "other"),
        (b"GET /scim/v2/Users HTTP/1.1\r\nBad Header Line\r\n\r\n", 400, "GET", "/scim/v2/Users", "Users"),
        (
            b"GET /scim/v2/" + b"x" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            414,
            "GET",
            "/scim/v2/xxx",
            "other",
        ),
        (
            b"GET /scim/v2/Groups HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 70_000 + b"\r\n\r\n",
            431,
            "GET",
            "/scim/v2/Groups",
            "Groups",
        ),
        (b"GET /scim/v2/Users HTTP/2.0\r\nHost: x\r\n\r\n", 505, "GET", "/scim/v2/Users", "Users"),
    ],
)
def test_a_request_the_protocol_answers_itself_is_logged_and_counted(
    observed: Observed, sent: bytes, status: int, method: str | None, path: str | None, route: str
) -> None:
    with observed.connect() as s:
        s.sendall(sent)
        assert read_until_closed(s).startswith(f"HTTP/1.1 {status} ".encode())
    line = observed.wait_for_line(lambda x: x["status"] == status)
    assert line["method"] == method and line["ms"] is None and line["tenant"] is None
    if status == 414:  # its path is cut in the log, as every long one is
        assert line["path"].startswith(f"{path}xxx") and line["path"].endswith("...")
    else:
        assert line["path"] == path
    assert line["client"] == "127.0.0.1"
    assert observed.counted(method or "unknown", route, str(status)) == 1


def test_a_request_past_the_connection_limit_is_logged_and_counted_as_its_503(observed: Observed) -> None:
    held = [observed.connect(), observed.connect()]
    try:
        for s in held:  # both served and kept alive: the server's two connections
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
        with observed.connect() as third:
            third.sendall(b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_until_closed(third).startswith(b"HTTP/1.1 503 ")
    finally:
        for s in held:
            s.close()
    line = observed.wait_for_line(lambda x: x["status"] == 503)
    assert (line["method"], line["path"], line["ms"]) == ("GET", "/scim/v2/Users", None)
    time.sleep(0.2)  # the held connections let go of, /metrics is served
    assert observed.counted("GET", "Users", "503") == 1


def test_a_traced_requests_latency_ends_with_its_answer_not_its_trace_write(observed: Observed) -> None:
    """A traced tenant writes each trace after its answer; while another writer holds the
    database that write waits, and the access log said seconds the client never waited."""
    _, token = observed.server.new_tenant({"trace": 10})
    db = observed.server.store.url.removeprefix("sqlite:///")
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    released = threading.Timer(1.5, lambda: holder.execute("ROLLBACK"))
    released.start()
    try:
        start = time.monotonic()
        with observed.server.client(token) as client:
            assert client.get("/Users", params={"count": "1"}).status_code == 200
        waited = time.monotonic() - start
    finally:
        released.join()
        holder.close()
    assert waited < 1.0, waited  # reads do not wait for the writer (WAL)
    line = observed.wait_for_line(
        lambda x: x["method"] == "GET" and x["path"] == "/scim/v2/Users", seconds=15
    )
    assert line["ms"] < 1000, line  # it was the trace write's wait too: 1,500 and more
