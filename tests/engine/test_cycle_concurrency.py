"""A cycle beside other writers and its own tasks, for real: SQLite files, other processes.

* the end of a cycle leaves a pause written by ``provisor pause`` while it ran (it sets only the
  fields it owns, ``EngineState.update_job_state``);
* the group commit of a cycle (``cycle._Commits``) lets another process write while it runs:
  a batch holds the write lock for a bounded time, then leaves a gap;
* ``Cycle._each`` cancels and awaits its running tasks when one fails or it is cancelled.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.engine.test_cycle import person, run_cycle, world  # noqa: F401

from provisor.engine.cycle import Cycle
from provisor.engine.jobs import parse_job
from provisor.engine.mapping import EvalContext
from provisor.engine.memory_state import MemoryEngineState
from provisor.engine.model import ObjectKind
from provisor.engine.state import CycleKind, EngineState, JobStatus, ObjectConnection
from provisor.engine.state_contract import record
from provisor.engine.templates import template_for
from provisor.store.sql.engine_state import SqlEngineState

PROVISOR = [sys.executable, "-m", "provisor.cli.main"]
JOB_FILE = """name: {name}
source:
  type: scim
  url: http://127.0.0.1:9/scim/v2
  token: ${{DIRECTORY_TOKEN}}
target:
  url: http://127.0.0.1:9/scim/v2
  token: ${{APP_TOKEN}}
template: scim-default
scope:
  mode: all
state: sqlite:///{name}.state.db
"""
ENV = {"DIRECTORY_TOKEN": "d", "APP_TOKEN": "a"}


def provisor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PROVISOR, *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **ENV},
    )


def job_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(JOB_FILE.format(name=name))
    return path


# -- the end of a cycle and an admin command -------------------------------------------------------


class PauseAtTheEnd(SqlEngineState):
    """The job's state file; once the cycle's record is closed, ``provisor pause`` runs in another
    process just before the next read or write of the job's state: the moment a cycle that writes
    its whole job state back would undo it."""

    def __init__(self, url: str, job: Path) -> None:
        super().__init__(url)
        self.job = job
        self.armed = False
        self.paused: subprocess.CompletedProcess[str] | None = None

    def finish_cycle(self, cycle: Any) -> None:
        super().finish_cycle(cycle)
        self.armed = True

    def _pause_once(self) -> None:
        if self.armed and self.paused is None:
            self.paused = provisor("pause", "--job", str(self.job))

    def job_state(self, job: str) -> Any:
        state = super().job_state(job)
        self._pause_once()  # read before the pause: a stale copy
        return state

    def update_job_state(self, job: str, change: Any) -> Any:
        self._pause_once()
        return super().update_job_state(job, change)


def test_a_pause_made_as_the_cycle_ends_stands(world, tmp_path: Path) -> None:  # noqa: F811
    job, directory, _ = world
    person(directory, "ada@example.com")
    path = tmp_path / "clarizen-one.yaml"
    path.write_text(JOB_FILE.format(name=job.name))
    state = PauseAtTheEnd(f"sqlite:///{tmp_path / f'{job.name}.state.db'}", path)
    try:
        report = run_cycle(job, state)
        assert report.result == "Succeeded", report
        assert state.paused is not None and state.paused.returncode == 0, state.paused
        after = state.job_state(job.name)
        assert after.status is JobStatus.PAUSED  # the admin's pause stands
        assert after.watermark is not None and after.last_cycle == report.cycle  # the cycle's fields too
    finally:
        state.close()


class RestartAtTheEnd(PauseAtTheEnd):
    """As ``PauseAtTheEnd``, with ``provisor restart --scope Watermark`` as the admin's command."""

    def _pause_once(self) -> None:
        if self.armed and self.paused is None:
            self.paused = provisor("restart", "--job", str(self.job), "--scope", "Watermark")


def test_a_restart_made_as_an_incremental_cycle_ends_stands(world, tmp_path: Path) -> None:  # noqa: F811
    """2.10: the cycle's new watermark does not undo the restart; the next cycle is an initial one."""
    job, directory, _ = world
    person(directory, "ada@example.com")
    path = tmp_path / "clarizen-one.yaml"
    path.write_text(JOB_FILE.format(name=job.name))
    url = f"sqlite:///{tmp_path / f'{job.name}.state.db'}"
    first = SqlEngineState(url)
    try:
        assert run_cycle(job, first).kind is CycleKind.INITIAL
    finally:
        first.close()
    state = RestartAtTheEnd(url, path)
    try:
        report = run_cycle(job, state)
        assert report.kind is CycleKind.INCREMENTAL and report.result == "Succeeded", report
        assert state.paused is not None and state.paused.returncode == 0, state.paused
        after = state.job_state(job.name)
        assert after.watermark is None  # the restart stands
        assert after.last_cycle == report.cycle and after.status is JobStatus.ACTIVE
        state.armed = False
        assert run_cycle(job, state).kind is CycleKind.INITIAL
        assert state.job_state(job.name).watermark is not None
    finally:
        state.close()


# -- group commit and another process's writes -----------------------------------------------------


def cycle_over(state: EngineState, concurrency: int = 8) -> Cycle:
    """A cycle whose ``_each`` can be driven directly (its source and target are never used)."""
    job = parse_job(JOB_FILE.format(name="j"), ENV, source_name="j.yaml")
    clock = lambda: datetime.now(UTC)  # noqa: E731
    ctx = EvalContext(clock=clock, random=random.Random(1))
    return Cycle(
        job,
        template_for("scim-default"),
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        state,
        clock=clock,
        ctx=ctx,
        concurrency=concurrency,
    )


