"""Slow clients (slowloris) against a real server on loopback (cli/coalescing.py): a request head
that does not complete in time, and a body that pauses too long, are answered 408 and closed; a
connection that sends nothing is closed; connections past the cap are answered 503. Requests
that come in time, on a keep-alive connection idle for longer than the timeouts between them,
are unaffected."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.cli.sockets import read_until_closed
from tests.conftest import LiveServer, serving

HEAD_TIMEOUT = 0.6
BODY_TIMEOUT = 0.6


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db: Path = tmp_path_factory.mktemp("slow") / "provisor.db"
    with serving(f"sqlite:///{db}", header_timeout=HEAD_TIMEOUT, body_timeout=BODY_TIMEOUT) as server:
        yield server


@pytest.fixture(scope="module")
def token(slow: LiveServer) -> str:
    return slow.new_tenant()[1]


def _connect(server: LiveServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.server.port), timeout=10)


def _status_and_error(raw: bytes) -> tuple[bytes, dict[str, str]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert b"content-type: application/scim+json" in lines and b"connection: close" in lines, head
    return head.split(b"\r\n")[0], json.loads(body)


def test_half_a_request_head_is_answered_408_and_closed(slow: LiveServer) -> None:
    start = time.monotonic()  # before the opening, which the server's time runs from
    with _connect(slow) as s:
        s.sendall(b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n")  # no blank line: never complete
        raw = read_until_closed(s)
        took = time.monotonic() - start
    assert HEAD_TIMEOUT * 0.8 <= took < HEAD_TIMEOUT + 3, took
    status, error = _status_and_error(raw)
    assert status == b"HTTP/1.1 408 Request Timeout"
    assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and error["status"] == "408"


def test_a_head_that_trickles_in_is_timed_out_from_its_first_byte(slow: LiveServer) -> None:
    """The head timeout bounds the whole head, not the pause between its bytes."""
    with _connect(slow) as s:
        start = time.monotonic()
        s.sendall(b"GET /scim/v2/Users HTTP/1.1\r\n")
        s.settimeout(0.1)
        raw = b""
        while time.monotonic() - start < HEAD_TIMEOUT + 3:
            try:
                s.sendall(b"X-A: b\r\n")
                chunk = s.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if not chunk:
                break
            raw += chunk
        took = time.monotonic() - start
    assert took < HEAD_TIMEOUT + 3, "the trickling head kept the connection open"
    assert raw.startswith(b"HTTP/1.1 408 "), raw[:80]


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(slow: LiveServer) -> None:
    with _connect(slow) as s:
        start = time.monotonic()
        raw = read_until_closed(s)
        took = time.monotonic() - start
    assert raw == b"" and took < HEAD_TIMEOUT + 3, took


def _post_head(token: str, length: int) -> bytes:
    return (
        f"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/scim+json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_a_body_that_stops_coming_is_answered_408_and_closed(slow: LiveServer, token: str) -> None:
    with _connect(slow) as s:
        start = time.monotonic()  # before the bytes the server's time runs from
        s.sendall(_post_head(token, 1000) + b'{"schemas": [')
        raw = read_until_closed(s)
        took = time.monotonic() - start
    assert BODY_TIMEOUT * 0.8 <= took < BODY_TIMEOUT + 3, took
    status, error = _status_and_error(raw)
    assert status == b"HTTP/1.1 408 Request Timeout" and error["status"] == "408"
    found = slow.client(token).get("/Users").json()
    assert found["totalResults"] == 0  # nothing half-sent was stored


def test_a_body_that_keeps_coming_slowly_is_read(slow: LiveServer, token: str) -> None:
    """The body timeout is a pause, not the whole body: bytes every sixth of it keep it going,
    for longer than the timeout in all (within the body's deadline, twice the timeout)."""
    body = json.dumps(
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "slowly@x.com"}
    ).encode()
    size = -(-len(body) // 9)
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    with _connect(slow) as s:
        s.sendall(_post_head(token, len(body)))
        start = time.monotonic()
        for piece in pieces:
            time.sleep(BODY_TIMEOUT / 6)
            s.sendall(piece)
        assert time.monotonic() - start > 1.2 * BODY_TIMEOUT
        s.settimeout(10)
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:200]


def test_a_body_that_trickles_past_its_deadline_is_answered_408(slow: LiveServer, token: str) -> None:
    """A byte every third of the timeout never pauses long enough, but the whole body has
    BODY_DEADLINE_FACTOR timeouts from its first bytes (the review: a trickle held a
    connection for good, and enough of them filled the connection cap)."""
    from provisor.cli.coalescing import BODY_DEADLINE_FACTOR

    with _connect(slow) as s:
        start = time.monotonic()  # before the bytes the server's time runs from
        s.sendall(_post_head(token, 1000) + b"{")
        s.settimeout(0.05)
        raw = b""
        while time.monotonic() - start < 10 * BODY_TIMEOUT:
            time.sleep(BODY_TIMEOUT / 3)
            try:
                s.sendall(b" ")
                raw += s.recv(65536)
            except (TimeoutError, BlockingIOError):
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if raw:
                break
        took = time.monotonic() - start
    assert BODY_DEADLINE_FACTOR * BODY_TIMEOUT * 0.8 <= took < BODY_DEADLINE_FACTOR * BODY_TIMEOUT + 3, took
    assert raw.startswith(b"HTTP/1.1 408 "), raw[:200]


