"""`provisor schema remove --purge` in steps: stopped with Ctrl-C it says how to finish and leaves the
declaration marked; the other commands show the mark and refuse to declare the URN again; a second
run finishes it, and the URN can be declared again."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from tests.cli.test_cli import PROVISOR, assert_one_line_error, run

from provisor.scim.schema import default_registry
from provisor.scim.schema.extensions import parse_extension
from provisor.store.sql import SqlStore

URN = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"
DEFINITION = {"id": URN, "attributes": [{"name": "costCode", "type": "string"}]}
USERS = 20_000  # about a second of steps, for Ctrl-C to come in
HOLDS = f'%"{URN}":%'


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def fill(db: str) -> None:
    """URN declared, and a tenant of USERS Users that hold values of it, made through the store."""
    store = SqlStore(db)
    store.add_schema_extension(parse_extension(DEFINITION, default_registry(), "User"))
    store.close()
    store = SqlStore(db)
    try:
        tenant = store.create_tenant("contoso").id
        with store.batch():
            for i in range(USERS):
                store.create(tenant, "User", {"userName": f"u{i}", URN: {"costCode": f"CC-{i}"}})
    finally:
        store.close()


def holders(path: str) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM resources WHERE data LIKE ?", (HOLDS,)).fetchone()[0])


def first_rewritten(path: str) -> bool:
    """Whether the first step committed: the first User has its next version."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return bool(conn.execute("SELECT version FROM resources ORDER BY pk LIMIT 1").fetchone()[0] > 1)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_leaves_a_marked_declaration_that_the_commands_show_and_a_second_purge_finishes(
    db: str, tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    """SIGTERM (systemd stopping a unit, timeout) as Ctrl-C: it used to end the process without a word."""
    path = db.removeprefix("sqlite:///")
    fill(db)
    assert holders(path) == USERS
    # without --purge the removal is refused, and nothing is marked
    p = run("schema", "remove", URN, db=db, check=False)
    assert_one_line_error(p)
    assert f"{USERS} stored resource(s) hold values" in p.stderr and "--purge" in p.stderr
    assert run("schema", "list", db=db).stdout.strip().split("\t") == [URN, "User", "optional", "costCode"]

    proc = subprocess.Popen(
        [*PROVISOR, "schema", "remove", URN, "--purge", "--db", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not first_rewritten(path):  # after the mark and the servers' time, the steps rewrite them
        assert proc.poll() is None and time.monotonic() < deadline, "the purge never began"
        time.sleep(0.005)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == status, (out, err)
    assert "Traceback" not in err and "Removed" not in out
    assert f"interrupted: {URN} is partly removed (servers neither show nor take its values)" in err
    assert f"to finish: provisor schema remove {URN} --purge" in err
    assert 0 < holders(path) < USERS

    listed = run("schema", "list", db=db).stdout.strip().split("\t")
    assert listed[:4] == [URN, "User", "optional", "costCode"]
    assert listed[4].startswith("being removed since ")
    definition = tmp_path / "ext.json"
    definition.write_text(json.dumps(DEFINITION), "utf-8")
    p = run("schema", "add", str(definition), db=db, check=False)
    assert_one_line_error(p)
    assert p.returncode == 1
    assert f"the extension schema {URN} is being removed" in p.stderr
    assert f"to finish its removal: provisor schema remove {URN} --purge" in p.stderr

    p = run("schema", "remove", URN.lower(), "--purge", db=db)
    assert p.stdout.startswith(f"Removed {URN.lower()} and its values from ")
    assert holders(path) == 0 and run("schema", "list", db=db).stdout == ""
    assert run("schema", "add", str(definition), db=db).stdout.strip().endswith(URN)  # free again


@pytest.mark.parametrize("purge", [[], ["--purge"]])
def test_ctrl_c_before_the_removal_began_says_nothing_was_removed(db: str, monkeypatch, purge) -> None:
    """Ctrl-C while the command waited for another writer's lock, say: nothing is marked, and the
    message must not call the declaration partly removed."""
    from typer.testing import CliRunner

    from provisor.cli.main import app

    store = SqlStore(db)
    store.add_schema_extension(parse_extension(DEFINITION, default_registry(), "User"))
    store.close()

    def stopped_waiting(self, urn, **options):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(SqlStore, "remove_schema_extension", stopped_waiting)
    other = "urn:example:params:scim:schemas:extension:never:2.0:User"
    for urn, said in (
        (URN, f"interrupted before {URN} was changed: nothing was removed"),
        (other, f"interrupted: no extension schema {other} is declared now"),
    ):
        result = CliRunner().invoke(app, ["schema", "remove", urn, *purge, "--db", db])
        assert result.exit_code == 130, (result.stderr, result.exception)
        assert result.stderr == f"provisor: {said}\n"
    assert run("schema", "list", db=db).stdout.strip().split("\t") == [URN, "User", "optional", "costCode"]
