"""Clients that do not read their answers against a real server on loopback (cli/coalescing.py):
a connection whose answers stop leaving for the write timeout is closed, the app's pending send
released as after a disconnect (no 500, nothing logged as an error), whether the connection was
kept alive or closing; other clients are served meanwhile; and a client that reads slowly but
steadily, for far longer than the timeout, gets its answer whole."""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.cli.sockets import read_until_closed
from tests.conftest import LiveServer, make_user, serving

WRITE_TIMEOUT = 1.0
USERS = 12
NAME_BYTES = 1_000_000  # a page of USERS is ~12 MB: more than loopback's socket buffers take (~4 MB)


@contextmanager
def _serving(db: Path, **options: object) -> Iterator[LiveServer]:
    from provisor.server import ServerConfig

    config = ServerConfig(access_log=False, max_body_bytes=2 * NAME_BYTES)
    with serving(f"sqlite:///{db}", config, write_timeout=WRITE_TIMEOUT, **options) as server:
        yield server


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("write") / "provisor.db"


@pytest.fixture(scope="module")
def big(db: Path) -> Iterator[tuple[LiveServer, str]]:
    """A server with a short write timeout, and the token of a tenant whose page of Users is ~12 MB."""
    with _serving(db) as server:
        _, token = server.new_tenant()
        with server.client(token) as client:
            for i in range(USERS):
                r = client.post("/Users", json=make_user(f"u{i}@x.com", displayName="n" * NAME_BYTES))
                assert r.status_code == 201, r.text
        yield server, token


def _page(token: str, close: bool = False) -> bytes:
    connection = "Connection: close\r\n" if close else ""
    return (
        f"GET /scim/v2/Users?count={USERS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"{connection}\r\n"
    ).encode()


def _reader(server: LiveServer, receive_buffer: int) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)  # before connect: the window
    s.settimeout(10)
    s.connect(("127.0.0.1", server.server.port))
    return s


def _wait_for(done: Callable[[], bool], limit: float = 20) -> bool:
    deadline = time.monotonic() + limit
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _read_slowly(s: socket.socket, state: Any, size: int, pause: float) -> tuple[bytes, float]:
    """Everything until the server closes, ``size`` bytes at most every ``pause`` seconds; and the
    longest the server's writing stayed paused meanwhile (else a test would prove nothing)."""
    chunks, longest, paused_since = [], 0.0, None
    while chunk := s.recv(size):
        chunks.append(chunk)
        now = time.monotonic()
        if any(c.flow.write_paused for c in state.connections):
            paused_since = paused_since or now
            longest = max(longest, now - paused_since)
        else:
            paused_since = None
        time.sleep(pause)
    return b"".join(chunks), longest


