"""Bad input to `provisor serve`, `tenant` and `token`: one line on stderr, a non-zero exit, and no
change to stored data (exit 2 for an option or argument out of its range, 1 for what fails at run
time)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import provisor.cli.serving
import provisor.store.sql
from provisor.cli.main import app

PROVISOR = [sys.executable, "-m", "provisor.cli.main"]
TENANT_ID = "d71e260a28364752b692d23a3802f364"


class ServerStarted(Exception):
    """`serve` got as far as starting the server."""


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    def run_server(*args: Any, **kwargs: Any) -> None:
        raise ServerStarted

    monkeypatch.setattr(provisor.cli.serving, "run_server", run_server)
    # no server, so no port to probe: the default 8000 may be taken on the test machine
    monkeypatch.setattr(provisor.cli.serving, "listen_problem", lambda host, port: None)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def assert_refused(result: Result, code: int, *needles: str) -> None:
    assert not isinstance(result.exception, ServerStarted), "the server was started"
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("provisor: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert not result.stdout.strip(), result.stdout


def tenants(db: str) -> list[list[str]]:
    result = cli("tenant", "list", "--db", db)
    assert result.exit_code == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]


def stored(db: str) -> list[tuple[Any, ...]]:
    path = db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT id, name, settings FROM tenants ORDER BY name").fetchall()
        rows += conn.execute("SELECT id, expires FROM tokens ORDER BY id").fetchall()
    return rows


# -- 1. serve's limits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--max-page-size", "-1"),
        ("--max-page-size", "0"),
        ("--max-page-size", "1000001"),
        ("--max-page-size", "99999999999999999999999"),
        ("--max-body-bytes", "-1"),
        ("--max-body-bytes", "0"),
        ("--max-body-bytes", "1073741825"),
        ("--port", "99999"),
        ("--port", "65536"),
        ("--port", "-1"),
        ("--header-timeout", "0"),
        ("--header-timeout", "nan"),
        ("--header-timeout", "3601"),
        ("--body-timeout", "-1"),
        ("--body-timeout", "0.05"),
        ("--write-timeout", "0"),
        ("--write-timeout", "-1"),
        ("--write-timeout", "nan"),
        ("--shutdown-timeout", "0"),
        ("--shutdown-timeout", "inf"),
        ("--write-timeout", "3601"),
        ("--max-connections", "0"),
        ("--max-connections", "1000001"),
        ("--max-connections-per-client", "-1"),
        ("--max-connections-per-client", "1000001"),
    ],
)
def test_serve_refuses_limits_out_of_range(db: str, tmp_path: Path, option: str, value: str) -> None:
    assert_refused(cli("serve", "--db", db, option, value), 2, option)
    assert not (tmp_path / "cli.db").exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--max-page-size", "1"),
        ("--max-body-bytes", "1"),
        ("--port", "0"),
        ("--port", "65535"),
        ("--header-timeout", "0.1"),
        ("--body-timeout", "3600"),
        ("--write-timeout", "0.1"),
        ("--write-timeout", "3600"),
        ("--max-connections", "1"),
        ("--max-connections-per-client", "0"),
        ("--max-connections-per-client", "1"),
    ],
)
def test_serve_accepts_the_edges(db: str, option: str, value: str) -> None:
    assert isinstance(cli("serve", "--db", db, option, value).exception, ServerStarted)


def test_serve_passes_its_timeouts_and_connections_on(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from provisor.cli import coalescing, common, serving

    seen: dict[str, Any] = {}

    def run_server(*args: Any, **kwargs: Any) -> None:
        seen.update(kwargs)
        raise ServerStarted

    monkeypatch.setattr(serving, "run_server", run_server)
    assert isinstance(cli("serve", "--db", db).exception, ServerStarted)
    # the CLI's defaults are the server's own (kept apart so that the CLI starts without uvicorn)
    assert (seen["header_timeout"], seen["body_timeout"], seen["max_connections"]) == (
        coalescing.HEADER_TIMEOUT,
        coalescing.BODY_TIMEOUT,
        serving.MAX_CONNECTIONS,
    )
    assert (common.HEADER_TIMEOUT, common.BODY_TIMEOUT, common.MAX_CONNECTIONS) == (10.0, 30.0, 1000)
    assert seen["write_timeout"] == coalescing.WRITE_TIMEOUT == common.WRITE_TIMEOUT == 30.0
    assert seen["max_connections_per_client"] == 0  # off: behind a proxy every client is the proxy
    monkeypatch.setenv("PROVISOR_HEADER_TIMEOUT", "2.5")
    monkeypatch.setenv("PROVISOR_BODY_TIMEOUT", "7")
    monkeypatch.setenv("PROVISOR_WRITE_TIMEOUT", "12.5")
    monkeypatch.setenv("PROVISOR_MAX_CONNECTIONS", "50")
    monkeypatch.setenv("PROVISOR_MAX_CONNECTIONS_PER_CLIENT", "4")
    assert isinstance(cli("serve", "--db", db).exception, ServerStarted)
    assert (seen["header_timeout"], seen["body_timeout"], seen["max_connections"]) == (2.5, 7.0, 50)
    assert seen["max_connections_per_client"] == 4
    assert seen["write_timeout"] == 12.5


# -- 2. serve's runtime failures -----------------------------------------------------------------


def test_serve_reports_a_bad_database_url(db: str) -> None:
    assert_refused(cli("serve", "--db", "notaurl"), 1, "notaurl")


def test_serve_reports_a_database_it_cannot_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nonexistent-dir' / 'x.db'}"
    assert_refused(cli("serve", "--db", url), 1, "cannot open the database", "unable to open")


def test_a_database_sqlite_cannot_open_says_why(tmp_path: Path) -> None:
    """SQLite says "unable to open database file" whatever the cause."""
    missing = tmp_path / "nonexistent-dir"
    result = cli("tenant", "create", "acme", "--db", f"sqlite:///{missing / 'x.db'}")
    assert_refused(result, 1, f"unable to open database file (no such directory: {missing})")
    result = cli("tenant", "create", "acme", "--db", f"sqlite:///{tmp_path}")
    assert_refused(result, 1, f"({tmp_path} is a directory; name a file in it, such as sqlite:///")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("host", ["", " "])
def test_serve_refuses_an_empty_host(db: str, tmp_path: Path, host: str) -> None:
    """It listened on every interface, where 127.0.0.1 is the default."""
    assert_refused(cli("serve", "--db", db, "--host", host), 2, "--host is empty")
    assert not (tmp_path / "cli.db").exists()


def test_serve_refuses_an_unknown_log_level(db: str, tmp_path: Path) -> None:
    assert_refused(cli("serve", "--db", db, "--log-level", "bogus"), 2, "--log-level", "bogus")
    assert not (tmp_path / "cli.db").exists()


def test_serve_accepts_log_levels_in_any_case(db: str) -> None:
    for level in ("DEBUG", "Warning", "error"):
        assert isinstance(cli("serve", "--db", db, "--log-level", level).exception, ServerStarted)


def test_serve_reports_tls_files_that_are_not_a_certificate_and_key(db: str, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    result = cli("serve", "--db", db, "--tls-cert", str(junk), "--tls-key", str(junk))
    assert_refused(result, 1, "--tls-cert", str(junk))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test key")
def test_serve_refuses_an_encrypted_tls_key_without_asking_for_its_pass_phrase(tmp_path: Path) -> None:
    """OpenSSL would ask on the terminal: a server started by hand waited there for a pass phrase."""
    from tests.cli.test_tls_handshake import make_certificate

    cert, key = make_certificate(tmp_path)
    locked = tmp_path / "locked.pem"
    subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-aes256", "-passout", "pass:secret", "-out", str(locked)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    p = subprocess.run(
        [*PROVISOR, "serve", "--db", db, "--port", "0", "--tls-cert", str(cert), "--tls-key", str(locked)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # no terminal to ask on: without the fix, "Invalid argument"
    )
    assert p.returncode == 1, p.stderr
    assert p.stderr.startswith("provisor: ") and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert f"--tls-key {locked} is encrypted" in p.stderr and "openssl pkey" in p.stderr
    assert "Enter PEM pass phrase" not in p.stdout + p.stderr
    assert not (tmp_path / "cli.db").exists()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificates")
def test_serve_names_the_tls_file_that_is_wrong(db: str, tmp_path: Path) -> None:
    from tests.cli.test_tls_handshake import make_certificate

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cert, _ = make_certificate(tmp_path / "a")
    _, other_key = make_certificate(tmp_path / "b")
    mismatch = cli("serve", "--db", db, "--tls-cert", str(cert), "--tls-key", str(other_key))
    assert_refused(mismatch, 1, f"--tls-key {other_key} is not the private key of --tls-cert {cert}")
    folder = cli("serve", "--db", db, "--tls-cert", str(tmp_path), "--tls-key", str(other_key))
    assert_refused(folder, 1, f"--tls-cert {tmp_path}: a directory")
    missing = cli("serve", "--db", db, "--tls-cert", str(cert), "--tls-key", str(tmp_path / "no.pem"))
    assert_refused(missing, 1, f"--tls-key {tmp_path / 'no.pem'}: no such file")
    assert not (tmp_path / "cli.db").exists()


@pytest.mark.parametrize(
    ("command", "host", "named"),
    [
        (["serve"], "127.0.0.1", "the port is in use (another server?); choose another --port"),
        (["demo", "--once"], "127.0.0.1", "the port is in use (another server?); choose another --port"),
        (["serve", "--host", "no-such-host.invalid"], "", "no such host"),
        (["serve", "--host", "192.0.2.1"], "", "that address is not this machine's; check --host"),
    ],
)
def test_serve_and_demo_say_when_they_cannot_listen(
    tmp_path: Path, command: list[str], host: str, named: str
) -> None:
    """uvicorn only logged it among its startup lines and exited 3 (serve), or never started and
    the demo ended in a traceback; now one line, exit 1, before the database is opened."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p = subprocess.run(
            [*PROVISOR, *command, "--port", str(port), "--db", f"sqlite:///{tmp_path / 'cli.db'}"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert p.stderr.startswith("provisor: ") and len(p.stderr.strip().splitlines()) == 1, p.stderr
    where = f"{host or command[-1]}:{port}"
    assert f"provisor: cannot listen on {where}: {named}" in p.stderr
    assert not (tmp_path / "cli.db").exists()


@pytest.mark.parametrize("kind", ["not a database", "not a URL"])
def test_demo_reports_a_database_it_cannot_open_in_one_line(tmp_path: Path, kind: str) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n")
    url = f"sqlite:///{junk}" if kind == "not a database" else "notaurl"
    p = subprocess.run(
        [*PROVISOR, "demo", "--once", "--port", "0", "--db", url],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.startswith(f"provisor: cannot open the database '{url}': "), p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert junk.read_text() == "not a database\n"


def test_serve_bad_input_in_a_real_process_is_one_line(tmp_path: Path) -> None:
    for args in (["--db", "notaurl"], ["--db", f"sqlite:///{tmp_path / 'no' / 'x.db'}"]):
        p = subprocess.run(
            [*PROVISOR, "serve", *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
        assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and p.stderr.startswith("provisor: "), p.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["tenant", "create"], "Missing argument 'name'. (see provisor tenant create --help)"),
        (["schema", "add", "--bogus", "x"], "No such option: --bogus (see provisor schema add --help)"),
        (["token", "create", "acme", "--expires-in-days", "soon"], "Invalid value for '--expires-in-days'"),
        (["nosuchcommand"], "No such command 'nosuchcommand'. (see provisor --help)"),
    ],
)
def test_usage_errors_in_a_real_process_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], named: str
) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    p = subprocess.run(
        [*PROVISOR, *args, "--db", db], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("provisor: ") and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert named in p.stderr and not p.stdout
    assert not (tmp_path / "cli.db").exists()  # refused before anything was opened


def test_no_command_shows_the_help() -> None:
    p = subprocess.run(PROVISOR, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and "Usage: provisor" in p.stdout and "tenant" in p.stdout, p.stdout


# -- 3. token expiry -----------------------------------------------------------------------------


@pytest.mark.parametrize("days", ["36501", "99999999", "9999999999999999999999"])
def test_token_create_refuses_an_expiry_past_100_years(db: str, days: str) -> None:
    assert cli("tenant", "create", "acme", "--db", db).exit_code == 0
    before = stored(db)
    result = cli("token", "create", "acme", "--db", db, "--expires-in-days", days)
    assert_refused(result, 2, "--expires-in-days")
    assert stored(db) == before


def test_token_create_accepts_100_years(db: str) -> None:
    assert cli("tenant", "create", "acme", "--db", db).exit_code == 0
    result = cli("token", "create", "acme", "--db", db, "--expires-in-days", "36500")
    assert result.exit_code == 0, result.stderr


# -- 4. tenant page sizes ------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["1000001", "9223372036854775808", "99999999999999999999999"])
def test_tenant_create_and_set_refuse_a_page_size_too_large(db: str, tmp_path: Path, size: str) -> None:
    assert_refused(cli("tenant", "create", "x", "--db", db, "--max-page-size", size), 2, "--max-page-size")
    assert not (tmp_path / "cli.db").exists()
    assert cli("tenant", "create", "y", "--db", db, "--max-page-size", "5").exit_code == 0
    before = stored(db)
    assert_refused(cli("tenant", "set", "y", "--db", db, "--max-page-size", size), 2, "--max-page-size")
    assert_refused(cli("tenant", "set", "y", "--db", db, "--max-page-size", "0"), 2, "--max-page-size")
    assert stored(db) == before


def test_tenant_page_size_bounds_are_inclusive(db: str) -> None:
    assert cli("tenant", "create", "x", "--db", db, "--max-page-size", "1000000").exit_code == 0
    result = cli("tenant", "set", "x", "--db", db, "--max-page-size", "1")
    assert result.exit_code == 0 and '"max_page_size": 1' in result.stdout, result.stderr


# -- 4b. tenant rate limits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--rate-limit", "0"),
        ("--rate-limit", "-1"),
        ("--rate-limit", "0.001"),
        ("--rate-limit", "1000001"),
        ("--rate-limit", "nan"),
        ("--rate-limit", "inf"),
        ("--rate-burst", "0"),
        ("--rate-burst", "1000001"),
    ],
)
def test_tenant_create_and_set_refuse_rate_limits_out_of_range(
    db: str, tmp_path: Path, option: str, value: str
) -> None:
    assert_refused(cli("tenant", "create", "x", "--db", db, option, value), 2, option)
    assert not (tmp_path / "cli.db").exists()
    assert cli("tenant", "create", "y", "--db", db).exit_code == 0
    before = stored(db)
    assert_refused(cli("tenant", "set", "y", "--db", db, option, value), 2, option)
    assert stored(db) == before


