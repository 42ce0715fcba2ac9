"""``provisor sync|run|status|logs|restart|pause|resume|allow-deletes``: provisioning jobs."""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.progress import ProgressColumn, Task
from rich.text import Text

if TYPE_CHECKING:  # the engine's cycle is imported when a job command runs, not by every command
    from rich.console import Console
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

    from provisor.cli.engine import LoadedJob
    from provisor.cli.lease import JobLease
    from provisor.engine.cycle import CycleReport, Progress
    from provisor.engine.jobs.model import Job
    from provisor.engine.ondemand import OnDemandResult
from provisor.engine.state import JobState, JobStateChange, JobStatus, LogQuery, LogRecord, RunnerLease

JobOption = Annotated[Path, typer.Option("--job", help="The job file (YAML).")]
#: The statuses of provisioning log records (``provision.Provisioner.finish``).
LOG_STATUSES = ("Success", "Failure", "Skipped")
RESTART_SCOPES = ("Watermark", "Escrows", "QuarantineState", "ForceDeletes", "Full")
#: How long an admin command (pause, resume, restart, allow-deletes) waits for the state's write
#: lock: a running cycle lets other writers in between its batches, within a second or so.
ADMIN_BUSY_TIMEOUT = 30.0
#: ``provisor sync``'s exit status when another process runs the job (EX_TEMPFAIL: try later).
EXIT_BUSY = 75
#: The exit status after Ctrl-C (128 + SIGINT), and after SIGTERM.
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"provisor: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _job(path: Path, *, busy_timeout: float | None = None, secrets: bool = True) -> Iterator[object]:
    """The job at ``path`` with its state, for one command (``secrets=False``: one that reads or
    sets the state alone, and needs none of the job's secrets: ``engine.open_job``)."""
    from provisor.cli.common import database_problem, shown_url
    from provisor.cli.engine import JobStateUnusable, open_job
    from provisor.engine.jobs import JobFileError

    if path.is_dir():
        _fail(f"{path} is a directory; --job takes a job file (YAML)")
    if not path.is_file():
        _fail(f"no such job file: {path}")
    try:
        loaded = open_job(path, os.environ, busy_timeout=busy_timeout, secrets=secrets)
    except JobFileError as exc:
        _fail(str(exc))
    except JobStateUnusable as exc:  # an unreadable state database: say so plainly
        cause = exc.__cause__ or exc
        _fail(f"cannot open the job's state {shown_url(exc.url)!r}: {database_problem(cause, exc.url)}")
    except Exception as exc:  # not expected: still one line
        _fail(f"cannot open job {path.name}: {type(exc).__name__}: {_one_line(exc)}")
    try:
        yield loaded
    except (typer.Exit, typer.Abort, BrokenPipeError):  # logs | head: typer ends it quietly
        raise
    except Exception as exc:  # e.g. "database is locked", an unreachable source: one line
        from provisor.store.sql.engine import is_locked

        if is_locked(exc):
            _fail(
                f"job {path.name}: its state file stayed locked by another process (a cycle "
                "committing, or a process suspended with Ctrl-Z in the middle of a commit); "
                "nothing was changed: try again"
            )
        _fail(f"job {path.name}: {type(exc).__name__}: {_one_line(exc)}")
    finally:
        loaded.close()


def _one_line(exc: BaseException) -> str:
    """The exception's message in one line: a database error's driver message without
    SQLAlchemy's statement and "Background on this error" lines."""
    from provisor.cli.common import database_problem

    return database_problem(exc)