class BatchLoop:
    """``Cycle._each`` in a thread of its own over an endless stream of objects, each a short wait
    (a target's answer) and the writes of a provisioned object, until :meth:`stop`."""

    def __init__(self, state: SqlEngineState) -> None:
        self.state = state
        self.done = 0
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _items(self) -> Iterator[int]:
        i = 0
        while not self._stop.is_set():
            i += 1
            yield i

    async def _work(self, i: int) -> None:
        await asyncio.sleep(0.005)
        self.state.save_connection("j", ObjectConnection(ObjectKind.USER, f"u{i:07d}", f"t{i}", "U"))
        self.state.append_log("j", record(f"u{i:07d}"))
        self.done += 1

    def _run(self) -> None:
        try:
            asyncio.run(cycle_over(self.state)._each(self._items(), self._work))
        except BaseException as exc:  # pragma: no cover - reported by stop()
            self._error = exc

    def __enter__(self) -> BatchLoop:
        self._thread.start()
        deadline = time.monotonic() + 10
        while self.done < 500:  # batches are being committed
            assert time.monotonic() < deadline and self._thread.is_alive(), "the batch loop did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive()
        if self._error is not None:
            raise self._error


WRITER = textwrap.dedent(
    """
    import sys, time
    from provisor.engine.state import JobStateChange
    from provisor.store.sql.engine_state import SqlEngineState

    state = SqlEngineState(sys.argv[1])  # the default busy timeout (5 s)
    for i in range(int(sys.argv[2])):
        began = time.monotonic()
        state.update_job_state("j", JobStateChange(watermark=f"w{i}"))
        print(f"{time.monotonic() - began:.3f}", flush=True)
        time.sleep(0.05)
    state.close()
    """
)


def test_another_process_writes_while_a_cycle_commits_batches(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'j.state.db'}"
    state = SqlEngineState(url)
    try:
        with BatchLoop(state) as loop:
            before = loop.done
            writer = subprocess.run(
                [sys.executable, "-c", WRITER, url, "8"], capture_output=True, text=True, timeout=120
            )
            assert writer.returncode == 0, writer.stderr  # "database is locked" before the fix
            waits = [float(w) for w in writer.stdout.split()]
            assert len(waits) == 8 and max(waits) < 2.5, waits
            assert loop.done > before + 100  # the cycle went on meanwhile
        assert state.job_state("j").watermark == "w7"
        assert state.count_connections("j", ObjectKind.USER) == loop.done  # every batch committed
    finally:
        state.close()


def test_provisor_pause_succeeds_while_a_cycle_commits_batches(tmp_path: Path) -> None:
    path = job_file(tmp_path, "j")
    state = SqlEngineState(f"sqlite:///{tmp_path / 'j.state.db'}")
    try:
        with BatchLoop(state):
            for command in ("pause", "resume", "pause"):
                began = time.monotonic()
                done = provisor(command, "--job", str(path))
                assert done.returncode == 0, done.stderr
                assert time.monotonic() - began < 20
        assert state.job_state("j").status is JobStatus.PAUSED
    finally:
        state.close()


def test_a_batch_is_committed_on_time_while_every_object_waits(tmp_path: Path) -> None:
    """No object finishes for a while (a slow target): the open batch is committed on time anyway,
    so its writes are visible (and the lock free) long before the objects finish."""
    url = f"sqlite:///{tmp_path / 'j.state.db'}"
    state, reader = SqlEngineState(url), SqlEngineState(url)
    seen: list[int] = []

    async def work(i: int) -> None:
        state.append_log("j", record(f"a{i}"))
        await asyncio.sleep(3)

    async def main() -> None:
        task = asyncio.create_task(cycle_over(state, concurrency=4)._each(iter(range(4)), work))
        await asyncio.sleep(1.5)
        seen.append(len(list(reader.logs("j", _all()))))
        await task

    try:
        asyncio.run(main())
        assert seen == [4]
    finally:
        state.close()
        reader.close()


def _all() -> Any:
    from provisor.engine.state import LogQuery

    return LogQuery()


# -- _each and its tasks -------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.started: list[int] = []
        self.cancelled: list[int] = []
        self.finished: list[int] = []

    async def work(self, i: int) -> None:
        self.started.append(i)
        try:
            if i == 3:
                await asyncio.sleep(0.05)
                raise RuntimeError("target down")
            await asyncio.sleep(30)
            self.finished.append(i)
        except asyncio.CancelledError:
            await asyncio.sleep(0.01)  # cleaning up takes a moment
            self.cancelled.append(i)
            raise


def test_each_cancels_and_awaits_its_tasks_when_one_fails() -> None:
    rec = Recorder()

    async def main() -> set[asyncio.Task[Any]]:
        with pytest.raises(RuntimeError, match="target down"):
            await cycle_over(MemoryEngineState(), concurrency=8)._each(iter(range(20)), rec.work)
        return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]

    began = time.monotonic()
    left = asyncio.run(main())
    assert time.monotonic() - began < 5
    assert left == set()  # nothing left running behind the failure
    assert rec.started == list(range(8)) and sorted(rec.cancelled) == [0, 1, 2, 4, 5, 6, 7]
    assert rec.finished == []


def test_each_cancels_and_awaits_its_tasks_when_cancelled() -> None:
    rec = Recorder()

    async def main() -> set[asyncio.Task[Any]]:
        cycle = cycle_over(MemoryEngineState(), concurrency=4)
        task = asyncio.create_task(cycle._each(iter([0, 1, 2, 4, 5, 6]), rec.work))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sorted(rec.cancelled) == [0, 1, 2, 4]  # awaited before the cancellation came out
        return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]

    assert asyncio.run(main()) == set()
    assert rec.started == [0, 1, 2, 4] and rec.finished == []
