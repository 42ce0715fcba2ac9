"""``provisor sync|run|status|logs|restart|pause|resume|allow-deletes``: provisioning jobs."""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from provisor.engine.cycle import CycleReport, Progress
from provisor.engine.state import JobState, JobStatus, LogQuery, LogRecord

JobOption = Annotated[Path, typer.Option("--job", help="The job file (YAML).")]
RESTART_SCOPES = ("Watermark", "Escrows", "QuarantineState", "ForceDeletes", "Full")


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"provisor: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _job(path: Path) -> Iterator[object]:
    from provisor.cli.engine import open_job
    from provisor.engine.jobs import JobFileError

    if not path.is_file():
        _fail(f"no such job file: {path}")
    try:
        loaded = open_job(path, os.environ)
    except JobFileError as exc:
        _fail(str(exc))
    except Exception as exc:  # an unreadable state database: say so plainly
        _fail(f"cannot open the job's state: {exc}")
    try:
        yield loaded
    finally:
        loaded.close()


def register(app: typer.Typer) -> None:
    @app.command()
    def sync(
        job: JobOption,
        once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit.")] = True,
    ) -> None:
        """Run one provisioning cycle (initial or incremental); exit 0 when it completed."""
        from provisor.cli.engine import JobCannotRun, LoadedJob, sync_once

        with _job(job) as loaded:
            assert isinstance(loaded, LoadedJob)
            try:
                report, state = sync_once(loaded, progress=_progress_printer())
            except JobCannotRun as exc:
                _fail(str(exc))
            _summary(report, state)

    @app.command()
    def run(job: JobOption) -> None:
        """Run cycles on the job's interval (default 40 minutes) until stopped (Ctrl-C)."""
        from provisor.cli.engine import JobCannotRun, LoadedJob, sync_once

        with _job(job) as loaded:
            assert isinstance(loaded, LoadedJob)
            interval = loaded.job.interval_minutes * 60
            try:
                while True:
                    try:
                        report, state = sync_once(loaded, progress=_progress_printer())
                        _summary(report, state)
                    except JobCannotRun as exc:
                        typer.echo(f"provisor: {exc}", err=True)
                    typer.echo(f"next cycle in {interval // 60} minutes")
                    time.sleep(interval)
            except KeyboardInterrupt:
                typer.echo("stopped")

    @app.command()
    def status(job: JobOption, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """The job's state (Active, Paused, Quarantine), last cycle, counts and steady state."""
        from provisor.cli.engine import LoadedJob
        from provisor.engine.model import ObjectKind

        with _job(job) as loaded:
            assert isinstance(loaded, LoadedJob)
            name = loaded.job.name
            st = loaded.state.job_state(name)
            cycles = loaded.state.cycles(name, limit=1)
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
                "next_cycle": None
                if not st.last_cycle_finished
                else (
                    datetime.fromtimestamp(
                        st.last_cycle_finished.timestamp() + loaded.job.interval_minutes * 60, UTC
                    )
                ).isoformat(),
                "users": loaded.state.count_connections(name, ObjectKind.USER),
                "groups": loaded.state.count_connections(name, ObjectKind.GROUP),
                "escrows": len(loaded.state.escrows(name)),
                "staged_deletes": len(loaded.state.staged_deletes(name)),
                "steady_state_last": st.steady_state_last.isoformat() if st.steady_state_last else None,
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

        if fmt not in ("table", "json", "csv"):
            _fail("--format must be table, json or csv")
        with _job(job) as loaded:
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
            _fail(f"--scope takes {', '.join(RESTART_SCOPES)} (comma-separated), not {scope!r}")
        full = "full" in parts
        with _job(job) as loaded:
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
                st = loaded.state.job_state(name)
                loaded.state.save_job_state(replace(st, allow_deletes=True))
        typer.echo(f"restarted {name} ({scope})")

    @app.command("allow-deletes")
    def allow_deletes(job: JobOption) -> None:
        """Release the deletes held by the deletion threshold: the next cycle applies them."""
        from provisor.cli.engine import LoadedJob

        with _job(job) as loaded:
            assert isinstance(loaded, LoadedJob)
            name = loaded.job.name
            st = loaded.state.job_state(name)
            staged = len(loaded.state.staged_deletes(name))
            status = JobStatus.ACTIVE if st.status is JobStatus.QUARANTINE else st.status
            loaded.state.save_job_state(replace(st, allow_deletes=True, quarantine=None, status=status))
        typer.echo(f"{staged} staged delete(s) released; the next cycle applies them")

    @app.command()
    def pause(job: JobOption) -> None:
        """Pause the job (Provisioning Status Off): cycles stop until resume."""
        _set_status(job, JobStatus.PAUSED)

    @app.command()
    def resume(job: JobOption) -> None:
        """Resume a paused job where it left off."""
        _set_status(job, JobStatus.ACTIVE)


def _set_status(path: Path, status: JobStatus) -> None:
    from provisor.cli.engine import LoadedJob

    with _job(path) as loaded:
        assert isinstance(loaded, LoadedJob)
        st = loaded.state.job_state(loaded.job.name)
        loaded.state.save_job_state(replace(st, status=status))
    typer.echo(f"{loaded.job.name}: {status.value}")


def _summary(report: CycleReport | None, state: JobState) -> None:
    if report is None:
        return
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
    typer.echo(f"cycle {report.cycle} ({report.kind.value}): {report.result}; {counts}")
    typer.echo(f"job status: {state.status.value}")
    if state.quarantine is not None:
        typer.echo(f"quarantine: {state.quarantine.reason}: {state.quarantine.error}")


def _progress_printer() -> Callable[[Progress], None]:
    """Plain progress lines when stdout is not a terminal; a live line on a terminal."""
    tty = sys.stdout.isatty()
    started = time.monotonic()
    last = [0.0]

    def show(progress: Progress) -> None:
        now = time.monotonic()
        if now - last[0] < (0.2 if tty else 5.0):
            return
        last[0] = now
        rate = progress.done / max(now - started, 1e-6)
        line = f"{progress.kind.value} cycle: {progress.phase}: {progress.done} objects, {rate:,.0f}/s"
        if tty:
            sys.stdout.write("\r" + line.ljust(78))
            sys.stdout.flush()
        else:
            typer.echo(line)

    return show


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
