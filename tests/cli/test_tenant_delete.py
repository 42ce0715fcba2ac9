"""`provisor tenant delete` in steps: stopped with Ctrl-C it says how to finish and leaves the tenant
marked; the other commands show the mark and refuse what a tenant being deleted cannot take; a
second run finishes it, and the name is free again."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from tests.cli.test_cli import PROVISOR, assert_one_line_error, last_line, run

from provisor.store.base import DeletionProgress, Member
from provisor.store.sql import SqlStore, steps

USERS = 4_000


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def fill(db: str, name: str, users: int) -> None:
    """A tenant ``name`` with ``users`` Users (each with an email), made through the store."""
    store = SqlStore(db)
    try:
        tenant = store.create_tenant(name).id
        with store.batch():
            for i in range(users):
                store.create(tenant, "User", {"userName": f"u{i}", "emails": [{"value": f"u{i}@x"}]})
    finally:
        store.close()


def partly_deleted(db: str, name: str) -> dict[str, int]:
    """Stop the deletion of tenant ``name`` after its first step that deleted resources (each
    statement a step), as Ctrl-C would; what it still holds of each type."""

    def stop_once_some_are_deleted(step: DeletionProgress) -> None:
        if step.deleted:
            raise KeyboardInterrupt

    store = SqlStore(db)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(steps, "STEP_SECONDS", 0.0)
            patch.setattr(steps, "PAUSE_SECONDS", 0.0)
            with pytest.raises(KeyboardInterrupt):
                store.delete_tenant(name, progress=stop_once_some_are_deleted)
    finally:
        store.close()
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        left = conn.execute(
            "SELECT resource_type, count(*) FROM resources JOIN tenants ON tenants.id = tenant_id"
            " WHERE name = ? GROUP BY resource_type",
            (name,),
        ).fetchall()
    return dict(left)


def deleting(path: str, name: str) -> bool:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT deleting FROM tenants WHERE name = ?", (name,)).fetchone()
    return row is not None and row[0] is not None


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_leaves_a_marked_tenant_that_the_commands_show_and_a_second_delete_finishes(
    db: str, signum: signal.Signals, status: int
) -> None:
    """SIGTERM (systemd stopping a unit, timeout) as Ctrl-C: it used to end the process without a word."""
    path = db.removeprefix("sqlite:///")
    fill(db, "gone", USERS)
    fill(db, "kept", 1)
    proc = subprocess.Popen(
        [*PROVISOR, "tenant", "delete", "gone", "--yes", "--db", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not deleting(path, "gone"):  # its first step marks it; Ctrl-C comes in a later one
        assert proc.poll() is None and time.monotonic() < deadline, "the deletion never began"
        time.sleep(0.005)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == status, (out, err)
    assert "Traceback" not in err and "Deleted" not in out
    assert "interrupted: tenant gone is partly deleted and accepts no token" in err
    assert "provisor tenant delete gone" in err

    listed = run("tenant", "list", db=db).stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == ["gone", "kept"]
    assert "\tbeing deleted since " in listed[0] and "being deleted" not in listed[1]
    shown = run("tenant", "show", "gone", db=db).stdout
    assert "deleting:   since " in shown and "to finish: provisor tenant delete gone" in shown
    assert "tokens:     0 active of 0" in shown
    p = run("token", "create", "gone", db=db, check=False)  # tenant set and create refuse alike
    assert_one_line_error(p)
    assert p.returncode == 1 and "tenant 'gone' is being deleted" in p.stderr, p.stderr
    assert "to finish a deletion that was stopped: provisor tenant delete gone" in p.stderr

    assert "Deleted tenant gone." in run("tenant", "delete", "gone", "--yes", db=db).stdout
    assert [line.split("\t")[0] for line in run("tenant", "list", db=db).stdout.splitlines()] == ["kept"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM resources").fetchone()[0] == 1  # kept's user
        assert conn.execute("SELECT count(*) FROM emails").fetchone()[0] == 1
    assert last_line(run("tenant", "create", "gone", db=db)).startswith("pvs_")  # the name is free again


def test_show_counts_what_a_tenant_being_deleted_still_holds(db: str) -> None:
    """Not the counts from before the deletion, which go only at its end."""
    fill(db, "gone", USERS)
    store = SqlStore(db)
    try:
        tenant = store.get_tenant("gone").id
        member = store.create(tenant, "User", {"userName": "member"})
        store.create(tenant, "Group", {"displayName": "g"}, [Member(member.id)])
    finally:
        store.close()
    left = partly_deleted(db, "gone")
    users, groups = left.get("User", 0), left.get("Group", 0)
    assert 0 < users + groups < USERS + 2  # some, not all, deleted

    shown = run("tenant", "show", "gone", db=db).stdout.splitlines()
    assert f"users:      {users}" in shown and f"groups:     {groups}" in shown, shown
    record = json.loads(run("tenant", "show", "gone", "--json", db=db).stdout)
    assert (record["users"], record["groups"]) == (users, groups)
    assert record["deleting"] is not None


def test_ctrl_c_before_the_deletion_began_says_nothing_was_deleted(db: str, monkeypatch) -> None:
    """Ctrl-C while the command waited for another writer's lock, say: the tenant was never
    marked, and the message must not send the admin to "finish" a deletion that never began."""
    from typer.testing import CliRunner

    from provisor.cli.main import app

    fill(db, "kept", 3)

    def stopped_waiting(self, name_or_id, **options):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(SqlStore, "delete_tenant", stopped_waiting)
    for name, said in (
        ("kept", "interrupted before tenant kept was changed: nothing was deleted"),
        ("nobody", "interrupted: there is no tenant nobody now"),
    ):
        result = CliRunner().invoke(app, ["tenant", "delete", name, "--yes", "--db", db])
        assert result.exit_code == 130, (result.stderr, result.exception)
        assert result.stderr == f"provisor: {said}\n"
    assert not deleting(db.removeprefix("sqlite:///"), "kept")
    assert "users:      3" in run("tenant", "show", "kept", db=db).stdout


def test_doctor_names_a_stopped_deletion_and_the_command_that_finishes_it(db: str) -> None:
    """It advised `token create`, which a tenant being deleted refuses."""
    fill(db, "gone", 300)
    run("tenant", "create", "kept", db=db)
    partly_deleted(db, "gone")
    assert deleting(db.removeprefix("sqlite:///"), "gone")
    p = run("doctor", db=db, check=False)
    assert p.returncode == 1, p.stdout
    lines = p.stdout.splitlines()
    assert lines[:-1] == [
        "problem: tenant gone: its deletion was stopped part way, so it accepts no token and holds "
        "what is left of its data (finish it: provisor tenant delete --yes gone)"
    ]
    run("tenant", "delete", "gone", "--yes", db=db)  # as advised
    assert run("doctor", db=db).stdout.splitlines() == ["Nothing needs attention (1 tenant)."]
