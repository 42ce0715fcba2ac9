"""The job commands end to end: sync, logs, status, the deletion threshold, quarantine, e-mail."""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from tests.conftest import GROUP, create_user

PROVISOR = [sys.executable, "-m", "provisor.cli.main"]


def provisor(*args, env=None, check=True):
    p = subprocess.run(
        [*PROVISOR, *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


@pytest.fixture
def setup(live, tmp_path):
    _, dir_token = live.new_tenant()
    _, app_token = live.new_tenant({"allowed_roles": ["User"]})
    directory = live.client(dir_token)
    users = [
        create_user(
            directory,
            f"user{i}@example.com",
            displayName=f"User {i}",
            emails=[{"type": "work", "value": f"user{i}@example.com"}],
        )
        for i in range(6)
    ]
    directory.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "Engineering",
            "members": [{"value": u["id"]} for u in users],
        },
    )
    job = tmp_path / "clarizen.yaml"

    def write(threshold=500, notifications="", assignments=""):
        job.write_text(f"""name: clarizen-one
source:
  type: scim
  url: {live.base}
  token: ${{DIRECTORY_TOKEN}}
target:
  url: {live.base}
  token: ${{APP_TOKEN}}
template: clarizen-one
scope:
  mode: assigned
  assignments:
    - group: Engineering
      role: User
{assignments}settings:
  deletion_threshold: {threshold}
state: sqlite:///clarizen-one.state.db
{notifications}""")

    write()
    env = {"DIRECTORY_TOKEN": dir_token, "APP_TOKEN": app_token}
    return job, env, directory, live.client(app_token), users, write


def test_sync_logs_and_status(setup):
    job, env, directory, app, users, _ = setup
    out = provisor("sync", "--job", str(job), "--once", env=env).stdout
    assert "Initial" in out and "Succeeded" in out
    assert app.get("/Users").json()["totalResults"] == 6
    lines = provisor("logs", "--job", str(job), "--format", "json", env=env).stdout.strip().splitlines()
    records = [json.loads(line) for line in lines]
    assert {r["action"] for r in records} == {"Create"} and len(records) == 7
    for r in records:
        assert {"cycle", "action", "status", "source_anchor", "target_id", "reason"} <= set(r)
    status = json.loads(provisor("status", "--job", str(job), "--json", env=env).stdout)
    assert status["status"] == "Active" and status["users"] == 6 and status["groups"] == 1
    finished = datetime.fromisoformat(status["last_cycle"]["finished"])
    assert status["next_cycle_reason"] == "interval"  # the job's 40 minutes after the last cycle
    assert datetime.fromisoformat(status["next_cycle"]) - finished == timedelta(minutes=40)
    # the state file sits next to the job file
    assert (job.parent / "clarizen-one.state.db").exists()
    # secrets never in output
    assert env["APP_TOKEN"] not in out and env["DIRECTORY_TOKEN"] not in "".join(lines)
    csv_out = provisor("logs", "--job", str(job), "--format", "csv", "--action", "Create", env=env).stdout
    assert csv_out.splitlines()[0].startswith("cycle,time,kind,action") and len(csv_out.splitlines()) == 8


def test_deletion_threshold_stages_then_allow_deletes_releases(setup):
    job, env, directory, app, users, write = setup
    write(threshold=3)
    provisor("sync", "--job", str(job), env=env)
    for u in users[:4]:
        directory.delete(f"/Users/{u['id']}")
    out = provisor("sync", "--job", str(job), env=env).stdout
    assert "Quarantine" in out
    assert app.get("/Users").json()["totalResults"] == 6  # nothing deleted yet
    staged = provisor(
        "logs", "--job", str(job), "--action", "StagedDelete", "--format", "json", env=env
    ).stdout
    assert len(staged.strip().splitlines()) == 4
    provisor("allow-deletes", "--job", str(job), env=env)
    out = provisor("sync", "--job", str(job), env=env).stdout
    assert app.get("/Users").json()["totalResults"] == 2