def test_tenant_rate_limit_is_set_changed_and_removed(db: str) -> None:
    result = cli("tenant", "create", "x", "--db", db, "--rate-limit", "0.5", "--rate-burst", "3")
    assert result.exit_code == 0, result.stderr
    assert '"rate_limit": 0.5, "rate_burst": 3' in tenants(db)[0][3]
    result = cli("tenant", "set", "x", "--db", db, "--rate-limit", "50")
    assert (
        result.exit_code == 0 and '"rate_limit": 50.0' in result.stdout and '"rate_burst": 3' in result.stdout
    )
    before = stored(db)
    both = cli("tenant", "set", "x", "--db", db, "--no-rate-limit", "--rate-limit", "5")
    assert_refused(both, 2, "--no-rate-limit")
    assert stored(db) == before
    result = cli("tenant", "set", "x", "--db", db, "--no-rate-limit")
    assert result.exit_code == 0, result.stderr
    assert "rate_" not in result.stdout and "rate_" not in tenants(db)[0][3]


@pytest.mark.parametrize("value", ["0", "1001", "-1"])
def test_tenant_trace_out_of_range_is_refused(db: str, value: str) -> None:
    from provisor.cli.common import MAX_TRACE
    from provisor.server.tenancy import MAX_TRACE as SERVER_MAX_TRACE

    assert MAX_TRACE == SERVER_MAX_TRACE == 1000  # the CLI refuses what the server would ignore
    assert_refused(cli("tenant", "create", "x", "--db", db, "--trace", value), 2, "--trace")
    assert cli("tenant", "create", "y", "--db", db).exit_code == 0
    before = stored(db)
    assert_refused(cli("tenant", "set", "y", "--db", db, "--trace", value), 2, "--trace")
    assert stored(db) == before


