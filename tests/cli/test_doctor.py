"""``provisor doctor``: problems (exit 1) and warnings, one line each, for what needs an operator."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.cli.test_cli_bad_input import cli

from provisor.server.auth import hash_token
from provisor.store.sql import SqlStore
from provisor.store.sql.tables import tenants


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'doctor.db'}"


def findings(db: str, *args: str) -> tuple[int, list[str]]:
    result = cli("doctor", "--db", db, *args)
    assert result.stderr == "" and "Traceback" not in result.stdout
    return result.exit_code, result.stdout.splitlines()


def test_a_healthy_deployment_needs_nothing(db: str) -> None:
    assert cli("tenant", "create", "acme", "--db", db).exit_code == 0
    assert cli("tenant", "create", "other", "--db", db).exit_code == 0
    assert findings(db) == (0, ["Nothing needs attention (2 tenants)."])


def test_a_tenant_no_token_reaches_is_a_problem(db: str) -> None:
    with SqlStore(db) as store:
        gone = store.create_tenant("gone")
        store.revoke_token(store.add_token(gone.id, hash_token("a"), "pvs_a", "old", None).id)
        lapsed = store.create_tenant("lapsed")
        store.add_token(lapsed.id, hash_token("b"), "pvs_b", "x", datetime.now(UTC) - timedelta(days=1))
        store.create_tenant("none")
        fine = store.create_tenant("fine")
        store.add_token(fine.id, hash_token("c"), "pvs_c", "x", None)
    code, lines = findings(db)
    assert code == 1
    assert sorted(lines[:-1]) == [  # revoked, expired, never made; "fine" is not listed
        f"problem: tenant {name}: no active Secret Token, so no client can reach it "
        f"(make one: provisor token create {name})"
        for name in ("gone", "lapsed", "none")
    ]
    assert lines[-1] == "3 problems, 0 warnings."


def test_tokens_that_expire_soon_and_tracing_left_on_are_warnings(db: str) -> None:
    with SqlStore(db) as store:
        acme = store.create_tenant("acme", {"trace": 50})
        soon = store.add_token(
            acme.id, hash_token("a"), "pvs_a", "entra", datetime.now(UTC) + timedelta(days=3)
        )
        store.add_token(acme.id, hash_token("b"), "pvs_b", "later", datetime.now(UTC) + timedelta(days=90))
    code, lines = findings(db)
    assert code == 0  # warnings only
    assert len(lines) == 3 and lines[-1] == "0 problems, 2 warnings."
    assert lines[0].startswith(f"warning: tenant acme: token {soon.id} (entra) expires 20")
    assert lines[0].endswith(": give Entra a new one before then")
    assert lines[1] == (
        "warning: tenant acme: tracing is on (its traces hold personal data; stop it: "
        "provisor tenant set --no-trace acme)"
    )
    code, lines = findings(db, "--days", "1")  # three days away is not soon within a day
    assert code == 0 and not any("expires" in line for line in lines)


def test_allowed_networks_that_cannot_be_read_are_a_problem(db: str) -> None:
    assert cli("tenant", "create", "acme", "--db", db).exit_code == 0
    with SqlStore(db) as store:
        store.update_settings("acme", {"allowed_networks": "10.0.0.0/8"})  # hand-edited: not a list
    code, lines = findings(db)
    assert code == 1 and lines[0].startswith("problem: tenant acme: its allowed networks cannot be read")


def test_settings_that_cannot_be_read_are_a_problem(db: str) -> None:
    assert cli("tenant", "create", "acme", "--db", db).exit_code == 0
    with SqlStore(db) as store, store.engine.begin() as conn:
        conn.execute(tenants.update().where(tenants.c.name == "acme").values(settings='["hand edited"]'))
    code, lines = findings(db)
    assert code == 1 and lines[0] == (
        "problem: tenant acme: its stored settings cannot be read (they are an array where a JSON "
        "object belongs), so it accepts no requests (set them again: provisor tenant set OPTIONS acme)"
    )
    assert not any("allowed networks" in line for line in lines)  # one problem, told once


def _damaged(db: str, tmp_path: Path) -> None:
    """A database whose index's page is scribbled over: SQLite's checks find hundreds of faults."""
    assert cli("tenant", "create", "acme", "--db", db).exit_code == 0
    with SqlStore(db) as store:
        tenant = store.get_tenant("acme")
        for i in range(200):
            store.create(tenant.id, "User", {"userName": f"u{i}@x.com", "displayName": "x" * 200})
    path = tmp_path / "doctor.db"
    with sqlite3.connect(path) as conn:
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'ix_resources_scope'"
        ).fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(path, "r+b") as f:  # scribble over an index page's cell pointers
        f.seek((root - 1) * page + 8)
        f.write(b"\xff" * 64)


def test_a_damaged_database_is_a_problem(db: str, tmp_path: Path) -> None:
    _damaged(db, tmp_path)
    code, lines = findings(db)
    assert code == 1
    assert lines[0].startswith("problem: the database fails SQLite's quick_check: ")
    assert lines[0].endswith("restore the last backup (provisor backup makes them)")


def test_a_backup_of_a_damaged_database_says_so_in_one_line(db: str, tmp_path: Path) -> None:
    """It printed every line of integrity_check: a hundred and more."""
    _damaged(db, tmp_path)
    result = cli("backup", str(tmp_path / "copy.db"), "--db", db)
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("provisor: ") and len(line) < 1000, line
    assert not (tmp_path / "copy.db").exists()


def test_what_integrity_check_says_is_one_line() -> None:
    """A row may hold several lines, and a damaged database gives hundreds: backup printed them all."""
    from provisor.cli.common import integrity_summary

    rows = [
        "*** in database main ***\nPage 5: bad cell\nPage 6: bad cell",
        "row 7 missing from index a",
        "x",
        "y",
    ]
    assert (
        integrity_summary(rows)
        == "Page 5: bad cell; Page 6: bad cell; row 7 missing from index a (and 2 more)"
    )
    assert integrity_summary(["wrong # of entries in index b"]) == "wrong # of entries in index b"


@pytest.mark.parametrize("command", [("doctor",), ("tenant", "list"), ("token", "list", "acme")])
def test_an_empty_database_file_is_refused_not_made_a_database(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """SQLite takes a 0-byte file as a new database: doctor wrote a schema into a file a botched
    restore had truncated, and found "nothing needs attention"."""
    path = tmp_path / "truncated.db"
    path.write_bytes(b"")
    result = cli(*command, "--db", f"sqlite:///{path}")
    assert result.exit_code == 1 and f"the database file {path} is empty" in result.stderr, result.stderr
    assert path.stat().st_size == 0


def test_days_out_of_range_is_a_usage_error(db: str) -> None:
    result = cli("doctor", "--db", db, "--days", "-1")
    assert result.exit_code == 2 and "--days" in result.stderr


def test_a_stored_null_network_setting_allows_any_address_and_is_no_problem(db: str, tmp_path: Path) -> None:
    assert cli("tenant", "create", "acme", "--db", db).exit_code == 0
    with sqlite3.connect(tmp_path / "doctor.db") as conn:
        conn.execute("""UPDATE tenants SET settings = '{"allowed_networks": null}'""")
    conn.close()
    assert findings(db) == (0, ["Nothing needs attention (1 tenant)."])


def test_the_commands_it_suggests_run_as_given_for_a_name_with_spaces(db: str) -> None:
    """`provisor token create Contoso Ltd.` would have been two arguments."""
    with SqlStore(db) as store:
        store.create_tenant("Contoso Ltd.", {"trace": 5})
    code, lines = findings(db)
    assert code == 1
    assert "(make one: provisor token create 'Contoso Ltd.')" in lines[0]
    assert (
        "(its traces hold personal data; stop it: provisor tenant set --no-trace 'Contoso Ltd.')" in lines[1]
    )
    shown = cli("tenant", "show", "Contoso Ltd.", "--db", db).stdout
    assert "the last 5 requests (provisor tenant trace 'Contoso Ltd.')" in shown
    cli("tenant", "set", "Contoso Ltd.", "--db", db, "--no-trace")
    hint = cli("tenant", "trace", "Contoso Ltd.", "--db", db).stderr
    assert "turn it on with: provisor tenant set --trace 100 'Contoso Ltd.'" in hint


def test_the_commands_it_suggests_run_as_given_for_a_name_that_starts_with_a_dash(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`provisor token create -x` is an unknown option: the name comes after `--`."""
    with SqlStore(db) as store:
        store.create_tenant("-x", {"trace": 5})
    code, lines = findings(db)
    assert code == 1
    assert "(make one: provisor token create -- -x)" in lines[0]
    assert "stop it: provisor tenant set --no-trace -- -x)" in lines[1]
    monkeypatch.setenv("PROVISOR_DB", db)  # as an operator runs the suggestions: the words as printed
    for line in lines[:2]:
        suggested = line.rsplit(": provisor ", 1)[1].rstrip(")").split()
        result = cli(*suggested)
        assert result.exit_code == 0, (suggested, result.stderr)
    assert findings(db) == (0, ["Nothing needs attention (1 tenant)."])