def test_a_body_trickled_after_an_early_answer_is_cut_at_its_deadline(slow: LiveServer) -> None:
    """A 401 goes out before the body is read; the rest of the body is read within the body's
    deadline like any other, not for as long as a byte comes now and then (the review: an
    unauthenticated client held the connection for good, and enough of them filled the cap)."""
    from provisor.cli.coalescing import BODY_DEADLINE_FACTOR

    with _connect(slow) as s:
        s.sendall(_post_head("pvs_not-a-real-token", 1_000_000) + b"{")
        start = time.monotonic()
        s.settimeout(0.05)
        raw, closed = b"", False
        while time.monotonic() - start < 10 * BODY_TIMEOUT:
            time.sleep(BODY_TIMEOUT / 3)
            try:
                s.sendall(b" ")
                chunk = s.recv(65536)
            except (TimeoutError, BlockingIOError):
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if not chunk:
                closed = True
                break
            raw += chunk
        took = time.monotonic() - start
    assert raw.startswith(b"HTTP/1.1 401 "), raw[:200]
    assert closed and took < BODY_DEADLINE_FACTOR * BODY_TIMEOUT + 3, took


def test_keep_alive_requests_are_unaffected(slow: LiveServer, token: str) -> None:
    """Between requests a connection is idle, not slow: the head timer starts at a request's first
    byte, and uvicorn's keep-alive timeout (5 s) governs the pause between requests."""
    request = f"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    with _connect(slow) as s:
        for _ in range(3):
            s.sendall(request)
            answer = s.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
            time.sleep(HEAD_TIMEOUT * 2)  # longer than either timeout, shorter than keep-alive
        s.sendall(request)
        assert s.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_connections_past_the_cap_are_answered_503(tmp_path: Path) -> None:
    """max_connections=3 serves three connections at once (the review: uvicorn counts the asking
    connection too, so 3 served two, and 1 none), and answers a fourth 503. Two of them are idle
    after an answer; connections that sent nothing yet are capped apart (test_newcomers.py)."""
    with serving(f"sqlite:///{tmp_path / 'cap.db'}", max_connections=3) as server:
        idle = [_connect(server), _connect(server)]
        try:
            assert all(_served(s) for s in idle)  # kept alive
            third = _connect(server)
            idle.append(third)
            third.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert third.recv(65536).startswith(b"HTTP/1.1 200 ")
            with _connect(server) as fourth:
                fourth.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                raw = read_until_closed(fourth)
            status, error = _status_and_error(raw)
            assert status == b"HTTP/1.1 503 Service Unavailable" and error["status"] == "503"
            assert b"\r\nretry-after: 1\r\n" in raw.lower()
        finally:
            for s in idle:
                s.close()
        # the server has let go of them (a fixed 0.2 s was not always enough on a busy machine)
        state = server.server.server.server_state
        _wait_for(lambda: not state.connections, "the server to let go of the closed connections")
        with _connect(server) as again:
            again.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert read_until_closed(again).startswith(b"HTTP/1.1 200 ")


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _connect_from(server: LiveServer, address: str) -> socket.socket:
    """A connection from another loopback address (all of 127/8 is this machine's)."""
    port = server.server.port
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(address, 0))


def _served(s: socket.socket) -> bool:
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    return s.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_connections_past_the_per_client_cap_are_answered_503_and_other_clients_served(
    tmp_path: Path,
) -> None:
    """max_connections_per_client=2: a client address's third connection is answered 503 with
    Retry-After while its two are held, and another address is served all the while."""
    with serving(f"sqlite:///{tmp_path / 'client-cap.db'}", max_connections_per_client=2) as server:
        held = [_connect_from(server, "127.0.0.1"), _connect_from(server, "127.0.0.1")]
        try:
            assert all(_served(s) for s in held)
            with _connect_from(server, "127.0.0.1") as third:
                third.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                raw = read_until_closed(third)
            status, error = _status_and_error(raw)
            assert status == b"HTTP/1.1 503 Service Unavailable" and error["status"] == "503"
            assert b"\r\nretry-after: 1\r\n" in raw.lower()
            other = [_connect_from(server, "127.0.0.2"), _connect_from(server, "127.0.0.2")]
            held += other
            assert all(_served(s) for s in other)
            held.pop(0).close()  # the first client leaves one: its next connection is served
            counts = server.server.server.config.connections_per_client
            _wait_for(lambda: counts.get("127.0.0.1") == 1, "the server to let go of the closed one")
            with _connect_from(server, "127.0.0.1") as again:
                assert _served(again)
        finally:
            for s in held:
                s.close()
