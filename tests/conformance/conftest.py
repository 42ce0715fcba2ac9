"""Fixtures for the conformance suites: a real `provisor serve` subprocess on a free loopback port.

`live_server` yields `(base_url, token)` for a fresh, empty tenant on a server that runs for the whole
session (one per xdist worker) over a fresh SQLite file; `live_strict_server` the same for a tenant made with
`--strict` (every compatibility switch off). To point the suites at another server instead
(for example the scim2-server peer), set PROVISOR_CONFORMANCE_URL and PROVISOR_CONFORMANCE_TOKEN.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60.0
CLI_TIMEOUT_S = 120.0
SCIM2_TESTER_PASSING = {"SUCCESS", "COMPLIANT", "ACCEPTABLE"}


@dataclass
class ProvisorServer:
    base_url: str
    db_url: str
    log_path: Path

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def provisor_executable() -> str:
    """The `provisor` console script of the interpreter running the tests (or the one on PATH)."""
    candidate = Path(sys.executable).with_name("provisor")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("provisor")
    if found is None:
        pytest.fail("the `provisor` console script is not installed: run `pip install -e '.[test]'`")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


def _wait_healthy(proc: subprocess.Popen[bytes], url: str) -> bool:
    """True once /healthz answers 200; False if the process died first. Fails on timeout."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def provisor_cli(db_url: str, *args: str) -> str:
    """Run `provisor ARGS --db DB_URL`; its last line of stdout (fails the test on a non-zero exit)."""
    result = subprocess.run(
        [provisor_executable(), *args, "--db", db_url],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=CLI_TIMEOUT_S,
        cwd=REPO_ROOT,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines or not lines[-1].strip():
        pytest.fail(
            f"`provisor {' '.join(args)}` exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return lines[-1].strip()


def create_tenant(server: ProvisorServer, name: str, *options: str) -> str:
    """`provisor tenant create NAME [OPTIONS]`: the Secret Token is alone on the last line of stdout."""
    return provisor_cli(server.db_url, "tenant", "create", name, *options)


def scim2_tester_report(base_url: str, token: str, minimum: int) -> list[Any]:
    """scim2-tester's `check_server` against the tenant of ``token``; fails the test unless at least
    ``minimum`` checks ran and every one ended SUCCESS, COMPLIANT or ACCEPTABLE. Returns the results."""
    import httpx2
    import scim2_tester
    from scim2_client.engines.httpx2 import SyncSCIMClient

    with httpx2.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        client = SyncSCIMClient(http)
        # Describe the server first: without it, check_server may silently run no resource checks.
        client.discover()
        results: list[Any] = scim2_tester.check_server(client)
    failing = [r for r in results if r.status.name not in SCIM2_TESTER_PASSING]
    report = "\n".join(
        f"{r.status.name:10s} {r.resource_type or '-':6s} {r.title}: {r.reason}" for r in failing
    )
    print(f"scim2-tester: {len(results)} checks, {dict(Counter(r.status.name for r in results))}")
    if report:
        print(report)
    assert len(results) >= minimum, f"only {len(results)} checks ran, not {minimum}\n{report}"
    assert not failing, f"{len(failing)} of {len(results)} scim2-tester checks did not pass:\n{report}"
    return results


@pytest.fixture(scope="session")
def provisor_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProvisorServer]:
    workdir = tmp_path_factory.mktemp("provisor-server")
    db_url = f"sqlite:///{workdir / 'provisor.db'}"
    log_path = workdir / "server.log"
    exe = provisor_executable()
    env = {**os.environ, "PROVISOR_DB": db_url}
    last_error = ""
    for _attempt in range(3):  # a port taken between free_port() and bind() is retried
        port = free_port()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [exe, "serve", "--db", db_url, "--host", "127.0.0.1", "--port", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO_ROOT,
                start_new_session=True,
            )
        server = ProvisorServer(f"http://127.0.0.1:{port}/scim/v2", db_url, log_path)
        try:
            healthy = _wait_healthy(proc, f"http://127.0.0.1:{port}/healthz")
        except BaseException:
            _stop(proc)
            raise
        if healthy:
            try:
                yield server
            finally:
                _stop(proc)
            return
        _stop(proc)
        last_error = f"exit code {proc.returncode}\n{server.log_tail()}"
        if "address already in use" not in last_error.lower():
            break
    pytest.fail(f"`provisor serve` did not become healthy within {STARTUP_TIMEOUT_S:.0f}s: {last_error}")


@pytest.fixture
def live_server(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(base_url, bearer token) of a fresh, empty tenant on the live server."""
    url = os.environ.get("PROVISOR_CONFORMANCE_URL")
    if url:
        return url.rstrip("/"), os.environ.get("PROVISOR_CONFORMANCE_TOKEN", "")
    server: ProvisorServer = request.getfixturevalue("provisor_server")
    token = create_tenant(server, f"conformance-{uuid.uuid4().hex[:12]}")
    return server.base_url, token


@pytest.fixture
def live_strict_server(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(base_url, bearer token) of a fresh, empty tenant made with `--strict` (every compatibility switch
    off) on the live server. Skipped when PROVISOR_CONFORMANCE_URL points the suites at another server."""
    if os.environ.get("PROVISOR_CONFORMANCE_URL"):
        pytest.skip("PROVISOR_CONFORMANCE_URL is set: only that server's one tenant is probed")
    server: ProvisorServer = request.getfixturevalue("provisor_server")
    token = create_tenant(server, f"conformance-strict-{uuid.uuid4().hex[:12]}", "--strict")
    return server.base_url, token