def test_tenant_tracing_is_set_read_and_removed_with_its_traces(db: str) -> None:
    from datetime import UTC, datetime

    from provisor.store.sql import SqlStore

    assert cli("tenant", "create", "x", "--db", db, "--trace", "2").exit_code == 0
    assert '"trace": 2' in tenants(db)[0][3]
    empty = cli("tenant", "trace", "x", "--db", db)
    assert empty.exit_code == 0 and "No traces of tenant x." in empty.stderr and not empty.stdout
    store = SqlStore(db)
    try:
        tenant = store.get_tenant("x").id
        for n, status in enumerate((201, 400)):
            store.add_trace(
                tenant,
                time=datetime(2026, 11, 30, 12, n, tzinfo=UTC),
                method="POST",
                target="/scim/v2/Users",
                status=status,
                request='{"userName":"a"}',
                response=None if status == 201 else '{"status":"400"}',
                keep=2,
            )
    finally:
        store.close()
    shown = cli("tenant", "trace", "x", "--db", db)
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        "2026-11-30T12:00:00+00:00  POST /scim/v2/Users  -> 201",
        '  request: {"userName":"a"}',
        "2026-11-30T12:01:00+00:00  POST /scim/v2/Users  -> 400",
        '  request: {"userName":"a"}',
        '  response: {"status":"400"}',
    ]
    last = cli("tenant", "trace", "x", "--db", db, "--json", "--limit", "1")
    assert last.exit_code == 0 and [json.loads(line)["status"] for line in last.stdout.splitlines()] == [400]
    assert_refused(cli("tenant", "trace", "x", "--db", db, "--limit", "0"), 2, "--limit")
    assert_refused(cli("tenant", "trace", "nobody", "--db", db), 1, "nobody")
    assert_refused(cli("tenant", "set", "x", "--db", db, "--no-trace", "--trace", "5"), 2, "--no-trace")
    result = cli("tenant", "set", "x", "--db", db, "--no-trace")
    assert result.exit_code == 0 and "trace" not in result.stdout and "trace" not in tenants(db)[0][3]
    gone = cli("tenant", "trace", "x", "--db", db)
    assert "No traces of tenant x; turn it on with: provisor tenant set --trace 100 x." in gone.stderr


