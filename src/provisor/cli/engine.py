"""Running jobs: the composition root of the engine (job file -> source, target, state, cycle).

``run_cycle`` (``sync_once`` outside an event loop) is one cycle with Entra's guard rails around
it: a paused job does not run, a quarantined one only when its next attempt is due (2.9); Test
Connection first (1.2), and bad credentials or a 404 on the probe quarantine the job at once;
after the cycle the deletion threshold (2.7) and the escrow thresholds (2.9) decide the job's
state, the admin is e-mailed when it enters quarantine or stages deletes (2.14), and a job still
quarantined four weeks after the series began is disabled (paused, escrows dropped). Then log
records older than the job's retention (2.12, ``logs.retention_days``) are pruned.

A cycle cancelled half-way (SIGTERM, Ctrl-C) or ended by an error stops the object operations it
started, keeps what they committed and closes its record as ``Interrupted`` or ``Failed``; the next
cycle resumes the work (the watermark only moves when a cycle completes).
"""

from __future__ import annotations

import asyncio
import random
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from provisor.engine import deletions, schedule
from provisor.engine import quarantine as rules
from provisor.engine.cycle import Cycle, CycleReport, Progress
from provisor.engine.jobs import Job, load_job_file
from provisor.engine.jobs.model import SourceType
from provisor.engine.mapping import EvalContext
from provisor.engine.model import Source
from provisor.engine.notify import NotificationError, Notifier
from provisor.engine.state import EngineState, JobState, JobStateChange, JobStatus
from provisor.engine.targets import InvalidCredentials, ScimComplianceError, ScimTarget, TargetError
from provisor.engine.templates import Template, template_for
from provisor.engine.templates.model import apply_overrides


class JobCannotRun(Exception):
    """The job cannot run now (paused, quarantined, Test Connection failed): the message says why."""