def _lengths(raw: bytes) -> tuple[int, int]:
    """An answer's Content-Length, and how much of its body came."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next(int(line.partition(b":")[2]) for line in lines if line.startswith(b"content-length:"))
    return length, len(body)


def _healthz(server: LiveServer) -> bytes:
    with socket.create_connection(("127.0.0.1", server.server.port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return read_until_closed(s).partition(b"\r\n")[0]


@pytest.mark.parametrize("close", [False, True], ids=["pipelined", "connection-close"])
def test_a_client_that_reads_none_of_its_answers_is_closed_after_the_write_timeout(
    big: tuple[LiveServer, str], caplog: pytest.LogCaptureFixture, close: bool
) -> None:
    """pipelined: two requests, the second's send waits for the first answer to drain; and
    connection-close: one answer, the transport closing with most of it unsent. Either was held
    for as long as the client kept the connection open."""
    server, token = big
    state = server.server.server.server_state
    caplog.set_level(logging.DEBUG, logger="uvicorn.error")
    with _reader(server, 4096) as s:
        s.sendall(_page(token, close=True) if close else _page(token) * 2)
        # the socket took what it could, the rest waits: the server's writing is paused
        assert _wait_for(lambda: any(c.flow.write_paused for c in state.connections))
        assert _healthz(server) == b"HTTP/1.1 200 OK"  # others are served meanwhile
        # the server lets go of the connection, and of the app's task, with the client still there
        assert _wait_for(lambda: not state.connections and not state.tasks)
        s.settimeout(30)
        raw = read_until_closed(s)  # what the socket had taken, then the end
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and raw.count(b"HTTP/1.1 ") == 1
    length, came = _lengths(raw)
    assert came < length  # the answer was cut, and no second one (nor a 500) begun
    assert "read none of its answers" in caplog.text
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert _healthz(server) == b"HTTP/1.1 200 OK"


def test_a_client_that_reads_slowly_gets_its_answer_whole(big: tuple[LiveServer, str]) -> None:
    """64 KiB every 20 ms: the server's writing stays paused for several write timeouts, but
    bytes leave all the while, so the connection is not cut."""
    server, token = big
    state = server.server.server.server_state
    with _reader(server, 65536) as s:
        s.sendall(_page(token, close=True))
        raw, longest = _read_slowly(s, state, 65536, 0.02)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    length, came = _lengths(raw)
    assert came == length > 10_000_000
    assert longest > 2 * WRITE_TIMEOUT, longest


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
def test_over_tls_a_client_that_reads_none_of_its_answers_is_closed_too(
    big: tuple[LiveServer, str], db: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The TLS protocol pauses the HTTP one as the socket does (cli/tls.py), and an abort of the
    HTTP protocol's transport closes the TCP connection beneath."""
    from tests.cli.test_tls_handshake import make_certificate

    _, token = big
    cert, key = make_certificate(tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    with _serving(db, tls_cert=str(cert), tls_key=str(key)) as server:
        caplog.set_level(logging.DEBUG, logger="uvicorn.error")  # once the server set its own
        state = server.server.server.server_state
        with context.wrap_socket(_reader(server, 4096), server_hostname="127.0.0.1") as s:
            s.sendall(_page(token) * 2)
            assert _wait_for(lambda: any(c.flow.write_paused for c in state.connections))
            assert _wait_for(lambda: not state.connections and not state.tasks)
    assert "read none of its answers" in caplog.text
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
def test_over_tls_a_client_that_reads_slowly_gets_its_answers_whole(db: Path, tmp_path: Path) -> None:
    """Over TLS an answer goes down to the TCP transport in one write, and the TLS transport's own
    bytes leave it only once the TCP transport has drained (to 16 bytes, on uvloop): the TLS
    transport alone showed no progress for as long as the client took to read a whole answer, and
    a client reading steadily, but a 270 KB answer slower than the write timeout, was cut off. The
    bytes the TCP transport holds count too (cli/tls.py)."""
    from tests.cli.test_tls_handshake import make_certificate

    from provisor.server import ServerConfig

    timeout = 1.0
    cert, key = make_certificate(tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    options = {"write_timeout": timeout, "tls_cert": str(cert), "tls_key": str(key)}
    with serving(f"sqlite:///{db}", ServerConfig(access_log=False), **options) as server:
        state = server.server.server.server_state
        tenant_id, token = server.new_tenant()
        made = server.store.create(tenant_id, "User", make_user("slow@x.com", displayName="s" * 270_000))
        get = f"GET /scim/v2/Users/{made.id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        # the first answer fills the TCP transport, the next two the TLS one past its high-water mark
        requests = (get + "\r\n") * 2 + get + "Connection: close\r\n\r\n"
        with context.wrap_socket(_reader(server, 4096), server_hostname="127.0.0.1") as s:
            assert _wait_for(lambda: len(state.connections) == 1)
            (connection,) = state.connections
            # the kernel's send buffer small, so that the transports hold the answers, not the kernel
            connection.transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
            )
            s.sendall(requests.encode())
            raw, longest = _read_slowly(s, state, 16384, 0.1)  # a TLS record at most: ~160 KB a second
    answers = raw.split(b"HTTP/1.1 ")[1:]
    assert len(answers) == 3 and all(a.startswith(b"200 OK\r\n") for a in answers)
    for answer in answers:
        length, came = _lengths(b"HTTP/1.1 " + answer)
        assert came == length > 270_000
    assert longest > 2 * timeout, longest  # else this test would prove nothing