# -- 5. a locked database ------------------------------------------------------------------------


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    quick = functools.partial(provisor.store.sql.SqlStore, engine_options={"busy_timeout_ms": 200})
    monkeypatch.setattr(provisor.store.sql, "SqlStore", quick)


@pytest.fixture
def locked(db: str) -> Iterator[str]:
    assert cli("tenant", "create", "x", "--db", db).exit_code == 0
    holder = sqlite3.connect(db.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield db
    finally:
        holder.rollback()
        holder.close()


def test_a_locked_database_is_reported_without_a_traceback(locked: str, short_busy_timeout: None) -> None:
    for args in (
        ("tenant", "create", "y"),
        ("tenant", "set", "x", "--strict"),
        ("tenant", "delete", "x", "--yes"),
        ("token", "create", "x"),
    ):
        assert_refused(cli(*args, "--db", locked), 1, "the database is busy", "try again")
    assert [row[0] for row in tenants(locked)] == ["x"]


# -- 6. tenant names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        TENANT_ID,
        TENANT_ID.upper(),
        "a\tb",
        "a\nb",
        "a\x00b",
        "a\x7fb",
        "x" * 201,
        "x" * 5000,
        " ",
        "\t",
        "",
    ],
)
def test_tenant_create_refuses_bad_names(db: str, tmp_path: Path, name: str) -> None:
    assert_refused(cli("tenant", "create", name, "--db", db), 2, "tenant name")
    assert not (tmp_path / "cli.db").exists()


def test_a_name_that_looks_like_an_id_cannot_take_over_a_tenant(db: str) -> None:
    assert cli("tenant", "create", "real", "--db", db).exit_code == 0
    real_id = tenants(db)[0][1]
    assert_refused(cli("tenant", "create", real_id, "--db", db), 2, "tenant id")
    result = cli("tenant", "delete", real_id, "--db", db, "--yes")
    assert result.exit_code == 0, result.stderr
    assert tenants(db) == []


def test_tenant_names_of_200_characters_and_unicode_are_fine(db: str) -> None:
    for name in ("x" * 200, "Contoso Ltd.", "Zürich AG", "d71e260a28364752b692d23a3802f36"):
        result = cli("tenant", "create", name, "--db", db)
        assert result.exit_code == 0, result.stderr
    assert len(tenants(db)) == 4


@pytest.mark.parametrize("label", ["a\nb", "a\tb", "\x1b[31mred", "a\u2028b", "x" * 201])
def test_a_token_label_with_control_characters_or_too_long_is_refused(db: str, label: str) -> None:
    """A newline or tab broke token list's one line a token; an escape sequence drove the terminal."""
    assert_refused(cli("tenant", "create", "acme", "--db", db, "--label", label), 2, "--label")
    assert cli("tenant", "create", "acme", "--db", db).exit_code == 0
    before = stored(db)
    assert_refused(cli("token", "create", "acme", "--db", db, "--label", label), 2, "--label")
    assert stored(db) == before


def test_token_labels_of_200_characters_and_unicode_are_fine(db: str) -> None:
    assert cli("tenant", "create", "acme", "--db", db, "--label", "Entra – Zürich").exit_code == 0
    assert cli("token", "create", "acme", "--db", db, "--label", "x" * 200).exit_code == 0
    listed = cli("token", "list", "acme", "--db", db).stdout.splitlines()
    assert [line.split("\t")[-1] for line in listed] == ["Entra – Zürich", "x" * 200]


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    shown = cli("--version")
    assert shown.exit_code == 0 and shown.stdout == f"provisor {version('provisor')}\n"
    assert shown.stderr == ""


@pytest.mark.parametrize("value", ["10.0.0.300/8", "example.com", "10.0.0.0/33", "", ","])
def test_a_bad_allowed_network_is_refused_and_nothing_changes(db: str, value: str) -> None:
    assert cli("tenant", "create", "x", "--db", db).exit_code == 0
    before = tenants(db)
    assert_refused(cli("tenant", "set", "x", "--db", db, "--allow-network", value), 2, "--allow-network")
    assert_refused(cli("tenant", "create", "y", "--db", db, "--allow-network", value), 2, "--allow-network")
    assert tenants(db) == before


