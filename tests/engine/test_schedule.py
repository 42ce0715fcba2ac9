"""When the next cycle runs (engine/schedule.py; entra-behaviour.md 2.1, 2.5, 2.9, 2.10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from provisor.engine import quarantine as rules
from provisor.engine.schedule import FAILED, INTERRUPTED, NextCycle, Reason, next_cycle
from provisor.engine.state import Cycle, CycleKind, JobState, JobStatus

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EVERY = timedelta(minutes=40)


def done(minutes_ago: float, result: str = "Succeeded") -> Cycle:
    finished = NOW - timedelta(minutes=minutes_ago)
    return Cycle("c", "j", CycleKind.INCREMENTAL, finished - timedelta(minutes=1), finished, result)


def active(**changes: object) -> JobState:
    return JobState("j", JobStatus.ACTIVE, watermark="w", **changes)  # type: ignore[arg-type]


def test_a_job_that_never_ran_runs_at_once() -> None:
    assert next_cycle(JobState("j"), None, interval=EVERY, now=NOW) == NextCycle(Reason.FIRST, NOW)


def test_cycles_run_an_interval_after_the_last_one() -> None:
    assert next_cycle(active(), done(10), interval=EVERY, now=NOW) == NextCycle(
        Reason.INTERVAL, NOW + timedelta(minutes=30)
    )
    # a process started long after the last cycle: due already, it runs at once
    late = next_cycle(active(), done(90), interval=EVERY, now=NOW)
    assert late.reason is Reason.INTERVAL and late.due is not None and late.due <= NOW


def test_within_a_process_the_interval_follows_each_attempt_whatever_its_outcome() -> None:
    # e.g. Test Connection failed (no cycle record) or the source was unreachable (Failed)
    for last in (None, done(300), done(300, FAILED)):
        got = next_cycle(active(), last, interval=EVERY, now=NOW, last_attempt=NOW - timedelta(minutes=5))
        assert got == NextCycle(Reason.INTERVAL, NOW + timedelta(minutes=35))


@pytest.mark.parametrize("result", [None, INTERRUPTED, FAILED])
def test_a_cycle_that_did_not_finish_is_resumed_at_once(result: str | None) -> None:
    last = done(1, result or "x")
    if result is None:  # killed: the record was never closed
        last = Cycle("c", "j", CycleKind.INITIAL, NOW - timedelta(minutes=2))
    state = JobState("j", JobStatus.ACTIVE)  # the watermark never moved
    assert next_cycle(state, last, interval=EVERY, now=NOW) == NextCycle(Reason.RESUME, NOW)


def test_a_restart_runs_an_initial_cycle_at_once() -> None:
    state = JobState("j", JobStatus.ACTIVE, watermark=None)
    assert next_cycle(state, done(5), interval=EVERY, now=NOW) == NextCycle(Reason.RESTART, NOW)


def test_a_restart_while_a_process_waits_runs_the_initial_cycle_at_once() -> None:
    attempt = NOW - timedelta(minutes=5)
    restarted = JobState("j", JobStatus.ACTIVE, watermark=None)
    got = next_cycle(restarted, done(5), interval=EVERY, now=NOW, last_attempt=attempt, attempt_watermark="w")
    assert got == NextCycle(Reason.RESTART, NOW)
    # not restarted: the interval after the attempt
    got = next_cycle(active(), done(5), interval=EVERY, now=NOW, last_attempt=attempt, attempt_watermark="w")
    assert got == NextCycle(Reason.INTERVAL, NOW + timedelta(minutes=35))
    # the attempt itself left no watermark (a failed initial cycle): no tight retry loop
    failed = done(5, FAILED)
    got = next_cycle(restarted, failed, interval=EVERY, now=NOW, last_attempt=attempt, attempt_watermark=None)
    assert got == NextCycle(Reason.INTERVAL, NOW + timedelta(minutes=35))
    # a pause still wins
    paused = JobState("j", JobStatus.PAUSED, watermark=None)
    got = next_cycle(paused, done(5), interval=EVERY, now=NOW, last_attempt=attempt, attempt_watermark="w")
    assert got == NextCycle(Reason.PAUSED, None)


def test_a_paused_job_waits_for_resume() -> None:
    paused = JobState("j", JobStatus.PAUSED, watermark="w")
    for last in (None, done(500)):
        for attempt in (None, NOW - timedelta(days=1)):
            assert next_cycle(paused, last, interval=EVERY, now=NOW, last_attempt=attempt) == NextCycle(
                Reason.PAUSED, None
            )


def test_a_quarantined_job_waits_for_the_next_attempt_not_the_interval() -> None:
    first = rules.enter(rules.QuarantineReason.QUARANTINE_EXCEPTION, "401", now=NOW, current=None)
    state = JobState("j", JobStatus.QUARANTINE, watermark="w", quarantine=first)
    got = next_cycle(state, done(0), interval=EVERY, now=NOW, last_attempt=NOW)
    assert got == NextCycle(Reason.QUARANTINE, NOW + timedelta(hours=6))
    # the schedule grows: 6 h, 12 h, then every 24 h (2.9)
    later = NOW + timedelta(hours=6)
    second = rules.enter(rules.QuarantineReason.QUARANTINE_EXCEPTION, "401", now=later, current=first)
    state = JobState("j", JobStatus.QUARANTINE, watermark="w", quarantine=second)
    got = next_cycle(state, done(0), interval=EVERY, now=later, last_attempt=later)
    assert got == NextCycle(Reason.QUARANTINE, later + timedelta(hours=12))
    # an attempt that is due runs at once, even a minute after the last one
    due = next_cycle(state, None, interval=EVERY, now=second.next_attempt, last_attempt=later)
    assert due.due == second.next_attempt
