"""The runner lease (cli/lease.py): one process at a time runs a job's cycles.

Against real SQLite state files and real ``provisor run`` / ``sync`` processes: a second ``run``
waits as a standby and takes over when the first stops, ``sync`` beside a running service exits
75 with a message, and a process stopped (Ctrl-Z) past its lease finds the job taken over and
stops. (A killed holder's lease running out is in tests/engine/test_interop_and_crash.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.cli.test_service import JOB, PROVISOR, Service, directory_with, finished, services, wait_until  # noqa: F401

from provisor.cli.lease import LEASE_SECONDS, JobLease, lease_seconds, owner_name
from provisor.engine.state import RunnerLease
from provisor.store.sql.engine_state import SqlEngineState


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'j.state.db'}"


def test_a_held_lease_is_renewed_until_released(url: str) -> None:
    mine, theirs = SqlEngineState(url), SqlEngineState(url)  # two processes' connections
    try:
        lease = JobLease(mine, "j", owner_name("run"), seconds=1.0)
        assert lease.acquire().owner == lease.owner and lease.held
        other = JobLease(theirs, "j", owner_name("sync"), seconds=1.0)
        first = other.acquire()  # refused: shows the holder's lease
        assert first.owner == lease.owner and not other.held
        for _ in range(3):  # three lease lengths: renewed all along
            time.sleep(1.0)
            holder = other.acquire()
            assert holder.owner == lease.owner and not other.held
        assert holder.expires > first.expires
        lease.release()
        assert not lease.held
        assert other.acquire().owner == other.owner and other.held
        other.release()
    finally:
        mine.close()
        theirs.close()


def test_a_holder_that_could_not_renew_learns_it_lost_the_job(url: str) -> None:
    state = SqlEngineState(url)
    try:
        lease = JobLease(state, "j", "stalled", seconds=0.4)
        lost: list[RunnerLease] = []
        called = threading.Event()
        lease.on_lost = lambda holder: (lost.append(holder), called.set())  # type: ignore[func-returns-value]
        lease.acquire()
        # another process takes the job as if this one had not renewed for longer than the lease
        later = datetime.now(UTC) + timedelta(seconds=5)
        taken = state.acquire_lease("j", "other", now=later, expires=later + timedelta(seconds=60))
        assert taken.owner == "other"
        assert called.wait(5)
        assert lost == [taken] and lease.lost == taken and not lease.held
        lease.release()  # leaves the other's lease alone
        assert state.acquire_lease("j", "third", now=later, expires=later).owner == "other"
    finally:
        state.close()


def test_lease_seconds_from_the_environment() -> None:
    assert lease_seconds({}) == LEASE_SECONDS == 60.0
    assert lease_seconds({"PROVISOR_LEASE_SECONDS": " 2.5 "}) == 2.5
    for bad in ("0", "soon", "4000", "-1"):
        with pytest.raises(ValueError, match="PROVISOR_LEASE_SECONDS"):
            lease_seconds({"PROVISOR_LEASE_SECONDS": bad})


def test_owner_names_say_who_and_are_unique() -> None:
    a, b = owner_name("run"), owner_name("run")
    assert a != b and a.startswith(f"provisor run (pid {os.getpid()} on ")


# -- real processes ------------------------------------------------------------------------------


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PROVISOR, *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
    )


def sync(job: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return cli("sync", "--job", str(job), "--once", env=env)


def runner(job: Path, env: dict[str, str]) -> object:
    """``provisor status --json``'s ``runner``."""
    import json

    out = cli("status", "--job", str(job), "--json", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)["runner"]


def overlapping(cycles: list) -> bool:  # type: ignore[type-arg]
    spans = sorted((c.started, c.finished or datetime.max.replace(tzinfo=UTC)) for c in cycles)
    return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