class SmtpSink:
    """A real SMTP server's handler (aiosmtpd) for a free loopback port: keeps every message."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope)
        return "250 OK"

    def wait(self, seconds: float = 5.0) -> list[Any]:
        """What has arrived, once something has or ``seconds`` have passed."""
        deadline = time.monotonic() + seconds
        while not self.received and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def test_bad_credentials_quarantine_and_email(setup, smtp):
    job, env, *_, write = setup
    write(
        notifications=f"notifications:\n  email: it-ops@example.com\n  smtp: smtp://127.0.0.1:{smtp.port}\n"
    )
    p = provisor("sync", "--job", str(job), env={**env, "APP_TOKEN": "pvs_wrong"}, check=False)
    assert p.returncode != 0 and "quarantine" in p.stderr.lower() and "Traceback" not in p.stderr
    messages = smtp.wait()
    assert messages and messages[0].rcpt_tos == ["it-ops@example.com"]
    body = messages[0].content.decode()
    assert "pvs_wrong" not in body and "quarantine" in body.lower()
    status = json.loads(provisor("status", "--job", str(job), "--json", env=env).stdout)
    assert status["status"] == "Quarantine"
    # the next cycle is the quarantine's next attempt, not the interval after the last cycle
    assert status["next_cycle_reason"] == "quarantine"
    assert status["next_cycle"] == status["quarantine"]["next_attempt"]
    # while quarantined, sync refuses with a clear message
    p = provisor("sync", "--job", str(job), env=env, check=False)
    assert p.returncode != 0 and "quarantine" in p.stderr
    provisor("restart", "--job", str(job), "--scope", "QuarantineState", env=env)
    provisor("sync", "--job", str(job), env=env)


def test_a_job_file_that_is_a_directory_or_not_text_is_named_as_such(tmp_path):
    """It was "no such job file" for a directory, and "cannot read the job file: UnicodeDecodeError"."""
    p = provisor("status", "--job", str(tmp_path), check=False)
    assert (
        p.returncode == 1
        and p.stderr == f"provisor: {tmp_path} is a directory; --job takes a job file (YAML)\n"
    )
    binary = tmp_path / "job.yaml"
    binary.write_bytes(b"name: x\n\xff\xfe\x00")
    p = provisor("status", "--job", str(binary), check=False)
    assert p.returncode == 1
    assert (
        p.stderr
        == "provisor: job.yaml: cannot read the job file: not UTF-8 text (invalid start byte at byte 8)\n"
    )


def test_invalid_job_file_names_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nsource:\n  type: ldap\n  url: http://127.0.0.1:1/scim/v2\n"
        "target:\n  url: http://127.0.0.1:1/scim/v2\n  token: t\n"
    )
    p = provisor("sync", "--job", str(bad), check=False)
    assert p.returncode != 0 and "bad.yaml:3" in p.stderr and "Traceback" not in p.stderr
    p = provisor("sync", "--job", str(tmp_path / "missing.yaml"), check=False)
    assert p.returncode != 0 and "no such job file" in p.stderr


@pytest.mark.parametrize(
    ("state", "said"),
    [
        ("junk.db", "file is not a database"),
        ("no-such-folder/state.db", "unable to open database file (no such directory: {folder})"),
    ],
)
def test_a_state_database_that_cannot_be_opened_is_one_line_naming_it(tmp_path, state, said):
    """Not SQLAlchemy's two lines ("(sqlite3.DatabaseError) ..." and "(Background on this error
    at: ...)") without the database's name."""
    (tmp_path / "junk.db").write_text("not a database\n")
    job = tmp_path / "job.yaml"
    job.write_text(OFFLINE_JOB.replace("race.state.db", state))
    env = {"DIRECTORY_TOKEN": "t", "APP_TOKEN": "t"}
    for command in ("status", "sync", "pause"):
        p = provisor(command, "--job", str(job), env=env, check=False)
        assert p.returncode == 1, p.stderr
        said = said.format(folder=tmp_path / "no-such-folder")
        assert p.stderr == f"provisor: cannot open the job's state 'sqlite:///{tmp_path / state}': {said}\n"
    assert (tmp_path / "junk.db").read_text() == "not a database\n"


# -- admin commands beside a running cycle: each writes only the fields it owns --------------------