def test_allowed_networks_are_set_normalised_and_removed(db: str) -> None:
    assert cli("tenant", "create", "x", "--db", db, "--allow-network", "10.1.2.3/8").exit_code == 0
    assert json.loads(tenants(db)[0][3])["allowed_networks"] == ["10.0.0.0/8"]
    shown = cli("tenant", "set", "x", "--db", db, "--allow-network", "192.0.2.7,2001:db8::/32")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["allowed_networks"] == ["192.0.2.7/32", "2001:db8::/32"]
    assert "networks:   192.0.2.7/32, 2001:db8::/32" in cli("tenant", "show", "x", "--db", db).stdout
    # an IPv4-mapped address, as a dual-stack server's log shows a client, is that IPv4 network:
    # clients are matched as IPv4, and the mapped form locked the tenant out
    mapped = cli("tenant", "set", "x", "--db", db, "--allow-network", "::ffff:127.0.0.1,::ffff:10.0.0.0/104")
    assert json.loads(mapped.stdout)["allowed_networks"] == ["127.0.0.1/32", "10.0.0.0/8"]
    assert_refused(cli("tenant", "set", "x", "--db", db, "--any-network", "--allow-network", "10.0.0.0/8"), 2)
    cleared = cli("tenant", "set", "x", "--db", db, "--any-network")
    assert cleared.exit_code == 0 and "allowed_networks" not in json.loads(cleared.stdout)
    assert "networks:   any" in cli("tenant", "show", "x", "--db", db).stdout


def test_compat_switches_add_up_and_replace_a_hand_edited_value(db: str) -> None:
    assert cli("tenant", "create", "x", "--db", db, "--compat", "string_booleans=off").exit_code == 0
    changed = cli("tenant", "set", "x", "--db", db, "--compat", "free_type_labels=off")
    assert changed.exit_code == 0, changed.stderr
    assert json.loads(changed.stdout)["compat"] == {"string_booleans": False, "free_type_labels": False}
    path = db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:  # not a mapping of switches: the server reads it as none set
        conn.execute("UPDATE tenants SET settings = ?", (json.dumps({"compat": "entra"}),))
    changed = cli("tenant", "set", "x", "--db", db, "--compat", "active_by_default=off")
    assert changed.exit_code == 0, changed.stderr
    assert json.loads(changed.stdout) == {"compat": {"active_by_default": False}}


def test_a_retired_switch_is_refused_saying_why_and_a_stored_one_is_passed_over(db: str) -> None:
    assert cli("tenant", "create", "x", "--db", db).exit_code == 0
    refused = cli("tenant", "set", "x", "--db", db, "--compat", "null_member_ref=off")
    assert_refused(refused, 2, "null_member_ref")
    assert "retired" in refused.output and "RFC 7643 section 2.5" in refused.output
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:  # as an older version stored it
        conn.execute("UPDATE tenants SET settings = ?", (json.dumps({"compat": {"null_member_ref": False}}),))
    shown = cli("tenant", "show", "x", "--db", db)
    assert shown.exit_code == 0 and "compat:" in shown.stdout and "unreadable" not in shown.stdout


def test_strict_and_lenient_set_every_switch_clearing_those_set_one_by_one(db: str) -> None:
    """The user guide: --strict / --lenient turn every compatibility switch off / on. A switch set
    with --compat before stayed as it was, so a tenant put back to --lenient still refused
    Entra's "op": "Replace" (capitalised_ops off), and a --strict one still accepted it."""
    assert cli("tenant", "create", "x", "--db", db, "--compat", "capitalised_ops=off").exit_code == 0
    lenient = cli("tenant", "set", "x", "--db", db, "--lenient")
    assert lenient.exit_code == 0, lenient.stderr
    assert json.loads(lenient.stdout) == {"strict": False}
    assert "off:" not in cli("tenant", "show", "x", "--db", db).stdout
    assert cli("tenant", "set", "x", "--db", db, "--compat", "string_booleans=on").exit_code == 0
    strict = cli("tenant", "set", "x", "--db", db, "--strict")
    assert json.loads(strict.stdout) == {"strict": True}
    # switches given with the preset apply on top of it, in place of the earlier ones
    cli("tenant", "set", "x", "--db", db, "--compat", "manager_bare_string=on")
    both = cli("tenant", "set", "x", "--db", db, "--lenient", "--compat", "capitalised_ops=off")
    assert json.loads(both.stdout) == {"strict": False, "compat": {"capitalised_ops": False}}
    # other settings are kept
    cli("tenant", "set", "x", "--db", db, "--max-page-size", "50")
    assert json.loads(cli("tenant", "set", "x", "--db", db, "--strict").stdout) == {
        "strict": True,
        "max_page_size": 50,
    }


@pytest.mark.parametrize(
    ("value", "why"),
    [("[1, 2]", "they are an array"), ("null", "they are null"), ("{not json", "they are not JSON")],
)
def test_hand_edited_settings_that_cannot_be_read_are_told_and_replaced_by_tenant_set(
    db: str, value: str, why: str
) -> None:
    """Not read as none (the server then refuses the tenant's requests): tenant list, show and
    trace say why (they ended in a TypeError, AttributeError or JSONDecodeError traceback), and
    tenant set replaces them, saying so."""
    assert cli("tenant", "create", "x", "--db", db, "--allow-network", "10.0.0.0/8").exit_code == 0
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE tenants SET settings = ?", (value,))
    assert tenants(db)[0][3].startswith(f"unreadable settings ({why}")
    listed = cli("tenant", "list", "--db", db, "--json")
    assert listed.exit_code == 0, listed.stderr
    record = json.loads(listed.stdout)
    assert record["settings"] is None and record["unreadable"].startswith(why)
    shown = cli("tenant", "show", "x", "--db", db, "--json")
    assert shown.exit_code == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["unreadable"].startswith(why) and record["allowed_networks"] == [] and not record["strict"]
    text = cli("tenant", "show", "x", "--db", db)
    assert text.exit_code == 0 and f"settings:   UNREADABLE ({why}" in text.stdout
    assert "); it accepts no requests until they are set again (provisor tenant set OPTIONS x)" in text.stdout
    assert "networks:   none: see settings" in text.stdout
    traced = cli("tenant", "trace", "x", "--db", db)
    assert traced.exit_code == 0 and "turn it on with" in traced.stderr
    changed = cli("tenant", "set", "x", "--db", db, "--trace", "5")
    assert changed.exit_code == 0, changed.stderr
    assert changed.stderr.startswith(f"The stored settings could not be read ({why}")
    assert changed.stderr.rstrip().endswith("these replace them.")
    assert json.loads(changed.stdout) == {"trace": 5} and json.loads(tenants(db)[0][3]) == {"trace": 5}
    assert "unreadable" not in cli("tenant", "show", "x", "--db", db).stdout.lower()


