"""A database that cannot be used any more under a running server (its file deleted, overwritten,
or on a read-only file system): requests are answered 503 with a SCIM Error and one line in the
log, not 500 with a traceback; /readyz says so; no empty database is made in its place
(``store/sql/engine.py``: ``unusable``, ``_existing_file``)."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveServer, assert_scim_error, create_user, serving


def _files(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def _many_connections(server: LiveServer, token: str) -> list[httpx.Response]:
    """Requests enough at once that the server opens new connections to the database too."""
    import concurrent.futures

    def get(_: int) -> httpx.Response:
        with server.client(token) as client:
            return client.get("/Users", params={"filter": 'userName eq "a@x.com"', "count": "1"})

    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        return list(pool.map(get, range(48)))


@pytest.mark.parametrize("how", ["deleted", "overwritten"])
def test_requests_on_a_database_gone_under_the_server_are_503_and_logged_once(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gone.db"
    with serving(f"sqlite:///{path}") as server:
        _, token = server.new_tenant()
        with server.client(token) as client:
            create_user(client, "a@x.com")
        server.store.connections.close()  # the pooled connections go: the next ones open the file
        server.store.engine.dispose()
        if how == "deleted":
            for file in _files(path):
                file.unlink(missing_ok=True)
        else:
            for file in _files(path)[1:]:
                file.unlink(missing_ok=True)
            path.write_bytes(os.urandom(path.stat().st_size))
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            answers = _many_connections(server, token)
        assert {r.status_code for r in answers} == {503}, {r.status_code: r.text for r in answers}
        error = assert_scim_error(answers[0], 503)
        assert "cannot use its database" in error["detail"]
        assert answers[0].headers["retry-after"] == "30"
        assert httpx.get(f"{server.root}/readyz").status_code == 503
        [why] = [r.getMessage() for r in caplog.records if "not ready" in r.getMessage()][-1:]
        assert "['" not in why and "\n" not in why  # the first line of the error, as text
        logged = [r for r in caplog.records if "answered 503" in r.getMessage()]
        assert logged and all(r.exc_info is None for r in logged)  # one line each, no traceback
        assert not [r for r in caplog.records if r.getMessage() == "unhandled error"]
        if how == "deleted":
            assert not path.exists()  # no empty database made in its place


@contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """``folder`` read-only as the server's process sees it: a read-only bind mount for root (whom
    file modes do not stop), file modes for anyone else; skipped where neither can be had."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.iterdir()]}
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"no read-only mount here: {mounted.stderr.decode().strip()}")
    try:
        ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True, check=False)
        if ro.returncode != 0:
            pytest.skip(f"no read-only mount here: {ro.stderr.decode().strip()}")
        yield
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, check=False)


def test_a_read_only_database_is_not_ready_and_its_writes_are_503(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    with serving(f"sqlite:///{folder / 'ro.db'}") as server:
        _, token = server.new_tenant()
        with server.client(token) as client:
            create_user(client, "before@x.com")
            server.store.connections.close()
            server.store.engine.dispose()
            with _read_only(folder):
                assert httpx.get(f"{server.root}/readyz").status_code == 503
                r = client.post(
                    "/Users",
                    json={
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": "after@x.com",
                    },
                )
                assert_scim_error(r, 503)
            assert httpx.get(f"{server.root}/readyz").status_code == 200
            found = client.get("/Users", params={"filter": 'userName eq "after@x.com"'}).json()
            assert found["totalResults"] == 0


def test_serve_refuses_a_database_it_cannot_write(tmp_path: Path) -> None:
    import sys

    folder = tmp_path / "ro"
    folder.mkdir()
    url = f"sqlite:///{folder / 'ro.db'}"
    from provisor.store.sql import SqlStore

    kept = SqlStore(url)  # open: its -wal and -shm files stay, as beside a running server
    kept.ping()
    with _read_only(folder):
        p = subprocess.run(
            [sys.executable, "-m", "provisor.cli.main", "serve", "--db", url, "--port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert p.returncode == 1, p.stderr
    kept.close()
    [line] = p.stderr.strip().splitlines()
    # found as it opens (no -wal or -shm file can be made beside it), or by the look at its file
    assert line.startswith("provisor: ") and ("may not write" in line or "cannot be written" in line), line
    assert "Traceback" not in p.stderr


def test_readiness_checks_never_cost_the_server_its_database_locks(tmp_path: Path) -> None:
    """The check read the file's header through a file it opened and closed: closing any
    descriptor of a file drops every POSIX lock the process holds on it, SQLite's too, so the next
    process to close its last connection took the server's WAL for its own, checkpointed and
    deleted it, and every later write of the server went to a WAL no other process read."""
    import sqlite3
    import sys

    path = tmp_path / "locks.db"
    url = f"sqlite:///{path}"
    with serving(url) as server:
        for _ in range(3):
            assert httpx.get(f"{server.root}/readyz").status_code == 200
        # another process (an admin's command) opens the database, writes, and closes it
        made = subprocess.run(
            [sys.executable, "-m", "provisor.cli.main", "tenant", "create", "acme", "--db", url],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        token = made.stdout.strip().splitlines()[-1]
        assert httpx.get(f"{server.root}/readyz").status_code == 200
        with server.client(token) as client:
            create_user(client, "seen.by.others@x.com")
        with sqlite3.connect(path) as other:  # a third process's view: the server's write is there
            rows = other.execute(
                "SELECT count(*) FROM resources WHERE user_name_key = 'seen.by.others@x.com'"
            )
            assert rows.fetchone()[0] == 1
        assert path.with_name("locks.db-wal").exists()  # the server's WAL, still the file's