def test_a_token_that_expired_while_in_use_is_a_problem_though_another_is_active(db: str) -> None:
    """Its client is refused from the moment it expired; another token of the tenant hid it."""
    now = datetime.now(UTC)
    with SqlStore(db) as store:
        acme = store.create_tenant("acme")
        lapsed = store.add_token(acme.id, hash_token("a"), "pvs_a", "entra", now - timedelta(hours=1))
        store.add_token(acme.id, hash_token("b"), "pvs_b", "spare", None)
        old = store.add_token(acme.id, hash_token("c"), "pvs_c", "old", now - timedelta(days=100))
        store.touch_token(lapsed.id, now - timedelta(hours=1, minutes=1))  # until a minute before it expired
        store.touch_token(old.id, now - timedelta(days=200))  # long out of use: no news
    code, lines = findings(db)
    assert code == 1, lines
    assert len(lines) == 2 and lines[-1] == "1 problem, 0 warnings."
    assert lines[0].startswith(f"problem: tenant acme: token {lapsed.id} (entra) expired 20")
    assert "a client still sending it is refused" in lines[0]
    assert lines[0].endswith(f"provisor token revoke {lapsed.id})")
    assert cli("token", "revoke", lapsed.id, "--db", db).exit_code == 0
    assert findings(db) == (0, ["Nothing needs attention (1 tenant)."])