def test_any_role_cannot_go_with_allowed_role(db: str) -> None:
    assert cli("tenant", "create", "x", "--db", db, "--allowed-role", "User").exit_code == 0
    before = stored(db)
    refused = cli("tenant", "set", "x", "--db", db, "--any-role", "--allowed-role", "Admin")
    assert_refused(refused, 2, "--any-role", "--allowed-role")
    assert stored(db) == before


@pytest.mark.parametrize("value", ["User\nAdmin", "User\tAdmin", "Us\x1ber"])
def test_an_allowed_role_with_a_control_character_is_refused_and_nothing_changes(db: str, value: str) -> None:
    assert cli("tenant", "create", "x", "--db", db, "--allowed-role", "User").exit_code == 0
    before = stored(db)
    assert_refused(cli("tenant", "set", "x", "--db", db, "--allowed-role", value), 2, "control characters")
    assert_refused(cli("tenant", "create", "y", "--db", db, "--allowed-role", value), 2, "control characters")
    assert stored(db) == before


@pytest.mark.parametrize("value", ["", ",", " , "])
def test_an_allowed_role_that_names_no_role_is_refused_and_nothing_changes(db: str, value: str) -> None:
    assert cli("tenant", "create", "x", "--db", db, "--allowed-role", "User").exit_code == 0
    before = stored(db)
    assert_refused(
        cli("tenant", "set", "x", "--db", db, "--allowed-role", value), 2, "--allowed-role", "--any-role"
    )
    assert_refused(cli("tenant", "create", "y", "--db", db, "--allowed-role", value), 2, "--allowed-role")
    assert stored(db) == before


def test_allowed_roles_are_trimmed_and_listed_once(db: str) -> None:
    made = cli("tenant", "create", "x", "--db", db, "--allowed-role", "User, Project Manager,User")
    assert made.exit_code == 0, made.stderr
    shown = cli("tenant", "show", "x", "--db", db, "--json")
    assert json.loads(shown.stdout)["allowed_roles"] == ["User", "Project Manager"]


def test_a_documentation_uri_that_is_not_a_url_is_refused(db: str) -> None:
    assert_refused(cli("serve", "--db", db, "--documentation-uri", "docs/scim"), 2, "--documentation-uri")
    started = cli("serve", "--db", db, "--documentation-uri", "https://docs.example.com/scim")
    assert isinstance(started.exception, ServerStarted)  # a URL passes on to the server


def test_a_durability_the_store_does_not_take_is_one_line_and_opens_nothing(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    refused = cli("tenant", "create", "x", "--db", f"sqlite:///{path}?synchronous=off")
    assert_refused(
        refused, 1, "cannot open the database", "synchronous='off' is not one of normal, full, extra"
    )
    assert not path.exists()
    made = cli("tenant", "create", "x", "--db", f"sqlite:///{path}?synchronous=full")
    assert made.exit_code == 0, made.stderr
    assert [row[0] for row in tenants(f"sqlite:///{path}?synchronous=full")] == ["x"]


def test_a_database_password_never_reaches_a_message() -> None:
    url = "postgresql://provisor:s3cret-pw@127.0.0.1:1/provisor"
    result = cli("tenant", "list", "--db", url)
    assert_refused(result, 1, "cannot open the database", "provisor:***@127.0.0.1:1/provisor")
    assert "s3cret-pw" not in result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://provisor@127.0.0.1:1/provisor",
        "postgresql+psycopg://127.0.0.1:1/provisor",
        "mysql://provisor@127.0.0.1:1/provisor",
        "mssql+pyodbc://127.0.0.1:1/provisor",
    ],
)
def test_a_database_the_store_does_not_run_on_is_refused_before_connecting(url: str) -> None:
    """Not "No module named 'psycopg'": with the driver there, the tables would have been made in
    the database before the store found that it cannot query it."""
    kind = url.split(":")[0].split("+")[0]
    for command in (["tenant", "list"], ["serve"]):
        result = cli(*command, "--db", url)
        assert_refused(result, 1, "cannot open the database", "SQLite", f"{kind} databases are not supported")
        assert "No module named" not in result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "scim.example.com",
        "ftp://scim.example.com",
        "https://",
        "https://x.example.com/?a=1",
        "https://x.example.com/#f",
        "https://x.example.com:port",
        "https://x.example.com/scim/v2",
    ],
)
def test_a_public_url_that_is_not_the_servers_address_is_refused(db: str, url: str) -> None:
    assert_refused(cli("serve", "--db", db, "--public-url", url), 2, "--public-url")


