"""``provisor run``: a job as a long-running service (entra-behaviour.md 2.1, 2.5, 2.9).

A cycle runs when :func:`provisor.engine.schedule.next_cycle` says it is due: at start (unless
an earlier process finished a cycle less than an interval ago), then an interval after each
attempt; a paused job runs none until it is resumed, a quarantined one waits for the quarantine's
next attempt (6 h, 12 h, then daily) instead of the interval. While it waits the process re-reads
the job's state every quarter interval (at most every 30 s), so ``provisor pause``, ``resume``,
``restart`` and ``allow-deletes`` from another shell take effect without restarting it. An error
in one cycle (the source or the target unreachable) is reported on stderr and the next cycle
comes an interval later.

SIGTERM and SIGINT (Ctrl-C) stop it with exit status 0: while waiting at once; during a cycle
the cycle is cancelled - what it committed stays, its record says ``Interrupted`` and the next
run resumes it at once. A second signal while stopping exits immediately (status 128 + signal
number); committed work is kept then too.

One process at a time runs a job (the runner lease, ``cli/lease.py``): the service holds the lease
for as long as it runs. A second ``provisor run`` of the job waits as a standby, says who holds
the job, and takes over when that process stops or dies (its lease runs out, 60 s after its last
renewal by default). A service whose lease was taken over while it could not renew it (stopped
with Ctrl-Z, a suspended host) stops at once with exit status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

import typer

from provisor.cli.engine import JobCannotRun, LoadedJob, run_cycle, utc_now
from provisor.cli.jobs import ProgressDisplay, expected_total, summary
from provisor.cli.lease import LEASE_SECONDS, JobLease, owner_name, until
from provisor.engine import schedule
from provisor.engine.cycle import CycleReport
from provisor.engine.model import SourceError
from provisor.engine.state import JobState, RunnerLease
from provisor.engine.targets import TargetError

__all__ = ["MAX_POLL_SECONDS", "JobService", "parse_interval", "poll_seconds"]

#: The longest the service sleeps before it looks at the job's state again.
MAX_POLL_SECONDS: Final = 30.0
_UNITS: Final = {"s": 1, "m": 60, "h": 3600}
_INTERVAL = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*")
_MAX_INTERVAL: Final = timedelta(days=7)


def parse_interval(text: str) -> timedelta:
    """``--interval``: ``90s``, ``5m``, ``1h`` or a bare number of minutes; 1 s to 7 days.

    :raises ValueError: with a message for the admin.
    """
    found = _INTERVAL.fullmatch(text)
    if found is None:
        raise ValueError(f"--interval takes a duration such as 30s, 5m or 1h, not {text!r}")
    every = timedelta(seconds=float(found[1]) * _UNITS[found[2] or "m"])
    if not timedelta(seconds=1) <= every <= _MAX_INTERVAL:
        raise ValueError(f"--interval must be between 1s and 7 days, not {text!r}")
    return every


def poll_seconds(interval: timedelta) -> float:
    """How often a waiting service re-reads the job's state: a quarter interval, at most 30 s."""
    return min(MAX_POLL_SECONDS, max(0.05, interval.total_seconds() / 4))


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _every(interval: timedelta) -> str:
    seconds = interval.total_seconds()
    if seconds % 60 or seconds < 60:
        return f"{seconds:g} second{'s' if seconds != 1 else ''}"
    minutes = int(seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class JobService:
    """Runs ``loaded``'s cycles on ``interval`` until :meth:`stop` (SIGTERM, SIGINT)."""

    def __init__(
        self,
        loaded: LoadedJob,
        *,
        interval: timedelta,
        clock: Callable[[], datetime] = utc_now,
        say: Callable[[str], None] = typer.echo,
        warn: Callable[[str], None] = lambda line: typer.echo(line, err=True),
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.loaded = loaded
        self.interval = interval
        self.clock = clock
        self.say = say
        self.warn = warn
        self.poll = poll_seconds(interval)
        self._stopping: asyncio.Event | None = None
        self._cycle: asyncio.Task[tuple[CycleReport | None, JobState]] | None = None
        self._signals = 0
        owner = owner_name(f"run every {_every(interval)}")  # as `provisor status` shows the runner
        self.lease = JobLease(loaded.state, loaded.job.name, owner, seconds=lease_seconds)
        #: The process's exit status once :meth:`run` returns (1: the job was taken over).
        self.exit_status = 0

    async def run(self) -> None:
        """Serve until stopped; SIGTERM and SIGINT stop it (see the module docstring)."""
        self._stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:  # the loop removes its handlers when it closes
                loop.add_signal_handler(signum, self.stop, signum)
            except NotImplementedError:  # pragma: no cover - not on Unix
                signal.signal(signum, lambda s, _f: loop.call_soon_threadsafe(self.stop, s))
        job = self.loaded.job
        self.say(
            f"provisor: running job {job.name} every {_every(self.interval)}; SIGTERM or Ctrl-C stops it"
        )
        if await self._take_lease():
            try:
                await self._serve()
            finally:
                self.lease.release()
        self.say(f"provisor: job {job.name} stopped")

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop serving: at once while waiting, by cancelling the cycle while one runs."""
        name = signal.Signals(signum).name
        self._signals += 1
        if self._signals > 1:
            self.warn(f"provisor: {name} again: stopping now")
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(128 + signum)
        cycle = self._cycle
        if cycle is not None and not cycle.done():
            self.say(f"provisor: {name}: stopping; interrupting the running cycle")
            cycle.cancel()
        else:
            self.say(f"provisor: {name}: stopping")
        if self._stopping is not None:
            self._stopping.set()

    async def _take_lease(self) -> bool:
        """Hold the job's runner lease, waiting while another process does (False: stopped)."""
        assert self._stopping is not None
        loop = asyncio.get_running_loop()

        def lost(holder: RunnerLease) -> None:  # on the lease's thread
            loop.call_soon_threadsafe(self._lost, holder)

        self.lease.on_lost = lost
        name = self.loaded.job.name
        shown: str | None = None
        while not self._stopping.is_set():
            try:
                holder = self.lease.acquire()
            except Exception as exc:  # e.g. a locked database: try again shortly
                self.warn(f"provisor: cannot read the job's runner lease: {type(exc).__name__}: {exc}")
            else:
                if self.lease.held:
                    if shown is not None:
                        self.say(f"provisor: job {name} is free; this process runs it now")
                    return True
                if holder.owner != shown:
                    shown = holder.owner
                    self.say(
                        f"provisor: job {name} is being run by {holder.owner}; waiting to take over "
                        f"when it stops (its lease runs out at {until(holder)} unless renewed)"
                    )
            with contextlib.suppress(TimeoutError):
                wait = min(self.poll, self.lease.seconds / 4)
                await asyncio.wait_for(self._stopping.wait(), timeout=wait)
        return False

    def _lost(self, holder: RunnerLease) -> None:
        """Another process took the job over (this one could not renew in time): stop now."""
        self.warn(
            f"provisor: job {self.loaded.job.name} was taken over by {holder.owner} while this "
            "process could not renew its lease (stopped or suspended); stopping"
        )
        self.exit_status = 1
        cycle = self._cycle
        if cycle is not None and not cycle.done():
            cycle.cancel()
        if self._stopping is not None:
            self._stopping.set()

    async def _serve(self) -> None:
        assert self._stopping is not None
        name, state = self.loaded.job.name, self.loaded.state
        last_attempt: datetime | None = None
        attempt_watermark: str | None = None  # the watermark as this process's last attempt left it
        shown: tuple[schedule.Reason, datetime | None] | None = None
        while not self._stopping.is_set():
            now = self.clock()
            current = state.job_state(name)
            cycles = state.cycles(name, limit=1)
            upcoming = schedule.next_cycle(
                current,
                cycles[0] if cycles else None,
                interval=self.interval,
                now=now,
                last_attempt=last_attempt,
                attempt_watermark=attempt_watermark,
            )
            if upcoming.due is not None and upcoming.due <= now:
                if upcoming.reason is schedule.Reason.RESUME:
                    self.say("provisor: the last cycle did not finish; this one resumes its work")
                elif upcoming.reason is schedule.Reason.RESTART and last_attempt is not None:
                    self.say(f"provisor: job {name} was restarted; an initial cycle runs now")
                shown = None
                await self._attempt()
                last_attempt = self.clock()
                attempt_watermark = state.job_state(name).watermark
                continue
            if (upcoming.reason, upcoming.due) != shown:
                shown = (upcoming.reason, upcoming.due)
                self._announce(upcoming, current)
            wait = self.poll
            if upcoming.due is not None:
                wait = min(wait, (upcoming.due - now).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=wait)

    def _announce(self, upcoming: schedule.NextCycle, current: JobState) -> None:
        job, path = self.loaded.job, shlex.quote(str(self.loaded.path))
        if upcoming.reason is schedule.Reason.PAUSED:
            self.say(f"provisor: job {job.name} is paused; no cycles until: provisor resume --job {path}")
        elif upcoming.reason is schedule.Reason.QUARANTINE and current.quarantine is not None:
            q = current.quarantine
            self.say(
                f"provisor: job {job.name} is in quarantine ({q.reason}); next attempt at "
                f"{_when(q.next_attempt)} (retry {q.series_count}); "
                f"lift it with: provisor restart --job {path} --scope QuarantineState"
            )
        elif upcoming.due is not None:
            self.say(f"provisor: next cycle at {_when(upcoming.due)}")

    async def _attempt(self) -> None:
        """One cycle in a task of its own, so that :meth:`stop` can cancel it."""

        async def cycle() -> tuple[CycleReport | None, JobState]:
            with ProgressDisplay(total=expected_total(self.loaded)) as show:
                return await run_cycle(self.loaded, clock=self.clock, progress=show)

        task = asyncio.create_task(cycle())
        self._cycle = task
        try:
            await asyncio.wait({task})
        finally:
            self._cycle = None
        if task.cancelled():
            self.say("provisor: cycle interrupted; what it committed is kept and the next run resumes it")
            return
        error = task.exception()
        if error is None:
            summary(*task.result())
        elif isinstance(error, JobCannotRun):
            self.warn(f"provisor: {error}")
        elif isinstance(error, SourceError | TargetError):
            self.warn(f"provisor: the cycle failed: {error}")
        else:
            self.warn(f"provisor: the cycle failed: {type(error).__name__}: {error}")