def test_two_services_on_one_job_run_one_at_a_time(live, tmp_path: Path, services) -> None:  # noqa: F811
    _, _, env = directory_with(live, 30)
    env = {**env, "PROVISOR_LEASE_SECONDS": "4"}
    job = tmp_path / "two.yaml"
    job.write_text(JOB.format(name="two", source=live.base, target=live.base))
    state = SqlEngineState(f"sqlite:///{tmp_path / 'two.state.db'}")
    try:
        first, second = Service(job, env, "--interval", "2s"), Service(job, env, "--interval", "2s")
        services.extend([first, second])

        def waiting(service: Service) -> bool:
            return "two is being run by provisor run every 2 seconds (pid" in service.stdout()

        wait_until(lambda: waiting(first) or waiting(second), "one service to wait for the other")
        holder, standby = (second, first) if waiting(first) else (first, second)
        assert f"(pid {holder.proc.pid} on " in standby.stdout()
        shown = runner(job, env)  # provisor status names the process running the job
        assert (
            isinstance(shown, dict) and f"run every 2 seconds (pid {holder.proc.pid} on " in shown["owner"]
        ), shown
        wait_until(lambda: len(finished(state, "two")) >= 3, "three cycles", proc=holder.proc)
        assert standby.proc.poll() is None and "resumes" not in standby.stdout()
        assert not overlapping(state.cycles("two", limit=100))

        # a sync beside the running service: refused with a clear message, exit 75
        busy = sync(job, env)
        assert busy.returncode == 75, busy.stdout + busy.stderr
        assert (
            f"job two is being run by provisor run every 2 seconds (pid {holder.proc.pid} on " in busy.stderr
        )
        assert "Traceback" not in busy.stderr

        # the holder stops: the standby takes over and runs the cycles
        count = len(state.cycles("two", limit=100))
        assert holder.stop(signal.SIGTERM) == 0, holder.stderr()
        standby.wait_for_output("two is free; this process runs it now", timeout=30)
        wait_until(
            lambda: len(finished(state, "two")) >= count + 2, "the standby's cycles", proc=standby.proc
        )
        assert not overlapping(state.cycles("two", limit=100))
        assert standby.stop(signal.SIGTERM) == 0, standby.stderr()
        assert "Traceback" not in standby.stderr() + holder.stderr()

        # both stopped: the lease was given up, a sync runs at once
        assert runner(job, env) is None
        done = sync(job, env)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        state.close()


def test_a_service_stopped_past_its_lease_finds_the_job_taken_over(live, tmp_path: Path, services) -> None:  # noqa: F811
    """Ctrl-Z on ``provisor run`` between two cycles, for longer than its lease: another process
    takes the job; when the service continues, it notices at once and stops (exit 1). (Stopped in
    the middle of a batch, it would hold SQLite's write lock: nobody could take the job then.)"""
    _, _, env = directory_with(live, 5)
    env = {**env, "PROVISOR_LEASE_SECONDS": "2"}
    job = tmp_path / "susp.yaml"
    job.write_text(JOB.format(name="susp", source=live.base, target=live.base))
    state = SqlEngineState(f"sqlite:///{tmp_path / 'susp.state.db'}")
    try:
        run = Service(job, env, "--interval", "1h")
        services.append(run)
        run.wait_for_output("next cycle at")
        run.proc.send_signal(signal.SIGSTOP)  # Ctrl-Z
        time.sleep(3)  # longer than its lease
        taker = JobLease(state, "susp", "an admin's process", seconds=30)
        assert taker.acquire().owner == "an admin's process"
        run.proc.send_signal(signal.SIGCONT)  # fg: it must notice and stop
        assert run.proc.wait(timeout=30) == 1, run.stdout() + run.stderr()
        taker.release()
        err = run.stderr()
        assert "job susp was taken over by an admin's process" in err and "Traceback" not in err
        assert "job susp stopped" in run.stdout()
        assert [c.result for c in state.cycles("susp")] == ["Succeeded"]
    finally:
        state.close()