OFFLINE_JOB = """name: race
source:
  type: scim
  url: http://127.0.0.1:9/scim/v2
  token: ${DIRECTORY_TOKEN}
target:
  url: http://127.0.0.1:9/scim/v2
  token: ${APP_TOKEN}
template: scim-default
scope:
  mode: all
state: sqlite:///race.state.db
"""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["pause"], {"status": "Paused"}),
        (["resume"], {"status": "Active"}),
        (["allow-deletes"], {"allow_deletes": True, "quarantine": None, "status": "Active"}),
        (["restart", "--scope", "ForceDeletes"], {"allow_deletes": True}),
    ],
)
def test_an_admin_command_keeps_what_a_cycle_commits_meanwhile(tmp_path, monkeypatch, args, expected):
    """The end of a cycle commits (from another connection, as another process would) right after
    the admin command first touches the job's state: its watermark and last cycle stay."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from typer.testing import CliRunner

    import provisor.cli.engine as engine_root
    from provisor.cli.main import app
    from provisor.engine.state import JobState, JobStateChange, JobStatus, Quarantine
    from provisor.store.sql.engine_state import SqlEngineState

    job = tmp_path / "race.yaml"
    job.write_text(OFFLINE_JOB)
    url = f"sqlite:///{tmp_path / 'race.state.db'}"
    now = datetime.now(UTC)
    quarantine = Quarantine("EncounteredQuarantineException", "401", now, now, now)
    cycle_side = SqlEngineState(url)
    status = JobStatus.PAUSED if args == ["resume"] else JobStatus.QUARANTINE
    cycle_side.save_job_state(JobState("race", status, "w-old", quarantine, last_cycle="c1"))

    class CycleEndsMeanwhile(SqlEngineState):
        fired = False

        def _cycle_ends(self) -> None:
            if not self.fired:
                self.fired = True
                cycle_side.update_job_state("race", JobStateChange(watermark="w-new", last_cycle="c2"))

        def job_state(self, name):  # type: ignore[no-untyped-def]
            found = super().job_state(name)
            self._cycle_ends()  # the command now holds a copy from before the cycle's end
            return found

        def update_job_state(self, name, change):  # type: ignore[no-untyped-def]
            self._cycle_ends()
            return super().update_job_state(name, change)

    def open_job(path, env, **options):  # type: ignore[no-untyped-def]
        loaded = original(path, env, **options)
        loaded.state.close()
        return replace(loaded, state=CycleEndsMeanwhile(loaded.job.state))

    original = engine_root.open_job
    monkeypatch.setattr(engine_root, "open_job", open_job)
    try:
        result = CliRunner().invoke(
            app, [*args, "--job", str(job)], env={"DIRECTORY_TOKEN": "d", "APP_TOKEN": "a"}
        )
        assert result.exit_code == 0, result.output
        after = cycle_side.job_state("race")
        assert (after.watermark, after.last_cycle) == ("w-new", "c2")  # the cycle's fields stand
        shown = {
            "status": after.status.value,
            "allow_deletes": after.allow_deletes,
            "quarantine": after.quarantine,
        }
        assert {k: shown[k] for k in expected} == expected
    finally:
        cycle_side.close()


# -- Ctrl-C and SIGTERM during `provisor sync` ----------------------------------------------------


@pytest.fixture
def big_job(live, tmp_path):
    from tests.cli.test_service import JOB, directory_with

    _, _, env = directory_with(live, 250)
    job = tmp_path / "big.yaml"
    job.write_text(JOB.format(name="big", source=live.base, target=live.base))
    return job, env, live.client(env["APP_TOKEN"])


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sync_interrupted_says_so_and_the_next_sync_resumes(big_job, signum, status):
    from provisor.engine.state import CycleKind
    from provisor.store.sql.engine_state import SqlEngineState

    job, env, app = big_job
    proc = subprocess.Popen(
        [*PROVISOR, "sync", "--job", str(job), "--once"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **env},
    )

    def created() -> int:
        return int(app.get("/Users", params={"count": 0}).json()["totalResults"])

    deadline = time.monotonic() + 60
    while created() < 40:
        assert proc.poll() is None, "the cycle finished before the signal; raise the user count"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == status, out + err
    assert "Aborted!" not in out + err and "Traceback" not in out + err, err
    assert "interrupted; what it committed is kept and the next sync or run resumes it" in err
    state = SqlEngineState(f"sqlite:///{job.parent / 'big.state.db'}")
    try:
        (cycle,) = state.cycles("big")
        assert cycle.result == "Interrupted" and f"cycle {cycle.id} interrupted" in err
        # the lease was given up: the next sync runs at once and completes the initial cycle
        done = provisor("sync", "--job", str(job), env=env)
        assert "Initial" in done.stdout and "Succeeded" in done.stdout
        newest = state.cycles("big", limit=1)[0]
        assert newest.kind is CycleKind.INITIAL and newest.result == "Succeeded"
    finally:
        state.close()
    assert app.get("/Users", params={"count": 0}).json()["totalResults"] == 250


def test_a_cycle_with_new_failures_sends_one_email(setup, smtp):
    """Entry-level failures do not fail the sync; the admin hears of new ones once, not every cycle."""
    job, env, directory, app, users, write = setup
    # user0 also gets the role Admin, which the Clarizen-style app refuses (only User)
    write(
        notifications=f"notifications:\n  email: it-ops@example.com\n  smtp: smtp://127.0.0.1:{smtp.port}\n",
        assignments="    - user: user0@example.com\n      role: Admin\n",
    )
    p = provisor("sync", "--job", str(job), env=env)
    assert "Failure" in p.stdout or "failure" in p.stdout.lower()
    received = smtp.wait()
    assert len(received) == 1
    body = received[0].content.decode()
    assert "1 object failed in cycle" in body and "User 0: POST /Users failed with HTTP 400" in body
    assert env["APP_TOKEN"] not in body and env["DIRECTORY_TOKEN"] not in body
    names = {u["userName"] for u in app.get("/Users", params={"count": 50}).json()["Resources"]}
    assert "user0@example.com" not in names and len(names) == 5
    provisor("sync", "--job", str(job), env=env)  # the same failure, escrowed: no second e-mail
    time.sleep(0.5)
    assert len(received) == 1


def test_an_admin_command_on_a_locked_state_says_so_and_changes_nothing(tmp_path, monkeypatch):
    """Another process holds the state's write lock (a suspended ``run`` mid-commit): ``pause``
    waits its busy timeout, then fails with one clear line, status 1, the job unchanged."""
    import sqlite3

    from typer.testing import CliRunner

    import provisor.cli.jobs as jobs
    from provisor.cli.main import app
    from provisor.engine.state import JobState, JobStatus
    from provisor.store.sql.engine_state import SqlEngineState

    job = tmp_path / "locked.yaml"
    job.write_text(OFFLINE_JOB.replace("race", "locked"))
    state = SqlEngineState(f"sqlite:///{tmp_path / 'locked.state.db'}")
    state.save_job_state(JobState("locked", JobStatus.ACTIVE, "w-1"))
    holder = sqlite3.connect(tmp_path / "locked.state.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(jobs, "ADMIN_BUSY_TIMEOUT", 0.3)
    try:
        result = CliRunner().invoke(
            app, ["pause", "--job", str(job)], env={"DIRECTORY_TOKEN": "d", "APP_TOKEN": "a"}
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 1, result.output
    assert "its state file stayed locked by another process" in result.output
    assert "nothing was changed" in result.output and "Traceback" not in result.output
    assert state.job_state("locked").status is JobStatus.ACTIVE
    state.close()


def test_logs_filters_take_any_case_and_refuse_values_no_record_holds(tmp_path):
    """`--status failure` showed no records, as if nothing had failed (the records say Failure);
    `--limit 0` or `-1` showed none either."""
    from provisor.engine.state_contract import record
    from provisor.store.sql.engine_state import SqlEngineState

    job = tmp_path / "race.yaml"
    job.write_text(OFFLINE_JOB)
    state = SqlEngineState(f"sqlite:///{tmp_path / 'race.state.db'}")
    try:
        state.append_log("race", record("ok"))
        state.append_log("race", record("bad", seconds=1, action="Update", status="Failure"))
    finally:
        state.close()
    env = {"DIRECTORY_TOKEN": "d", "APP_TOKEN": "a"}

    def logs(*args):
        return provisor("logs", "--job", str(job), "--format", "json", *args, env=env, check=False)

    for args in (["--status", "failure"], ["--status", " FAILURE"], ["--action", "update"]):
        p = logs(*args)
        assert p.returncode == 0, p.stderr
        assert [json.loads(line)["source_anchor"] for line in p.stdout.splitlines()] == ["bad"], args
    for args, said in (
        (["--status", "Failed"], "--status takes Success, Failure, Skipped, not 'Failed'"),
        (["--action", "Created"], "--action takes Create, Update, Disable, Delete, Skip, StagedDelete"),
        (["--limit", "0"], "--limit must be at least 1, not 0"),
        (["--limit", "-1"], "--limit must be at least 1, not -1"),
    ):
        p = logs(*args)
        assert p.returncode == 2 and not p.stdout, (args, p.stderr)
        assert p.stderr.startswith(f"provisor: {said}") and len(p.stderr.splitlines()) == 1, p.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["logs", "--format", "xml"], "--format must be table, json or csv, not 'xml'"),
        (["provision", "--format", "xml", "--user", "u"], "--format must be text or json, not 'xml'"),
        (["provision"], "give exactly one of --user ID_OR_UPN or --group ID_OR_DISPLAYNAME"),
        (["provision", "--user", "u", "--group", "g"], "give exactly one of --user"),
        (["provision", "--user", " "], "the object to provision must not be empty"),
        (["restart", "--scope", "Watermarks"], "--scope takes Watermark, Escrows"),
    ],
)
def test_usage_errors_of_the_job_commands_exit_2(tmp_path, args, said):
    """2 for a usage error, 1 for a failure, as every other command (they exited 1); nothing is
    opened, so no state file is made."""
    job = tmp_path / "race.yaml"
    job.write_text(OFFLINE_JOB)
    p = provisor(*args, "--job", str(job), env={"DIRECTORY_TOKEN": "d", "APP_TOKEN": "a"}, check=False)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith(f"provisor: {said}") and len(p.stderr.splitlines()) == 1, p.stderr
    assert not (tmp_path / "race.state.db").exists()


def test_the_commands_a_paused_job_suggests_run_as_given_for_a_path_with_spaces(tmp_path):
    folder = tmp_path / "my jobs"
    folder.mkdir()
    job = folder / "race.yaml"
    job.write_text(OFFLINE_JOB)
    env = {"DIRECTORY_TOKEN": "d", "APP_TOKEN": "a"}
    provisor("pause", "--job", str(job), env=env)
    p = provisor("sync", "--job", str(job), env=env, check=False)
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip().endswith(f"resume it with: provisor resume --job '{job}'"), p.stderr


def test_logs_into_a_pipe_closed_early_ends_quietly(tmp_path):
    """`provisor logs ... | head` said "provisor: job race.yaml: BrokenPipeError: [Errno 32] Broken
    pipe", as if the job had failed."""
    from provisor.engine.state_contract import record
    from provisor.store.sql.engine_state import SqlEngineState

    job = tmp_path / "race.yaml"
    job.write_text(OFFLINE_JOB)
    state = SqlEngineState(f"sqlite:///{tmp_path / 'race.state.db'}")
    try:
        for i in range(3000):  # more than a pipe holds
            state.append_log("race", record(f"a{i}", seconds=i))
    finally:
        state.close()
    proc = subprocess.Popen(
        [*PROVISOR, "logs", "--job", str(job)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "DIRECTORY_TOKEN": "d", "APP_TOKEN": "a"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"2025-03-01 12:00:00 Create")
    proc.stdout.close()  # head has read its line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert err == ""


def test_state_commands_need_none_of_the_jobs_secrets(setup, tmp_path):
    """An operator without DIRECTORY_TOKEN and APP_TOKEN in the shell could not pause a runaway
    job, nor read its status or logs: each refused "${DIRECTORY_TOKEN} is not set"."""
    job, env, *_ = setup
    provisor("sync", "--job", str(job), "--once", env=env)
    bare = {k: v for k, v in os.environ.items() if k not in env}
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=120, env=bare)
    for args in (
        ("status", "--json"),
        ("logs", "--format", "json"),
        ("pause",),
        ("resume",),
        ("allow-deletes",),
    ):
        p = run([*PROVISOR, args[0], "--job", str(job), *args[1:]], stdin=subprocess.DEVNULL)
        assert p.returncode == 0, (args, p.stderr)
    p = run([*PROVISOR, "pause", "--job", str(job)], stdin=subprocess.DEVNULL)
    assert p.stdout.strip() == "clarizen-one: Paused"
    status = json.loads(
        run([*PROVISOR, "status", "--job", str(job), "--json"], stdin=subprocess.DEVNULL).stdout
    )
    assert status["status"] == "Paused" and status["users"] == 6
    assert status["next_cycle"] is None and status["next_cycle_reason"] == "paused"  # none until resumed
    # what uses the secrets still needs them, and says which
    p = run([*PROVISOR, "sync", "--job", str(job), "--once"], stdin=subprocess.DEVNULL)
    assert p.returncode == 1 and "${DIRECTORY_TOKEN} is not set in the environment" in p.stderr
    # the state's own place must be set: it is where the commands read and write
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text(
        job.read_text().replace("state: sqlite:///clarizen-one.state.db", "state: ${STATE_DB}")
    )
    p = run([*PROVISOR, "status", "--job", str(elsewhere)], stdin=subprocess.DEVNULL)
    assert (
        p.returncode == 1 and ":17:" in p.stderr and "${STATE_DB} is not set in the environment" in p.stderr
    ), p.stderr
    assert not list(tmp_path.glob("*STATE_DB*"))
