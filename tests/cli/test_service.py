"""``provisor run`` as a service, for real: a subprocess against a live server on loopback.

Cycles on the interval (the second incremental), pause and resume from another shell, SIGTERM and
SIGINT while waiting and in the middle of a cycle (exit 0, committed work kept, the next run
resumes), and a quarantined job that waits for its retry schedule instead of hammering the target.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.conftest import GROUP, PATCH_OP, create_user

from provisor.cli.service import parse_interval, poll_seconds
from provisor.engine.state import CycleKind, JobStateChange, JobStatus, LogQuery
from provisor.store.sql.engine_state import SqlEngineState

PROVISOR = [sys.executable, "-m", "provisor.cli.main"]
JOB = """name: {name}
source:
  type: scim
  url: {source}
  token: ${{DIRECTORY_TOKEN}}
target:
  url: {target}
  token: ${{APP_TOKEN}}
template: scim-default
scope:
  mode: assigned
  assignments:
    - group: Everyone
      role: User
state: sqlite:///{name}.state.db
"""


def provisor(*args, env):
    p = subprocess.run(
        [*PROVISOR, *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def wait_until(condition, what, timeout=60.0, proc=None):
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None:
            assert proc.poll() is None, f"provisor run exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Service:
    """``provisor run --job FILE ...`` in the background; stdout and stderr go to files."""

    def __init__(self, job: Path, env: dict[str, str], *args: str) -> None:
        number = len(list(job.parent.glob("run-*.out")))
        self.out = job.parent / f"run-{number}.out"
        self.err = job.parent / f"run-{number}.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [*PROVISOR, "run", "--job", str(job), *args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **env},
            )

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()

    def wait_for_output(self, text: str, timeout: float = 60.0) -> None:
        wait_until(lambda: text in self.stdout(), repr(text), timeout, self.proc)

    def stop(self, signum: int) -> int:
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


@pytest.fixture
def services():
    started: list[Service] = []
    yield started
    for service in started:
        service.kill()


def directory_with(live, n):
    _, dir_token = live.new_tenant()
    _, app_token = live.new_tenant()
    directory = live.client(dir_token)
    users = [
        create_user(
            directory,
            f"u{i:04d}@example.com",
            displayName=f"User {i}",
            emails=[{"type": "work", "value": f"u{i:04d}@example.com"}],
        )
        for i in range(n)
    ]
    r = directory.post(
        "/Groups",
        json={"schemas": [GROUP], "displayName": "Everyone", "members": [{"value": u["id"]} for u in users]},
    )
    assert r.status_code == 201, r.text
    return directory, users, {"DIRECTORY_TOKEN": dir_token, "APP_TOKEN": app_token}


def rename(client, user_id, display):
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": display}]}
    r = client.patch(f"/Users/{user_id}", json=body)
    assert r.status_code in (200, 204), r.text


def app_user(app, user_name):
    found = app.get("/Users", params={"filter": f'userName eq "{user_name}"'}).json()["Resources"]
    return found[0] if found else None


def finished(state, name):
    return [c for c in state.cycles(name, limit=100) if c.finished is not None]


def test_cycles_on_the_interval_pause_resume_and_sigint(live, tmp_path, services):
    directory, users, env = directory_with(live, 6)
    app = live.client(env["APP_TOKEN"])
    job = tmp_path / "svc.yaml"
    job.write_text(JOB.format(name="svc", source=live.base, target=live.base))
    state = SqlEngineState(f"sqlite:///{tmp_path / 'svc.state.db'}")
    try:
        run = Service(job, env, "--interval", "1s")
        services.append(run)
        run.wait_for_output("running job svc every 1 second;")

        # the first cycle: initial, everyone created
        wait_until(lambda: finished(state, "svc"), "the initial cycle", proc=run.proc)
        (initial,) = finished(state, "svc")
        assert initial.kind is CycleKind.INITIAL and initial.result == "Succeeded"
        assert app.get("/Users", params={"count": 0}).json()["totalResults"] == 6

        # a change in the source is picked up by a later, incremental cycle
        rename(directory, users[0]["id"], "Renamed Zero")
        wait_until(
            lambda: app_user(app, "u0000@example.com")["displayName"] == "Renamed Zero",
            "the rename to reach the app",
            proc=run.proc,
        )
        # the app has the change before the cycle that made it commits its log record (with the
        # rest of its batch, at the end of the phase) and before it records its end
        renamed = LogQuery(anchor=users[0]["id"], action="Update")
        wait_until(lambda: list(state.logs("svc", renamed)), "the rename's log record", proc=run.proc)
        (update,) = state.logs("svc", renamed)
        wait_until(
            lambda: update.cycle in {c.id for c in finished(state, "svc")}, "the cycle's end", proc=run.proc
        )
        by_id = {c.id: c for c in state.cycles("svc", limit=100)}
        assert by_id[update.cycle].kind is CycleKind.INCREMENTAL
        assert by_id[update.cycle].result == "Succeeded"

        # paused between two cycles (a pause made while a cycle runs stands too; see
        # tests/engine/test_cycle_concurrency.py): no more cycles, but the process keeps waiting
        count = len(finished(state, "svc"))
        wait_until(lambda: len(finished(state, "svc")) > count, "another cycle", proc=run.proc)
        state.update_job_state("svc", JobStateChange(status=JobStatus.PAUSED))
        run.wait_for_output("svc is paused", timeout=10)
        before = len(finished(state, "svc"))
        rename(directory, users[1]["id"], "Renamed One")
        time.sleep(2.5)  # two and a half intervals
        assert run.proc.poll() is None
        assert len(finished(state, "svc")) == before
        assert len(state.cycles("svc", limit=100)) == before  # none started either
        assert app_user(app, "u0001@example.com")["displayName"] == "User 1"

        # resumed: the next cycle comes and carries the change made while paused
        provisor("resume", "--job", str(job), env=env)
        wait_until(
            lambda: app_user(app, "u0001@example.com")["displayName"] == "Renamed One",
            "the change made while paused",
            proc=run.proc,
        )

        # the interval separates the cycles: none starts within a second of the last one's end
        cycles = sorted(finished(state, "svc"), key=lambda c: c.started)
        for earlier, later in zip(cycles, cycles[1:], strict=False):
            assert later.started - earlier.finished >= timedelta(seconds=0.95), (earlier, later)

        # Ctrl-C while waiting: exit 0, no traceback, nothing left half-done
        assert run.stop(signal.SIGINT) == 0, run.stderr()
        assert "Traceback" not in run.stderr() and "Traceback" not in run.stdout()
        assert "SIGINT: stopping" in run.stdout() and "job svc stopped" in run.stdout()
        assert all(c.finished is not None for c in state.cycles("svc", limit=100))
    finally:
        state.close()


def test_a_restart_while_the_service_waits_runs_the_initial_cycle_at_once(live, tmp_path, services):
    """``provisor restart`` from another shell: the waiting service notices it at its next look
    at the job's state (a quarter interval) and runs the initial cycle then, not an interval
    after its last cycle."""
    _, _, env = directory_with(live, 3)
    job = tmp_path / "rs.yaml"
    job.write_text(JOB.format(name="rs", source=live.base, target=live.base))
    state = SqlEngineState(f"sqlite:///{tmp_path / 'rs.state.db'}")
    try:
        run = Service(job, env, "--interval", "40s")  # looks at the job's state every 10 s
        services.append(run)
        wait_until(lambda: finished(state, "rs"), "the initial cycle", proc=run.proc)
        run.wait_for_output("next cycle at")
        provisor("restart", "--job", str(job), "--scope", "Watermark", env=env)
        restarted = time.monotonic()
        wait_until(lambda: len(finished(state, "rs")) == 2, "the restart's cycle", timeout=30, proc=run.proc)
        assert time.monotonic() - restarted < 25  # not the 40 s interval
        newest = max(finished(state, "rs"), key=lambda c: c.started)
        assert newest.kind is CycleKind.INITIAL and newest.result == "Succeeded"
        assert "rs was restarted; an initial cycle runs now" in run.stdout()
        assert run.stop(signal.SIGTERM) == 0, run.stderr()
    finally:
        state.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_cycle_stops_cleanly_and_the_next_run_resumes(live, tmp_path, services, signum):
    directory, users, env = directory_with(live, 250)
    app = live.client(env["APP_TOKEN"])
    job = tmp_path / "big.yaml"
    job.write_text(JOB.format(name="big", source=live.base, target=live.base))
    state = SqlEngineState(f"sqlite:///{tmp_path / 'big.state.db'}")
    try:
        run = Service(job, env, "--interval", "1h")
        services.append(run)

        def created():
            return app.get("/Users", params={"count": 0}).json()["totalResults"]

        wait_until(lambda: created() >= 40, "the cycle to create some users", proc=run.proc)
        assert not finished(state, "big"), "the cycle finished before the signal; raise the user count"
        assert run.stop(signum) == 0, run.stderr()
        err, out = run.stderr(), run.stdout()
        assert "Traceback" not in err and "Traceback" not in out, err
        assert f"{signal.Signals(signum).name}: stopping; interrupting the running cycle" in out
        assert "cycle interrupted" in out

        # the cycle's committed work is kept and its record closed as Interrupted
        (cycle,) = state.cycles("big")
        assert cycle.kind is CycleKind.INITIAL and cycle.result == "Interrupted"
        assert cycle.finished is not None
        partial = created()
        assert 40 <= partial < 250
        logged = len(list(state.logs("big", LogQuery(action="Create"))))
        assert 0 < logged <= partial  # the last, uncommitted batch may be missing
        assert state.job_state("big").watermark is None  # the initial cycle is still to complete

        # the next run resumes at once: everyone exactly once, the group complete
        again = Service(job, env, "--interval", "1h")
        services.append(again)
        again.wait_for_output("the last cycle did not finish; this one resumes its work")
        wait_until(lambda: len(finished(state, "big")) == 2, "the resumed cycle", proc=again.proc)
        newest = state.cycles("big", limit=1)[0]
        assert newest.kind is CycleKind.INITIAL and newest.result == "Succeeded", newest
        again.wait_for_output("next cycle at")
        assert again.stop(signal.SIGTERM) == 0, again.stderr()
        names = Counter(u["userName"] for u in app.get("/Users", params={"count": 1000}).json()["Resources"])
        assert len(names) == 250 and max(names.values()) == 1  # nothing skipped, nothing duplicated
        group = app.get("/Groups").json()["Resources"]
        assert len(group) == 1 and len(group[0]["members"]) == 250
        assert state.job_state("big").watermark is not None
    finally:
        state.close()


class RefusingTarget:
    """A SCIM target on loopback that answers every request 401 and counts them."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _refuse(self) -> None:
                outer.requests.append(f"{self.command} {self.path}")
                body = json.dumps(
                    {
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                        "status": "401",
                        "detail": "invalid token",
                    }
                ).encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/scim+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _refuse

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/scim/v2"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_quarantined_job_waits_for_its_retry_schedule(live, tmp_path, services):
    _, _, env = directory_with(live, 2)
    target = RefusingTarget()
    job = tmp_path / "q.yaml"
    job.write_text(JOB.format(name="q", source=live.base, target=target.url))
    state = SqlEngineState(f"sqlite:///{tmp_path / 'q.state.db'}")
    try:
        run = Service(job, env, "--interval", "1s")
        services.append(run)
        wait_until(lambda: state.job_state("q").status is JobStatus.QUARANTINE, "quarantine", proc=run.proc)
        run.wait_for_output("q is in quarantine (EncounteredQuarantineException); next attempt at")
        first = state.job_state("q").quarantine
        assert first is not None and first.series_count == 1
        assert abs(first.next_attempt - datetime.now(UTC) - timedelta(hours=6)) < timedelta(minutes=1)
        refused = len(target.requests)
        assert refused >= 1

        # three intervals later: not one more request, and the process still waits
        time.sleep(3)
        assert len(target.requests) == refused
        assert run.proc.poll() is None and state.job_state("q").status is JobStatus.QUARANTINE

        # the next attempt comes due (as six hours would): one retry, then 12 h of quiet
        state.save_job_state(
            replace(state.job_state("q"), quarantine=replace(first, next_attempt=datetime.now(UTC)))
        )
        wait_until(
            lambda: (q := state.job_state("q").quarantine) is not None and q.series_count == 2,
            "the retry",
            proc=run.proc,
        )
        second = state.job_state("q").quarantine
        assert second is not None and second.series_began == first.series_began
        assert abs(second.next_attempt - datetime.now(UTC) - timedelta(hours=12)) < timedelta(minutes=1)
        retried = len(target.requests)
        assert retried > refused
        time.sleep(2)
        assert len(target.requests) == retried
        assert "Test Connection failed" in run.stderr()

        assert run.stop(signal.SIGTERM) == 0, run.stderr()
        assert "Traceback" not in run.stderr()
        assert "SIGTERM: stopping" in run.stdout()
    finally:
        target.close()
        state.close()


def test_interval_option_is_validated(tmp_path):
    job = tmp_path / "x.yaml"
    job.write_text(
        JOB.format(name="x", source="http://127.0.0.1:1/scim/v2", target="http://127.0.0.1:1/scim/v2")
    )
    for bad in ("soon", "0s", "8d", "30x"):
        p = subprocess.run(
            [*PROVISOR, "run", "--job", str(job), "--interval", bad],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "DIRECTORY_TOKEN": "d", "APP_TOKEN": "a"},
        )
        assert p.returncode == 2 and "--interval" in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_parse_interval_and_poll():
    assert parse_interval("90s") == timedelta(seconds=90)
    assert parse_interval("5m") == parse_interval("5") == timedelta(minutes=5)
    assert parse_interval(" 1h ") == timedelta(hours=1)
    assert parse_interval("0.5m") == timedelta(seconds=30)
    for bad in ("", "m", "-1s", "0.5s", "1d", "169h"):
        with pytest.raises(ValueError, match="--interval"):
            parse_interval(bad)
    assert poll_seconds(timedelta(seconds=1)) == 0.25
    assert poll_seconds(timedelta(minutes=40)) == 30.0