def register(app: typer.Typer) -> None:
    @app.command()
    def sync(
        job: JobOption,
        once: Annotated[
            bool,
            typer.Option(
                "--once",
                help="Run one cycle and exit: what sync always does (provisor run repeats).",
                show_default=False,
            ),
        ] = True,
    ) -> None:
        """Run one provisioning cycle (initial or incremental); exit 0 when it completed.

        Exit 75 when another process (``provisor run`` or ``sync``) is running the job; Ctrl-C
        (or SIGTERM) interrupts the cycle, which the next sync or run resumes: exit 130 (143).
        """
        from provisor.cli.engine import JobCannotRun, LoadedJob
        from provisor.cli.lease import JobLease, lease_seconds, owner_name, until

        try:
            seconds = lease_seconds(os.environ)
        except ValueError as exc:
            _fail(str(exc), 2)
        with _job(job) as loaded:
            assert isinstance(loaded, LoadedJob)
            name = loaded.job.name
            lease = JobLease(loaded.state, name, owner_name("sync"), seconds=seconds)
            holder = lease.acquire()
            if not lease.held:
                _fail(
                    f"job {name} is being run by {holder.owner}; try again when it is done (if that "
                    f"process is gone, its lease runs out at {until(holder)})",
                    EXIT_BUSY,
                )
            try:
                report, state = _sync(loaded, lease)
            except JobCannotRun as exc:
                _fail(str(exc))
            finally:
                lease.release()
            summary(report, state)

    @app.command()
    def run(
        job: JobOption,
        interval: Annotated[
            str | None,
            typer.Option(
                "--interval",
                help="Time between cycles instead of the job's interval_minutes: 30s, 5m, 1h "
                "(a bare number is minutes; 1s to 7 days).",
            ),
        ] = None,
    ) -> None:
        """Run cycles on the job's interval (default 40 minutes) until stopped (SIGTERM or Ctrl-C).

        A paused job waits for resume, a quarantined one for its next attempt (6 h, 12 h, then
        daily). While another process runs the job this one waits, and takes over when it stops
        (or its lease runs out). Stopping interrupts a running cycle; the next run resumes it.
        Exit status 0; 1 when the job was taken over while this process was suspended.
        """
        import asyncio

        from provisor.cli.engine import LoadedJob
        from provisor.cli.lease import lease_seconds
        from provisor.cli.service import JobService, parse_interval

        every: timedelta | None = None
        try:
            if interval is not None:
                every = parse_interval(interval)
            seconds = lease_seconds(os.environ)
        except ValueError as exc:
            _fail(str(exc), 2)
        with _job(job) as loaded:
            assert isinstance(loaded, LoadedJob)
            if every is None:
                every = timedelta(minutes=loaded.job.interval_minutes)
            service = JobService(loaded, interval=every, lease_seconds=seconds)
            try:
                asyncio.run(service.run())
            except Exception as exc:  # the state database went away: one line, not a traceback
                _fail(f"job {loaded.job.name} stopped: {type(exc).__name__}: {_one_line(exc)}")
        if service.exit_status:
            raise typer.Exit(service.exit_status)

    @app.command()
    def status(
        job: JobOption,
        as_json: Annotated[bool, typer.Option("--json", help="The status as one JSON object.")] = False,
    ) -> None:
        """The job's state (Active, Paused, Quarantine), last cycle, next cycle, counts and steady state.

        The next cycle is when ``provisor run`` at the job's interval runs it, and why then: at
        once (first, resume, restart), the interval after the last cycle, the quarantine's next
        attempt, or none while the job is paused. A runner started with ``--interval`` names its
        own interval in ``runner``."""
        from provisor.cli.engine import LoadedJob
        from provisor.engine import schedule
        from provisor.engine.model import ObjectKind

        with _job(job, secrets=False) as loaded:
            assert isinstance(loaded, LoadedJob)
            name = loaded.job.name
            st = loaded.state.job_state(name)
            cycles = loaded.state.cycles(name, limit=1)
            upcoming = schedule.next_cycle(
                st,
                cycles[0] if cycles else None,
                interval=timedelta(minutes=loaded.job.interval_minutes),
                now=datetime.now(UTC),
            )
            info = {
                "job": name,
                "status": st.status.value,
                "quarantine": None
                if st.quarantine is None
                else {
                    "reason": st.quarantine.reason,
                    "error": st.quarantine.error,
                    "next_attempt": st.quarantine.next_attempt.isoformat(),
                },
                "last_cycle": None
                if not cycles
                else {
                    "id": cycles[0].id,
                    "kind": cycles[0].kind.value,
                    "result": cycles[0].result,
                    "started": cycles[0].started.isoformat(),
                    "finished": cycles[0].finished.isoformat() if cycles[0].finished else None,
                    "counts": dict(cycles[0].counts),
                },
                "next_cycle": None if upcoming.due is None else upcoming.due.isoformat(),
                "next_cycle_reason": upcoming.reason.value,
                "users": loaded.state.count_connections(name, ObjectKind.USER),
                "groups": loaded.state.count_connections(name, ObjectKind.GROUP),
                "escrows": len(loaded.state.escrows(name)),
                "staged_deletes": len(loaded.state.staged_deletes(name)),
                "steady_state_last": st.steady_state_last.isoformat() if st.steady_state_last else None,
                # the process running the job's cycles (provisor run / sync), while its lease holds
                "runner": None
                if (held := loaded.state.lease(name)) is None or held.expires <= datetime.now(UTC)
                else {"owner": held.owner, "until": held.expires.isoformat()},
            }
            if as_json:
                typer.echo(json.dumps(info))
                return
            for key, value in info.items():
                typer.echo(f"{key:18} {json.dumps(value) if isinstance(value, dict) else value}")

    @app.command()
    def logs(
        job: JobOption,
        cycle: Annotated[str | None, typer.Option(help="Only this cycle id.")] = None,
        action: Annotated[
            str | None, typer.Option(help="Create, Update, Disable, Delete, Skip, StagedDelete.")
        ] = None,
        status_: Annotated[str | None, typer.Option("--status", help="Success, Failure, Skipped.")] = None,
        object_: Annotated[str | None, typer.Option("--object", help="Source anchor or target id.")] = None,
        fmt: Annotated[
            str, typer.Option("--format", help="table, json (one object per line) or csv.")
        ] = "table",
        limit: Annotated[int | None, typer.Option(help="At most this many records.")] = None,
    ) -> None:
        """Provisioning logs: one record per object per cycle."""
        from provisor.cli.engine import LoadedJob
        from provisor.engine.plan import Action

        if fmt not in ("table", "json", "csv"):
            _fail(f"--format must be table, json or csv, not {fmt!r}", 2)
        # a value the records never hold (--status failure) showed no records, as if none failed
        action = _one_of("--action", action, [a.value for a in Action])
        status_ = _one_of("--status", status_, LOG_STATUSES)
        if limit is not None and limit < 1:
            _fail(f"--limit must be at least 1, not {limit}", 2)
        with _job(job, secrets=False) as loaded:
            assert isinstance(loaded, LoadedJob)
            records = loaded.state.logs(loaded.job.name, LogQuery(cycle, action, status_, object_, limit))
            _print_logs(records, fmt)

    @app.command()
    def restart(
        job: JobOption,
        scope: Annotated[str, typer.Option(help=f"Comma list of {', '.join(RESTART_SCOPES)}.")] = (
            "Watermark,Escrows,QuarantineState"
        ),
    ) -> None:
        """Restart provisioning (2.10): the next cycle is an initial one for the chosen scopes."""
        from provisor.cli.engine import LoadedJob

        parts = {p.strip().lower() for p in scope.split(",") if p.strip()}
        unknown = parts - {s.lower() for s in RESTART_SCOPES}
        if unknown or not parts:
            _fail(f"--scope takes {', '.join(RESTART_SCOPES)} (comma-separated), not {scope!r}", 2)
        full = "full" in parts
        with _job(job, busy_timeout=ADMIN_BUSY_TIMEOUT, secrets=False) as loaded:
            assert isinstance(loaded, LoadedJob)
            name = loaded.job.name
            loaded.state.reset(
                name,
                watermark=full or "watermark" in parts,
                escrows=full or "escrows" in parts,
                quarantine=full or "quarantinestate" in parts,
                connections=full,
            )
            if full or "forcedeletes" in parts:
                loaded.state.update_job_state(name, JobStateChange(allow_deletes=True))
        typer.echo(f"restarted {name} ({scope})")

    @app.command("allow-deletes")
    def allow_deletes(job: JobOption) -> None:
        """Release the deletes held by the deletion threshold: the next cycle applies them."""
        from provisor.cli.engine import LoadedJob

        with _job(job, busy_timeout=ADMIN_BUSY_TIMEOUT, secrets=False) as loaded:
            assert isinstance(loaded, LoadedJob)
            name = loaded.job.name
            staged = len(loaded.state.staged_deletes(name))
            loaded.state.update_job_state(
                name,
                JobStateChange(
                    allow_deletes=True,
                    quarantine=None,
                    status=JobStatus.ACTIVE,
                    status_from=frozenset({JobStatus.QUARANTINE}),
                ),
            )
        typer.echo(f"{staged} staged delete(s) released; the next cycle applies them")

    @app.command()
    def provision(
        job: JobOption,
        user: Annotated[
            str | None, typer.Option("--user", help="The user's source id or userPrincipalName.")
        ] = None,
        group: Annotated[
            str | None,
            typer.Option("--group", help="The group's source id or displayName (at most 5 members)."),
        ] = None,
        fmt: Annotated[str, typer.Option("--format", help="text (default) or json.")] = "text",
    ) -> None:
        """Provision one user or group now and show every step (provision on demand, 2.11)."""
        import asyncio

        from provisor.cli.engine import LoadedJob, template_of, utc_now
        from provisor.engine.model import ObjectKind, SourceError
        from provisor.engine.ondemand import OnDemandError, run_on_demand

        if (user is None) == (group is None):
            _fail("give exactly one of --user ID_OR_UPN or --group ID_OR_DISPLAYNAME", 2)
        if fmt not in ("text", "json"):
            _fail(f"--format must be text or json, not {fmt!r}", 2)
        kind, key = (ObjectKind.USER, user) if user is not None else (ObjectKind.GROUP, group)
        assert key is not None
        if not key.strip():
            _fail("the object to provision must not be empty", 2)
        with _job(job) as loaded:
            assert isinstance(loaded, LoadedJob)
            try:
                result = asyncio.run(
                    run_on_demand(
                        loaded.job, template_of(loaded.job), loaded.state, kind=kind, key=key, clock=utc_now
                    )
                )
            except OnDemandError as exc:
                _fail(str(exc))
            except SourceError as exc:
                _fail(f"cannot read the source: {exc}")
        if fmt == "json":
            typer.echo(json.dumps(result.as_json(), indent=2))
        else:
            _print_on_demand(result)
        if result.failed:
            raise typer.Exit(1)

    @app.command()
    def pause(job: JobOption) -> None:
        """Pause the job (Provisioning Status Off): cycles stop until resume."""
        _set_status(job, JobStatus.PAUSED)

    @app.command()
    def resume(job: JobOption) -> None:
        """Resume a paused job where it left off."""
        _set_status(job, JobStatus.ACTIVE)


