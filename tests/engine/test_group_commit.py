"""Group commit of a cycle's state writes (cycle._Commits) and what a lost batch costs: nothing but
a re-match (query-before-create), never a duplicate account."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from tests.conftest import GROUP
from tests.engine.test_cycle import person, run_cycle, users_of, world  # noqa: F401

from provisor.engine.cycle import _Commits
from provisor.engine.memory_state import MemoryEngineState
from provisor.engine.model import ObjectKind
from provisor.engine.state import CycleKind, LogQuery


class CountingState(MemoryEngineState):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = 0
        self.depth = 0
        self.writes_outside = 0

    @contextmanager
    def batch(self) -> Iterator[None]:
        self.blocks += 1
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def save_connection(self, job, connection):  # type: ignore[no-untyped-def]
        if self.depth == 0:
            self.writes_outside += 1
        super().save_connection(job, connection)


def test_object_writes_are_made_inside_batches(world, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    # Batches let go of the lock every HOLD_SECONDS, and the writes of the gap that follows commit
    # one by one (by design: tests/engine/test_cycle_concurrency.py); a phase slower than that on
    # a busy machine made writes outside batches here. No gap is due in this test, however slow.
    monkeypatch.setattr(_Commits, "HOLD_SECONDS", 3600.0)
    job, directory, _ = world
    members = [person(directory, f"gc{i}.user@example.com") for i in range(12)]
    directory.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "Engineering",
            "members": [{"value": u["id"]} for u in members],
        },
    )
    state = CountingState()
    report = run_cycle(job, state)
    assert report.result == "Succeeded" and report.counts["Create"] == 13
    assert state.blocks >= 3  # users, references, groups: a block (at least) per phase
    assert state.writes_outside == 0


def test_connections_lost_with_a_batch_are_rematched_not_recreated(world) -> None:  # noqa: F811
    job, directory, app = world
    members = [person(directory, f"lost{i}.user@example.com") for i in range(6)]
    directory.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "Engineering",
            "members": [{"value": u["id"]} for u in members],
        },
    )
    state = MemoryEngineState()
    assert run_cycle(job, state).counts["Create"] == 7
    # A process killed before its last commit: the accounts exist, the connections do not.
    for conn in list(state.connections(job.name, ObjectKind.USER))[:4]:
        state.delete_connection(job.name, ObjectKind.USER, conn.anchor)
    state.reset(job.name, watermark=True, escrows=False, quarantine=False, connections=False)

    report = run_cycle(job, state)
    assert report.kind is CycleKind.INITIAL and report.result == "Succeeded", report
    assert not list(state.logs(job.name, LogQuery(cycle=report.cycle, action="Create")))
    assert len(users_of(app)) == 6
    assert state.count_connections(job.name, ObjectKind.USER) == 6


class SlowCommit(MemoryEngineState):
    """Batches whose commit takes ``commit_seconds`` on ``clock`` (a busy machine, a slow disk)."""

    def __init__(self, commit_seconds: float) -> None:
        super().__init__()
        self.now = 0.0
        self.commit_seconds = commit_seconds
        self.open = 0

    def clock(self) -> float:
        return self.now

    @contextmanager
    def batch(self) -> Iterator[None]:
        self.open += 1
        try:
            yield
        finally:
            self.now += self.commit_seconds  # the lock is held until the commit ends
            self.open -= 1


def test_the_gap_after_a_hold_is_counted_from_the_end_of_its_commit() -> None:
    """Other writers get GAP_SECONDS without a batch after the commit that ends a hold, however
    long the commit took (counted from before it, a commit as long as the gap left them none)."""
    state = SlowCommit(commit_seconds=_Commits.GAP_SECONDS * 3)
    with _Commits(state, clock=state.clock) as commits:
        assert state.open == 1
        state.now += _Commits.HOLD_SECONDS
        commits.done(0)  # the hold is over: committed, and let go
        assert state.open == 0
        state.now += _Commits.GAP_SECONDS / 2
        commits.done(1)
        assert state.open == 0  # still the other writers' turn
        state.now += _Commits.GAP_SECONDS / 2
        commits.done(1)
        assert state.open == 1  # the gap is over: the next batch holds the lock