class JobStateUnusable(Exception):
    """The job's state database (``url``) could not be opened; the cause is chained."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class LoadedJob:
    job: Job
    path: Path
    state: EngineState

    def close(self) -> None:
        self.state.close()


def open_job(
    path: Path, env: Mapping[str, str], *, busy_timeout: float | None = None, secrets: bool = True
) -> LoadedJob:
    """The job file and its state (``busy_timeout``: seconds a write waits for the lock).
    Without ``secrets`` (a command that reads or sets the job's state alone: status, logs, pause),
    a variable that is not set is kept as written (``${APP_TOKEN}``), so an operator without the
    job's secrets in the environment can still stop it; the state's own location must be set.

    :raises JobFileError: the job file is missing or wrong.
    :raises JobStateUnusable: its state database cannot be opened.
    """
    from provisor.store.sql.engine_state import SqlEngineState

    def kept(name: str, key: str) -> str | None:  # the state's location must be set: it is used
        return None if key == "state" else f"${{{name}}}"

    job = load_job_file(path, env, unset=None if secrets else kept)
    try:
        state = SqlEngineState(job.state, busy_timeout=busy_timeout)
    except Exception as exc:
        raise JobStateUnusable(job.state) from exc
    return LoadedJob(job, path, state)


def template_of(job: Job) -> Template:
    base = (
        template_for(job.template)
        if job.template
        else Template(name="custom", user_mappings=(), group_mappings=())
    )
    return apply_overrides(base, job.mappings)


def source_of(job: Job) -> Source:
    if job.source.type is SourceType.SCIM:
        from provisor.engine.sources.scim import ScimSource

        return ScimSource.from_config(job.source)
    from provisor.engine.sources import files

    state_file = (
        job.state.removeprefix("sqlite:///") if job.state.startswith("sqlite:///") else f"{job.name}.db"
    )
    return files.from_config(job.source, snapshot_path=Path(state_file).with_suffix(".snapshot.db"))


async def run_cycle(
    loaded: LoadedJob,
    *,
    clock: Callable[[], datetime] = utc_now,
    progress: Callable[[Progress], None] | None = None,
    target_options: dict[str, Any] | None = None,
) -> tuple[CycleReport | None, JobState]:
    """One cycle of the job (see the module docstring), then the log retention.

    :raises JobCannotRun: the job is paused, quarantined until later, or Test Connection failed.
    """
    options = dict(target_options or {})
    if "transport" not in options:  # httpx's default transport costs more CPU than the requests
        from provisor.engine.targets.transport import LeanTransport

        options["transport"] = LeanTransport()
    try:
        result = await _cycle(loaded, clock=clock, progress=progress, target_options=options)
    except JobCannotRun:
        prune_logs(loaded, clock())
        raise
    prune_logs(loaded, clock())
    return result


def prune_logs(loaded: LoadedJob, now: datetime) -> int:
    """Delete the job's log records older than its retention (2.12); how many went."""
    cutoff = now - timedelta(days=loaded.job.logs.retention_days)
    return loaded.state.prune_logs(loaded.job.name, cutoff)


async def _cycle(
    loaded: LoadedJob,
    *,
    clock: Callable[[], datetime],
    progress: Callable[[Progress], None] | None,
    target_options: dict[str, Any],
) -> tuple[CycleReport | None, JobState]:
    job, state = loaded.job, loaded.state
    job_file = shlex.quote(str(loaded.path))  # as the commands suggested below take it
    current = state.job_state(job.name)
    now = clock()
    if current.status is JobStatus.PAUSED:
        why = ""
        if current.quarantine is not None:
            q = current.quarantine
            why = (
                f" (disabled after {rules.DISABLE_AFTER.days} days in quarantine: {q.reason}: {q.error};"
                " fix the cause first)"
            )
        raise JobCannotRun(f"job {job.name} is paused{why}; resume it with: provisor resume --job {job_file}")
    if current.quarantine is not None and not rules.attempt_due(current.quarantine, now):
        q = current.quarantine
        raise JobCannotRun(
            f"job {job.name} is in quarantine ({q.reason}: {q.error}); next attempt "
            f"{q.next_attempt:%Y-%m-%d %H:%M} UTC, or lift it now with: provisor restart --job {job_file} "
            "--scope QuarantineState"
        )
    template = template_of(job)
    matching = next((m.target for m in template.user_mappings if m.matching_precedence == 1), "userName")
    async with ScimTarget.from_config(job.target, **target_options) as target:
        try:
            await target.test_connection(user_matching_attr=matching)
        except (InvalidCredentials, ScimComplianceError) as exc:
            immediate = (
                rules.ImmediateReason.INVALID_CREDENTIALS
                if isinstance(exc, InvalidCredentials)
                else rules.ImmediateReason.SCIM_COMPLIANCE
            )
            found = rules.evaluate(
                rules.CycleOutcome(immediate=immediate, detail=str(exc)), now=now, current=current.quarantine
            )
            _quarantine(loaded, current, found)
            raise JobCannotRun(f"Test Connection failed: {exc}; the job is quarantined") from None
        except TargetError as exc:
            raise JobCannotRun(f"Test Connection failed: {exc}") from None
        ctx = EvalContext(clock=clock, random=random.SystemRandom())
        cycle = Cycle(
            job,
            template,
            source_of(job),
            target,
            state,
            clock=clock,
            ctx=ctx,
            progress=progress,
            concurrency=job.target.concurrency,
        )
        initial = current.watermark is None
        escrows_before = len(state.escrows(job.name))
        try:
            report = await cycle.run()
        except BaseException as exc:
            interrupted = isinstance(exc, asyncio.CancelledError | KeyboardInterrupt)
            _abandon(loaded, cycle, clock=clock, interrupted=interrupted)
            raise
    after = state.job_state(job.name)
    failures = report.counts.get("Failure", 0) - report.counts.get("reference_failures", 0)
    outcome = rules.CycleOutcome(
        failures=max(failures, 0),
        reference_failures=report.counts.get("reference_failures", 0),
        successes=report.counts.get("Success", 0),
    )
    if report.counts.get("threshold_reached"):
        staged = len(state.staged_deletes(job.name))
        q = rules.enter(
            rules.QuarantineReason.TOO_MANY_DELETES,
            deletions.quarantine_error(staged, job.settings.deletion_threshold),
            now=clock(),
            current=current.quarantine,
        )
        _quarantine(loaded, after, q)
        previous = current.quarantine
        _notify(
            loaded,
            lambda n: n.deletion_threshold(job, staged, job.settings.deletion_threshold, previous=previous),
        )
    elif rules.prune_escrows(outcome, initial=initial):
        state.clear_escrows(job.name)
        state.update_job_state(job.name, JobStateChange(status=JobStatus.PAUSED))
    else:
        entered = rules.evaluate(outcome, now=clock(), current=current.quarantine, initial=initial)
        if entered is not None:
            _quarantine(loaded, after, entered)
        elif after.quarantine is not None or after.status is JobStatus.QUARANTINE:
            lift = JobStateChange(
                quarantine=None, status=JobStatus.ACTIVE, status_from=frozenset({JobStatus.QUARANTINE})
            )
            state.update_job_state(job.name, lift)  # a pause made meanwhile stands
        # New failures of any kind (objects, manager links, memberships) are worth one e-mail;
        # the same ones retried in later cycles are not (their escrows are no longer new).
        failed = report.counts.get("Failure", 0)
        if failed > 0 and entered is None and len(state.escrows(job.name)) > escrows_before:
            sample = [f"{r.display or r.source_anchor}: {r.error}" for r in _failures(loaded, report.cycle)]
            _notify(loaded, lambda n: n.cycle_failures(job, report.cycle, failed, sample))
    return report, state.job_state(job.name)


def _abandon(loaded: LoadedJob, cycle: Cycle, *, clock: Callable[[], datetime], interrupted: bool) -> None:
    """A cycle stopped half-way: close its record with its counts so far. The object operations
    it had running were cancelled and awaited on the way out (``Cycle._each``): what they
    committed stays; an operation cut short is redone by the next cycle, which matches before it
    creates."""
    if not cycle.cycle_id:
        return
    name = loaded.job.name
    try:
        record = next((c for c in loaded.state.cycles(name, limit=5) if c.id == cycle.cycle_id), None)
        if record is not None and record.finished is None:
            result = schedule.INTERRUPTED if interrupted else schedule.FAILED
            counts = dict(cycle.counts)
            loaded.state.finish_cycle(replace(record, finished=clock(), result=result, counts=counts))
    except Exception:  # noqa: S110 - the cycle's own error matters more; an open record also resumes
        pass


def _failures(loaded: LoadedJob, cycle: str) -> list[Any]:
    from provisor.engine.state import LogQuery

    return list(loaded.state.logs(loaded.job.name, LogQuery(cycle=cycle, status="Failure", limit=5)))


def _quarantine(loaded: LoadedJob, current: JobState, q: Any) -> None:
    if q is None:
        return
    previous = current.quarantine
    change = JobStateChange(
        status=JobStatus.QUARANTINE,
        status_from=frozenset({JobStatus.NOT_RUN, JobStatus.ACTIVE, JobStatus.QUARANTINE}),  # not a pause
        quarantine=q,
    )
    if rules.should_disable(q, q.current_began):  # four weeks: disabled, escrows dropped (2.9)
        loaded.state.clear_escrows(loaded.job.name)
        change = JobStateChange(status=JobStatus.PAUSED, quarantine=q)
    loaded.state.update_job_state(loaded.job.name, change)
    _notify(loaded, lambda n: n.quarantined(loaded.job, q, previous=previous))


def _notify(loaded: LoadedJob, send: Callable[[Notifier], bool]) -> None:
    config = loaded.job.notifications
    if config is None:
        return
    try:
        send(Notifier(config, job_file=shlex.quote(str(loaded.path))))
    except NotificationError as exc:  # e-mail trouble never fails the job; it is logged on stderr
        import sys

        print(f"provisor: notification not sent: {exc}", file=sys.stderr)


def sync_once(
    loaded: LoadedJob,
    *,
    clock: Callable[[], datetime] = utc_now,
    progress: Callable[[Progress], None] | None = None,
    target_options: dict[str, Any] | None = None,
) -> tuple[CycleReport | None, JobState]:
    """:func:`run_cycle` in an event loop of its own."""
    return asyncio.run(run_cycle(loaded, clock=clock, progress=progress, target_options=target_options))