def _one_of(option: str, value: str | None, known: list[str] | tuple[str, ...]) -> str | None:
    """``value`` as the records spell it (any case given), None for None; a usage error when it
    is none of ``known``."""
    if value is None:
        return None
    found = next((k for k in known if k.lower() == value.strip().lower()), None)
    if found is None:
        _fail(f"{option} takes {', '.join(known)}, not {value!r}", 2)
    return found


def _set_status(path: Path, status: JobStatus) -> None:
    from provisor.cli.engine import LoadedJob

    with _job(path, busy_timeout=ADMIN_BUSY_TIMEOUT, secrets=False) as loaded:
        assert isinstance(loaded, LoadedJob)
        loaded.state.update_job_state(loaded.job.name, JobStateChange(status=status))
    typer.echo(f"{loaded.job.name}: {status.value}")


def _sync(loaded: LoadedJob, lease: JobLease) -> tuple[CycleReport | None, JobState]:
    """``provisor sync``'s cycle, stopped cleanly by Ctrl-C or SIGTERM (the cycle is recorded as
    Interrupted and resumed by the next sync or run) or when the runner lease is lost."""
    import asyncio
    import signal

    from provisor.cli.engine import run_cycle

    began = datetime.now(UTC)
    signalled: list[int] = []

    async def cycle() -> tuple[CycleReport | None, JobState]:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def stop(signum: int) -> None:
            signalled.append(signum)
            task.cancel()

        loop.add_signal_handler(signal.SIGTERM, stop, signal.SIGTERM)

        def lost(_holder: RunnerLease) -> None:
            loop.call_soon_threadsafe(task.cancel)

        lease.on_lost = lost
        with ProgressDisplay(total=expected_total(loaded)) as show:
            return await run_cycle(loaded, progress=show)

    try:
        return asyncio.run(cycle())
    except (KeyboardInterrupt, asyncio.CancelledError) as exc:
        if lease.lost is not None and not signalled and not isinstance(exc, KeyboardInterrupt):
            _fail(
                f"job {loaded.job.name} was taken over by {lease.lost.owner} while this process "
                "could not renew its lease (stopped or suspended); the cycle was interrupted"
            )
        code = EXIT_SIGTERM if signalled else EXIT_SIGINT
        cycles = loaded.state.cycles(loaded.job.name, limit=1)
        if cycles and cycles[0].started >= began - timedelta(seconds=1):
            typer.echo(
                f"provisor: cycle {cycles[0].id} interrupted; what it committed is kept and the "
                "next sync or run resumes it",
                err=True,
            )
        else:
            typer.echo("provisor: interrupted before the cycle began", err=True)
        raise typer.Exit(code) from None


