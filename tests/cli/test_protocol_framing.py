"""How the HTTP/1.1 protocol (``cli/coalescing.py``) frames what a client sends when uvicorn's
httptools protocol would not: a request asking for an upgrade (its body was parsed as a request of
its own: request smuggling), an empty line after an answer (it held the connection past every
timeout), a client that half-closes after its request (it got no answer), ``Expect`` on HTTP/1.0,
a malformed chunked body (logged twice), a WebSocket handshake (a plain-text 500 and a traceback).
A real server on loopback; the access log in memory."""

from __future__ import annotations

import io
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.cli.sockets import read_until_closed
from tests.conftest import LiveServer

from provisor.server.access_log import AccessLog

TIMEOUT = 0.8


class Served:
    def __init__(self, server: LiveServer, sink: io.StringIO, token: str) -> None:
        self.server, self.sink, self.token = server, sink, token

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.server.server.port), timeout=10)

    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.sink.getvalue().splitlines()]

    def users(self) -> int:
        with self.server.client(self.token) as client:
            return int(client.get("/Users", params={"count": "0"}).json()["totalResults"])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    from provisor.cli.serving import BackgroundServer
    from provisor.server import ServerConfig, create_app
    from provisor.store.sql import SqlStore

    sink = io.StringIO()
    store = SqlStore(f"sqlite:///{tmp_path / 'framing.db'}")
    app = create_app(store, ServerConfig(access_log=True), access_log=AccessLog(sink, batch_lines=1))
    server = BackgroundServer(app, header_timeout=TIMEOUT, body_timeout=TIMEOUT).start()
    live = LiveServer(store, server)
    try:
        yield Served(live, sink, live.new_tenant()[1])
    finally:
        server.stop()
        store.close()


def _responses(raw: bytes) -> list[bytes]:
    """The status lines in what the server sent (a response follows the last one's body at once)."""
    return re.findall(rb"HTTP/1\.[01] \d{3} [A-Za-z ]+(?=\r\n)", raw)


def _post_users(token: str, length: int, more_headers: bytes = b"", version: bytes = b"1.1") -> bytes:
    """The head of a POST /Users of ``length`` body bytes (``more_headers``: whole header lines)."""
    return (
        b"POST /scim/v2/Users HTTP/"
        + version
        + b"\r\nHost: x\r\nAuthorization: Bearer "
        + token.encode()
        + b"\r\nContent-Type: application/scim+json\r\nContent-Length: "
        + str(length).encode()
        + b"\r\n"
        + more_headers
        + b"\r\n"
    )


def _user(name: str) -> bytes:
    return orjson.dumps({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})


SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("upgrade", [b"foo", b"h2c", b"websocket"])
@pytest.mark.parametrize("together", [True, False])
def test_a_body_after_an_upgrade_request_is_never_a_request_of_its_own(
    served: Served, upgrade: bytes, together: bool
) -> None:
    """httptools stops at a head asking for an upgrade: the body that came later was parsed as a
    request (two answers for one request, the second of the attacker's choosing)."""
    head = _post_users(served.token, len(SMUGGLED), b"Connection: Upgrade\r\nUpgrade: " + upgrade + b"\r\n")
    with served.connect() as s:
        if together:
            s.sendall(head + SMUGGLED)
        else:
            s.sendall(head)
            time.sleep(0.3)
            try:
                s.sendall(SMUGGLED)
            except OSError:
                pass  # already answered and closed
        raw = read_until_closed(s)
    assert _responses(raw) == [b"HTTP/1.1 400 Bad Request"], raw[:300]
    assert b"Upgrade is not supported" in raw
    time.sleep(0.2)
    assert not [x for x in served.lines() if x["path"] == "/healthz"]  # the body never ran
    assert [x["status"] for x in served.lines() if x["method"] == "POST"] == [400]
    assert served.users() == 0


def test_a_get_asking_for_h2c_is_answered_as_http_1_1(served: Served) -> None:
    """What `curl --http2` sends to an http:// URL: answered, then the connection closed."""
    with served.connect() as s:
        s.sendall(
            b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + served.token.encode()
            + b"\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            + b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
        )
        raw = read_until_closed(s)
    assert _responses(raw) == [b"HTTP/1.1 200 OK"] and b'"totalResults":0' in raw


def test_a_websocket_handshake_is_an_ordinary_request(served: Served) -> None:
    """It was a plain-text 500 and an error traceback in the log, for anyone, with no token."""
    with served.connect() as s:
        s.sendall(
            b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        raw = read_until_closed(s)
    assert _responses(raw) == [b"HTTP/1.1 401 Unauthorized"]
    assert b"urn:ietf:params:scim:api:messages:2.0:Error" in raw
    assert [x["status"] for x in served.lines()] == [401]


def test_an_empty_line_after_an_answer_does_not_hold_the_connection(served: Served) -> None:
    """uvicorn stopped its keep-alive timer for the bytes, and no header timer started: one CRLF
    held the connection past every timeout, a way round --max-connections."""
    with served.connect() as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
        start = time.monotonic()
        s.sendall(b"\r\n")
        rest = read_until_closed(s)
        took = time.monotonic() - start
    assert rest == b"" and took < TIMEOUT + 6, took  # closed by the header timeout (or keep-alive's)


def test_a_request_then_a_half_close_is_answered(served: Served) -> None:
    """RFC 9112 section 9.6: a client that half-closes sends no more requests, and still reads the
    answers to those it sent; it got none (and the user was created, logged as 201)."""
    body = _user("half@x.com")
    request = _post_users(served.token, len(body)) + body
    with served.connect() as s:
        s.sendall(request + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        raw = read_until_closed(s)
    assert _responses(raw) == [b"HTTP/1.1 201 Created", b"HTTP/1.1 200 OK"], raw[:300]
    assert served.users() == 1


def test_a_half_close_in_the_middle_of_a_request_closes_the_connection(served: Served) -> None:
    with served.connect() as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # no end of the head: it never can have one
        s.shutdown(socket.SHUT_WR)
        start = time.monotonic()
        assert read_until_closed(s) == b""
        assert time.monotonic() - start < TIMEOUT


def test_no_100_continue_to_an_http_1_0_client(served: Served) -> None:
    """RFC 9110 section 15.2: a server must not send a 1xx to an HTTP/1.0 client."""
    body = _user("ten@x.com")
    with served.connect() as s:
        s.sendall(_post_users(served.token, len(body), b"Expect: 100-continue\r\n", b"1.0"))
        time.sleep(0.3)
        s.sendall(body)
        raw = read_until_closed(s)
    assert b"100 Continue" not in raw and raw.startswith(b"HTTP/1.1 201 "), raw[:200]


def test_a_malformed_chunked_body_is_one_line_and_one_count_of_its_400(served: Served) -> None:
    """It was two: `null null 400` for the protocol's answer and `POST ... 499` for the app."""
    with served.connect() as s:
        s.sendall(
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + served.token.encode()
            + b"\r\nContent-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
        )
        raw = read_until_closed(s)
    assert _responses(raw) == [b"HTTP/1.1 400 Bad Request"]
    time.sleep(0.3)
    assert [(x["method"], x["path"], x["status"]) for x in served.lines()] == [
        ("POST", "/scim/v2/Users", 400)
    ]
