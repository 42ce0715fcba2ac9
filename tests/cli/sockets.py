"""Raw sockets against a real server on loopback, shared by the connection tests: connections
that say nothing, whether the server still holds one, reading an answer to its end, and
``provisor serve`` in a process of its own with few file descriptors."""

from __future__ import annotations

import os
import resource
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

FILE_LIMIT = 160  # the few file descriptors: fewer than --max-connections 50 asks for


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def still_open(s: socket.socket) -> bool:
    """Whether the server still holds ``s``, asked without waiting; for a connection that has
    sent nothing (the server sends nothing before a request, nor before a ClientHello), or that
    has read its answers."""
    s.setblocking(False)
    try:
        return s.recv(1) != b""
    except BlockingIOError:
        return True
    except ConnectionResetError:
        return False
    finally:
        s.settimeout(10)


def held_once_accepted(silent: list[socket.socket], most: int, seconds: float = 60) -> int:
    """How many of ``silent`` the server holds, once that is at most ``most`` or ``seconds`` have
    passed: one it has not accepted yet looks held too, and accepting hundreds takes a busy
    machine a while. Give the server a header timeout longer than ``seconds``, so that nothing but
    its cap can close them meanwhile."""
    deadline = time.monotonic() + seconds
    while (held := sum(still_open(s) for s in silent)) > most and time.monotonic() < deadline:
        time.sleep(0.05)
    return held


@contextmanager
def silent_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that never say a word, closed on leaving."""
    silent: list[socket.socket] = []
    try:
        silent = [connect(port) for _ in range(count)]
        yield silent
    finally:
        for s in silent:
            s.close()


def read_until_closed(s: socket.socket) -> bytes:
    """All ``s`` receives until the server closes it (a reset counts as the close)."""
    chunks = []
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


class ServeProcess:
    """A running ``provisor serve``: its port, and once it has stopped what it wrote to stderr."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stderr = b""


def _low_file_limit() -> None:  # in the server's process, before it runs: soft and hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


@contextmanager
def serving_with_few_files(
    db: str, *options: str, context: ssl.SSLContext | None = None
) -> Iterator[ServeProcess]:
    """``provisor serve --db db *options`` on a free port with FILE_LIMIT file descriptors,
    yielded once /healthz answers (over TLS with ``context``, for options that give a
    certificate); terminated on leaving, its stderr kept."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "provisor.cli.main", "serve", "--db", db, "--port", str(port)]
    server = subprocess.Popen(
        [*command, *options],
        preexec_fn=_low_file_limit,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    served = ServeProcess(port)
    healthz = f"{'https' if context else 'http'}://127.0.0.1:{port}/healthz"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(healthz, verify=context or True, timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                time.sleep(0.1)
        yield served
    finally:
        server.terminate()
        _, served.stderr = server.communicate(timeout=20)