def test_a_public_url_passes_on_to_the_server(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    given: dict[str, Any] = {}

    def run_server(*args: Any, **kwargs: Any) -> None:
        given.update(kwargs)
        raise ServerStarted

    monkeypatch.setattr(provisor.cli.serving, "run_server", run_server)
    started = cli("serve", "--db", db, "--public-url", "https://scim.example.com/tenant-a/")
    assert isinstance(started.exception, ServerStarted)
    assert given["public_url"] == "https://scim.example.com/tenant-a/"


@pytest.mark.parametrize("command", [["serve"], ["demo", "--once"]])
def test_without_httptools_serve_and_demo_refuse_to_start(
    tmp_path: Path, db: str, command: list[str]
) -> None:
    """Without httptools uvicorn would serve on h11, which has none of the slow-client timeouts
    (cli/coalescing.py): one line saying what is missing, and no server."""
    shadow = tmp_path / "shadow" / "httptools"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("httptools is not installed here")\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "shadow"), *sys.path])}
    p = subprocess.run(
        [*PROVISOR, *command, "--db", db, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert p.returncode == 1, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("provisor: ") and "httptools" in lines[0], p.stderr
    assert not (tmp_path / "cli.db").exists()  # nothing opened, nothing created


# -- 7. databases that are not this Provisor's ----------------------------------------------------


def schema_of(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    """Another application's SQLite file (one of its tables is named like one of Provisor's)."""
    path = tmp_path / "other-app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("CREATE TABLE tokens (id TEXT)")
    return path


def test_another_applications_database_is_refused_and_left_alone(foreign: Path) -> None:
    before = schema_of(foreign)
    for command in (["tenant", "list"], ["tenant", "create", "acme"], ["serve"]):
        result = cli(*command, "--db", f"sqlite:///{foreign}")
        assert_refused(result, 1, "not a Provisor database", "invoices, tokens", "a database of its own")
    assert schema_of(foreign) == before


def test_a_jobs_state_in_another_applications_database_is_refused_and_left_alone(
    foreign: Path, tmp_path: Path
) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(
        "name: j\nsource: {type: scim, url: 'http://127.0.0.1:9/scim/v2', token: t}\n"
        "target: {url: 'http://127.0.0.1:9/scim/v2', token: t}\ntemplate: scim-default\n"
        f"state: 'sqlite:///{foreign}'\n"
    )
    before = schema_of(foreign)
    result = cli("status", "--job", str(job))
    assert result.exit_code == 1 and "not a Provisor database" in result.stderr, result.stderr
    assert schema_of(foreign) == before


def test_the_store_and_a_jobs_state_may_share_a_database(db: str, tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(
        "name: j\nsource: {type: scim, url: 'http://127.0.0.1:9/scim/v2', token: t}\n"
        f"target: {{url: 'http://127.0.0.1:9/scim/v2', token: t}}\ntemplate: scim-default\nstate: '{db}'\n"
    )
    assert cli("status", "--job", str(job)).exit_code == 0  # the job's state first
    assert cli("tenant", "create", "acme", "--db", db).exit_code == 0  # then the store beside it
    assert cli("status", "--job", str(job)).exit_code == 0


def test_a_database_a_newer_provisor_wrote_is_refused_and_left_alone(db: str, tmp_path: Path) -> None:
    assert cli("tenant", "create", "acme", "--db", db).exit_code == 0
    path = tmp_path / "cli.db"
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    before = schema_of(path), stored(db)
    for command in (["tenant", "list"], ["tenant", "create", "other"], ["doctor"]):
        result = cli(*command, "--db", db)
        assert_refused(result, 1, "revision 9999", "newer Provisor", "run that version")
    assert (schema_of(path), stored(db)) == before


# -- 8. --db values that name no lasting database ---------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["tenant", "list"], ["tenant", "create", "acme"], ["serve"], ["doctor"], ["backup", "copy.db"]],
)
def test_an_empty_db_option_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """`--db "$UNSET"` used to mean provisor.db in the current folder, made afresh if not there."""
    monkeypatch.chdir(tmp_path)
    assert_refused(cli(*command, "--db", ""), 2, "--db is empty")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
@pytest.mark.parametrize("command", [["tenant", "create", "acme"], ["token", "create", "acme"], ["serve"]])
def test_a_database_in_memory_is_refused(url: str, command: list[str]) -> None:
    """tenant create printed the Secret Token of a tenant that was gone when the command ended;
    a server on one could never have a tenant."""
    assert_refused(cli(*command, "--db", url), 2, "is in memory", "give a file")


def test_a_database_in_memory_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVISOR_DB", "sqlite://")
    assert_refused(cli("tenant", "create", "acme"), 2, "'sqlite://' is in memory")


@pytest.mark.parametrize("query", ["mode=ro", "immutable=1", "bogus=x"])
def test_a_database_option_the_driver_would_ignore_is_refused(db: str, query: str) -> None:
    """`?mode=ro` without uri=true: SQLAlchemy warned in two lines and the database was opened
    for writing all the same."""
    assert cli("tenant", "create", "acme", "--db", db).exit_code == 0
    before = stored(db)
    option = query.split("=")[0]
    for command in (["tenant", "create", "other"], ["tenant", "delete", "acme", "--yes"]):
        result = cli(*command, "--db", f"{db}?{query}")
        assert_refused(result, 1, "cannot open the database", f"'{option}' are not accepted", "uri=true")
        assert "Background on this" not in result.stderr
    assert stored(db) == before


def test_a_damaged_database_is_named_with_what_to_do(db: str, tmp_path: Path) -> None:
    for n in range(12):
        assert cli("tenant", "create", f"t{n}", "--db", db).exit_code == 0
    path = tmp_path / "cli.db"
    whole = path.read_bytes()
    page = int.from_bytes(whole[16:18], "big")
    path.write_bytes(whole[:page] + b"\xff" * (len(whole) - page))  # every page but the schema's torn
    for command in (["tenant", "list"], ["doctor"]):
        result = cli(*command, "--db", db)
        assert_refused(result, 1, "database disk image is malformed; restore the last backup")
    (tmp_path / "short.db").write_bytes(whole[:8192])  # cut short
    result = cli("tenant", "list", "--db", f"sqlite:///{tmp_path / 'short.db'}")
    assert_refused(result, 1, "cannot open the database", "malformed; restore the last backup")


@pytest.mark.parametrize(
    "args",
    [
        ("doctor",),
        ("tenant", "list"),
        ("tenant", "show", "acme"),
        ("tenant", "set", "acme", "--max-page-size", "5"),
        ("tenant", "delete", "acme", "--yes"),
        ("tenant", "trace", "acme"),
        ("token", "create", "acme"),
        ("token", "list", "acme"),
        ("token", "revoke", "x"),
        ("schema", "list"),
        ("schema", "remove", "urn:example:x"),
    ],
)
def test_only_the_commands_that_make_a_database_open_one_that_is_not_there(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """A mistyped --db made an empty database there, on which doctor found nothing wrong."""
    typo = tmp_path / "typo.db"
    assert_refused(cli(*args, "--db", f"sqlite:///{typo}"), 1, f"no database at {typo}", "tenant create")
    assert list(tmp_path.iterdir()) == []


def test_tenant_delete_without_yes_asks_only_a_terminal(db: str) -> None:
    assert cli("tenant", "create", "acme", "--db", db).exit_code == 0
    before = stored(db)
    result = CliRunner().invoke(app, ["tenant", "delete", "acme", "--db", db], input="y\n")  # piped
    assert_refused(result, 2, "no terminal to ask on", "--yes")
    assert stored(db) == before
    assert cli("tenant", "delete", "acme", "--yes", "--db", db).exit_code == 0


def test_a_rate_burst_needs_a_rate_limit(db: str) -> None:
    """A burst stored without a limit was shown nowhere, then tightened a later --rate-limit."""
    assert_refused(cli("tenant", "create", "acme", "--rate-burst", "2", "--db", db), 2, "--rate-limit")
    assert cli("tenant", "create", "acme", "--db", db).exit_code == 0
    before = stored(db)
    assert_refused(
        cli("tenant", "set", "acme", "--rate-burst", "2", "--db", db), 2, "has none", "--rate-limit"
    )
    assert stored(db) == before
    assert cli("tenant", "set", "acme", "--rate-limit", "10", "--rate-burst", "2", "--db", db).exit_code == 0
    result = cli("tenant", "set", "acme", "--rate-burst", "3", "--db", db)  # the limit is there now
    assert result.exit_code == 0 and '"rate_burst": 3' in result.stdout, result.stderr


def test_a_leaked_secret_token_is_revoked_by_itself_and_never_printed_back(db: str) -> None:
    created = cli("tenant", "create", "acme", "--db", db)
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("pvs_")
    result = cli("token", "revoke", token, "--db", db)
    assert result.exit_code == 0, result.stderr
    assert token not in result.stdout + result.stderr and "of tenant acme" in result.stdout
    from provisor.server.auth import hash_token
    from provisor.store.sql import SqlStore

    with SqlStore(db) as store:
        found = store.token_by_hash(hash_token(token))
        assert found is not None and found[0].revoked is not None
    unknown = "pvs_" + "x" * 43
    refused = cli("token", "revoke", unknown, "--db", db)
    assert_refused(refused, 1, "no token is that Secret Token")
    assert unknown not in refused.stderr


@pytest.mark.parametrize("pasted", ["Bearer {}", " {} ", '"{}"', "{},", "Authorization: Bearer {}"])
def test_a_secret_token_pasted_with_what_surrounded_it_is_revoked_and_never_printed_back(
    db: str, pasted: str
) -> None:
    """An admin revoking a leaked token pastes what the leak showed: the token is found in it (it
    was refused, and the whole secret printed back in the refusal)."""
    created = cli("tenant", "create", "acme", "--db", db)
    token = created.stdout.strip().splitlines()[-1]
    result = cli("token", "revoke", pasted.format(token), "--db", db)
    assert result.exit_code == 0, result.stderr
    assert token not in result.stdout + result.stderr and "of tenant acme" in result.stdout
    unknown = "pvs_" + "y" * 43
    refused = cli("token", "revoke", pasted.format(unknown), "--db", db)
    assert_refused(refused, 1, "no token is that Secret Token (pvs_yyyy…)")
    assert unknown not in refused.stderr


def test_an_empty_provisor_db_is_refused_like_an_empty_db_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was taken as unset: provisor.db in the current folder, made afresh."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROVISOR_DB", " ")
    assert_refused(cli("tenant", "create", "acme"), 2, "$PROVISOR_DB is set but empty")
    assert list(tmp_path.iterdir()) == []
    result = cli("tenant", "create", "acme", "--db", f"sqlite:///{tmp_path / 'given.db'}")  # --db wins
    assert result.exit_code == 0, result.stderr


def test_backup_to_a_dash_is_refused_not_written_as_a_file_called_dash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'd.db'}"
    assert cli("tenant", "create", "acme", "--db", db).exit_code == 0
    assert_refused(cli("backup", "-", "--db", db), 2, "not standard output")
    assert not (tmp_path / "-").exists()


def test_a_network_given_with_host_bits_is_stored_as_its_network_and_said_so(db: str) -> None:
    result = cli("tenant", "create", "acme", "--allow-network", "10.1.2.3/8,192.0.2.0/24", "--db", db)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip() == "note: --allow-network 10.1.2.3/8 is the network 10.0.0.0/8"
    shown = cli("tenant", "show", "acme", "--json", "--db", db)
    assert '"10.0.0.0/8"' in shown.stdout and '"192.0.2.0/24"' in shown.stdout
    quiet = cli("tenant", "set", "acme", "--allow-network", "10.0.0.0/8", "--db", db)
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_the_demo_refuses_a_database_holding_tenants_it_did_not_make(db: str) -> None:
    """The demo empties and refills its own tenants; with $PROVISOR_DB pointing at a production
    database it ran there (and replaced a tenant named as one of its own)."""
    assert cli("tenant", "create", "acme", "--db", db).exit_code == 0
    before = tenants(db)
    result = cli("demo", "--db", db, "--once", "--port", "0")
    assert_refused(result, 1, "holds tenants the demo did not make (acme)", "a database of its own")
    assert tenants(db) == before