def summary(report: CycleReport | None, state: JobState) -> None:
    """The cycle's result and counts, the job's status and its quarantine."""
    if report is None:
        return
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
    typer.echo(f"cycle {report.cycle} ({report.kind.value}): {report.result}; {counts}")
    typer.echo(f"job status: {state.status.value}")
    if state.quarantine is not None:
        typer.echo(f"quarantine: {state.quarantine.reason}: {state.quarantine.error}")


class ProgressDisplay:
    """The cycle's progress (2.13): objects done, of a total when one is known, the rate, the
    ETA (with a total) and the current phase.

    On a terminal a rich progress bar; otherwise plain lines, one per phase and every
    ``interval`` seconds within a phase, and a last line with the totals. ``total`` is an
    estimate from the caller (see :func:`expected_total`); a total the engine reports
    (``Progress.total``) wins, and one the cycle outgrows is raised to what was done. Use it as a
    context manager around the cycle and pass it as the ``progress`` callback.
    """

    def __init__(
        self,
        *,
        total: int | None = None,
        console: Console | None = None,
        tty: bool | None = None,
        interval: float = 5.0,
    ) -> None:
        from rich.console import Console

        self.console = console or Console()
        self.tty = self.console.is_terminal if tty is None else tty
        self.total = total if total else None
        self.interval = interval
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None
        self._started = time.monotonic()
        self._last_line = 0.0
        self._phase = ""
        self._last: Progress | None = None

    def __enter__(self) -> ProgressDisplay:
        self._started = time.monotonic()
        if self.tty:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                SpinnerColumn(),
                TextColumn("[bold]{task.fields[kind]} cycle[/]"),
                TextColumn("{task.fields[phase]:<14}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("objects"),
                _RateColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TimeElapsedColumn(),
                console=self.console,
                refresh_per_second=8,
            )
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        last = self._last
        if self._bar is not None:
            if self._task is not None and last is not None and exc[0] is None:
                self._bar.update(self._task, total=last.done, completed=last.done, phase="done")
            self._bar.stop()
        elif last is not None:
            elapsed = max(time.monotonic() - self._started, 1e-6)
            ended = "done" if exc[0] is None else "stopped"
            self.console.print(
                f"{last.kind.value} cycle: {ended}: {last.done} objects in {elapsed:,.1f} s "
                f"({last.done / elapsed:,.0f}/s)",
                highlight=False,
                soft_wrap=True,
            )

    def __call__(self, progress: Progress) -> None:
        self._last = progress
        total = progress.total or self.total
        if total is not None and progress.done > total:
            total = self.total = progress.done
        if self._bar is not None:
            if self._task is None:
                self._task = self._bar.add_task(
                    "cycle", total=total, kind=progress.kind.value, phase=progress.phase
                )
            self._bar.update(self._task, completed=progress.done, total=total, phase=progress.phase)
            return
        now = time.monotonic()
        if progress.phase == self._phase and now - self._last_line < self.interval:
            return
        self._phase, self._last_line = progress.phase, now
        rate = progress.done / max(now - self._started, 1e-6)
        of = f" of {total}" if total else ""
        self.console.print(
            f"{progress.kind.value} cycle: {progress.phase}: {progress.done}{of} objects, {rate:,.0f}/s",
            highlight=False,
            soft_wrap=True,
        )


