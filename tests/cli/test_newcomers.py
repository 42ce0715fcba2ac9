"""Silent connections over plain HTTP against a real server on loopback (cli/newcomers.py): past
--max-connections connections that have not sent a request yet the oldest is dropped, long
before the header timeout, so a client that sends its request is served; connections that sent
one, idle between requests, are neither dropped nor crowded out; and a server with few file
descriptors is not run out of them by silent connections."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli.sockets import (
    connect,
    held_once_accepted,
    serving_with_few_files,
    silent_connections,
    still_open,
)
from tests.conftest import LiveServer, serving

CAP = 4  # --max-connections, and so the newcomers held at once
HEAD_TIMEOUT = 30.0  # far longer than the test: a silent connection closed was dropped by the cap
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    db = f"sqlite:///{tmp_path / 'provisor.db'}"
    with serving(db, max_connections=CAP, header_timeout=HEAD_TIMEOUT) as live:
        yield live


def _closed_soon(s: socket.socket, limit: float = 5) -> bool:
    """Whether the server closes ``s`` within ``limit`` seconds (it sends nothing before a request)."""
    s.settimeout(limit)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _status(s: socket.socket, request: bytes = HEALTHZ) -> bytes:
    s.sendall(request)
    return s.recv(65536).partition(b"\r\n")[0]


def test_past_the_cap_the_oldest_silent_connection_is_dropped_and_clients_are_served(
    server: LiveServer,
) -> None:
    port = server.server.port
    _, token = server.new_tenant()
    users = f"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    silent = [connect(port) for _ in range(CAP)]
    time.sleep(0.2)  # all accepted, in this order
    newer = [connect(port) for _ in range(2)]
    clients: list[socket.socket] = []
    try:
        # the two oldest are dropped at once, long before the header timeout
        assert _closed_soon(silent[0]) and _closed_soon(silent[1])
        assert all(still_open(s) for s in silent[2:] + newer)
        # a client that sends its request is served, its arrival dropping the next oldest
        clients.append(connect(port))
        assert _status(clients[-1]) == b"HTTP/1.1 200 OK"
        assert _closed_soon(silent[2])
        # served, it is no newcomer any more: the next client finds room and drops none
        clients.append(connect(port))
        assert _status(clients[-1], users) == b"HTTP/1.1 200 OK"
        assert all(still_open(s) for s in [silent[3], *newer, *clients])
    finally:
        for s in silent + newer + clients:
            s.close()


def test_connections_that_sent_a_request_are_not_dropped_nor_crowded_out(server: LiveServer) -> None:
    """Connections idle after an answer are not newcomers: a flood of silent ones drops none of
    them, and takes none of their places (each is answered 200, not 503). They are still capped
    apart: with CAP of them held, a newcomer's request is answered 503."""
    port = server.server.port
    served = [connect(port) for _ in range(CAP)]
    silent: list[socket.socket] = []
    try:
        assert all(_status(s) == b"HTTP/1.1 200 OK" for s in served)  # kept alive
        silent = [connect(port) for _ in range(3 * CAP)]
        assert all(_closed_soon(s) for s in silent[: 2 * CAP])  # the oldest 2 * CAP dropped
        assert all(still_open(s) for s in served)
        assert all(_status(s) == b"HTTP/1.1 200 OK" for s in served)
        with connect(port) as newcomer:
            assert _status(newcomer) == b"HTTP/1.1 503 Service Unavailable"
    finally:
        for s in served + silent:
            s.close()


def test_silent_connections_do_not_run_the_server_out_of_file_descriptors(tmp_path: Path) -> None:
    """``provisor serve`` over plain HTTP with 160 file descriptors and 200 connections that never
    say a word: it holds no more of them than --max-connections, and /healthz is answered. It warns
    that 160 is fewer than it may need (50 served, 50 newcomers, and a margin)."""
    db = f"sqlite:///{tmp_path / 'provisor.db'}"
    with (
        serving_with_few_files(db, "--max-connections", "50", "--header-timeout", "3600") as server,
        silent_connections(server.port, 200) as silent,
    ):
        # accepted, each (past the 50th) dropping an older one (a fixed 0.5 s counted those not
        # accepted yet on a busy machine)
        assert held_once_accepted(silent, 60) <= 60
        with connect(server.port) as s:
            assert _status(s) == b"HTTP/1.1 200 OK"
    err = server.stderr
    assert b"may open 160 files, fewer than the 164 that --max-connections asks for" in err, err