class _RateColumn(ProgressColumn):
    """Objects per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None and task.elapsed:
            speed = task.completed / task.elapsed
        return Text("" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


def expected_total(loaded: LoadedJob) -> int | None:
    """The objects the next cycle will log, when that can be told cheaply (2.13), else None.

    An incremental cycle's work is its changes, unknown until they are read: None. An initial
    cycle of a job that ran before re-evaluates its connected objects: their number (a new initial
    cycle after a restart or a mapping change). A first initial cycle in ``all`` mode over a SCIM
    source logs every source object: ``totalResults`` of ``/Users`` and ``/Groups`` (two
    ``count=0`` queries). Otherwise (first cycle, ``assigned`` mode or a file source) None.
    """
    from provisor.cli.engine import template_of
    from provisor.engine.cycle import config_hash
    from provisor.engine.jobs.model import ScopeMode, SourceType
    from provisor.engine.model import ObjectKind

    job, state = loaded.job, loaded.state
    current = state.job_state(job.name)
    try:
        initial = current.watermark is None or current.config_hash != config_hash(job, template_of(job))
    except Exception:  # an unknown template: the cycle itself will say so
        return None
    if not initial:
        return None
    connected = sum(state.count_connections(job.name, k) for k in (ObjectKind.USER, ObjectKind.GROUP))
    if connected:
        return connected
    if job.scope.mode is ScopeMode.ALL and job.source.type is SourceType.SCIM:
        return _scim_total(job)
    return None


def _scim_total(job: Job) -> int | None:
    import httpx

    source = job.source
    if not source.url or source.token is None:
        return None
    headers = {"Authorization": f"Bearer {source.token.reveal()}", "Accept": "application/scim+json"}
    total = 0
    try:
        with httpx.Client(base_url=source.url.rstrip("/"), headers=headers, timeout=5.0) as client:
            for endpoint in ("/Users", "/Groups"):
                body = client.get(endpoint, params={"count": "0", "attributes": "id"}).json()
                total += int(body["totalResults"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    return total or None


def _print_on_demand(result: OnDemandResult, indent: str = "") -> None:
    """Provision on demand, human-readable: the steps in order with their details (2.11)."""
    kind = result.kind.value
    head = f"{indent}Provision on demand: {kind} {result.display} ({result.anchor}): {result.result}"
    typer.secho(head, bold=True)
    for member in result.members:
        _print_on_demand(member, indent + "    ")
    if result.members:
        typer.echo(f"{indent}  {kind} {result.display}:")
    for number, step in enumerate(result.steps, 1):
        typer.echo(f"{indent}  {number}. {step.name} [{step.status}]: {step.description}")
        for key, value in step.details.items():
            if key == "queries" and isinstance(value, list):
                for i, query in enumerate(value, 1):
                    typer.echo(
                        f"{indent}       {i}. {query['attribute']}: {query['query']} -> "
                        f"{query['results']} result(s)"
                    )
                continue
            text = value if isinstance(value, str) else json.dumps(value)
            if len(text) > 100:
                text = text[:97] + "..."
            typer.echo(f"{indent}       {key}: {text}")
    if result.target_id:
        typer.echo(f"{indent}  target id: {result.target_id}")


def _print_logs(records: Iterator[LogRecord], fmt: str) -> None:
    fields = [
        "cycle",
        "time",
        "kind",
        "action",
        "status",
        "source_anchor",
        "target_id",
        "display",
        "reason",
        "error",
    ]

    def row(r: LogRecord) -> dict[str, object]:
        return {
            "cycle": r.cycle,
            "time": r.time.isoformat(),
            "kind": r.kind.value,
            "action": r.action,
            "status": r.status,
            "source_anchor": r.source_anchor,
            "target_id": r.target_id,
            "display": r.display,
            "reason": r.reason,
            "error": r.error,
            "modified": [{"attribute": a, "old": o, "new": n} for a, o, n in r.modified],
            "steps": [{"type": s.type, "status": s.status, "description": s.description} for s in r.steps],
        }

    if fmt == "json":
        for r in records:
            typer.echo(json.dumps(row(r)))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for r in records:
            writer.writerow(row(r))
    else:
        for r in records:
            typer.echo(
                f"{r.time:%Y-%m-%d %H:%M:%S} {r.action:12} {r.status:8} {r.kind.value:5} "
                f"{r.display[:32]:32} {r.reason} {r.error[:60]}"
            )
