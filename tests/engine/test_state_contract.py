"""The engine-state contract against both implementations, and a differential test between them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisor.engine.memory_state import MemoryEngineState
from provisor.engine.model import ObjectKind
from provisor.engine.state import (
    KEEP,
    CycleKind,
    Escrow,
    JobState,
    JobStateChange,
    JobStatus,
    LogQuery,
    LogRecord,
    ObjectConnection,
    Quarantine,
    StagedDelete,
)
from provisor.engine.state_contract import EngineStateContract, Operation, apply, observe
from provisor.store.sql.engine_state import SqlEngineState


class TestMemoryEngineState(EngineStateContract):
    @pytest.fixture
    def state(self) -> MemoryEngineState:
        return MemoryEngineState()


class TestSqlEngineState(EngineStateContract):
    @pytest.fixture
    def state(self, tmp_path: Path) -> Iterator[SqlEngineState]:
        s = SqlEngineState(f"sqlite:///{tmp_path / 'job.state.db'}")
        yield s
        s.close()


class TestSqlEngineStateInMemoryDatabase(EngineStateContract):
    """``sqlite://`` (one shared connection) behaves the same, batches included."""

    @pytest.fixture
    def state(self) -> Iterator[SqlEngineState]:
        s = SqlEngineState("sqlite://")
        yield s
        s.close()


# -- differential: random operations give the same results and the same final state ----------------

T0 = datetime(2025, 1, 1, tzinfo=UTC)
JOBS = ["j1", "j2"]
kinds = st.sampled_from(list(ObjectKind))
small = st.sampled_from(["a", "b", "c", "d"])
targets = st.sampled_from(["t1", "t2", "t3"])
times = st.integers(0, 5).map(lambda s: T0 + timedelta(seconds=s))
jobs = st.sampled_from(JOBS)
words = st.sampled_from(["Create", "Update", "Success", "Failure"])


def _op(name: str, *args: st.SearchStrategy[object]) -> st.SearchStrategy[Operation]:
    return st.tuples(*args).map(lambda a: (name, a))


quarantines = st.none() | st.builds(Quarantine, words, words, times, times, times, st.integers(1, 3))
job_states = st.builds(
    JobState,
    jobs,
    st.sampled_from(list(JobStatus)),
    st.none() | small,
    quarantines,
    st.booleans(),
    st.none() | small,
    st.none() | times,
)
keep = st.just(KEEP)
statuses = st.sampled_from(list(JobStatus))
job_changes = st.builds(
    JobStateChange,
    status=keep | statuses,
    status_from=st.none() | st.frozensets(statuses),
    watermark=keep | st.none() | small,
    quarantine=keep | quarantines,
    allow_deletes=keep | st.booleans(),
    last_cycle=keep | st.none() | small,
    last_cycle_finished=keep | st.none() | times,
    steady_state_first=keep | st.none() | times,
)
connections = st.builds(ObjectConnection, kinds, small, targets, small, st.booleans())
escrows = st.builds(Escrow, kinds, small, st.integers(1, 4), times, words, words, st.booleans())
staged = st.builds(StagedDelete, kinds, small, targets, st.sampled_from(["Disable", "Delete"]), times)
records = st.builds(
    LogRecord, st.sampled_from(["c1", "c2"]), times, kinds, small, st.none() | targets, small, words, words
)
queries = st.builds(
    LogQuery,
    st.none() | st.sampled_from(["c1", "c2"]),
    st.none() | words,
    st.none() | words,
    st.none() | small | targets,
    st.none() | st.integers(0, 4),
)
flags = st.booleans()
operations = st.one_of(
    _op("save_job_state", job_states),
    _op("update_job_state", jobs, job_changes),
    _op("save_connection", jobs, connections),
    _op("delete_connection", jobs, kinds, small),
    _op("connection_by_target", jobs, kinds, targets),
    _op("connections", jobs, kinds),
    _op("add_members", jobs, small, st.lists(small, max_size=3)),
    _op("remove_members", jobs, small, st.lists(small, max_size=3)),
    _op("save_escrow", jobs, escrows),
    _op("clear_escrow", jobs, kinds, small),
    _op("clear_escrows", jobs),
    _op("stage_delete", jobs, staged),
    _op("clear_staged", jobs, st.none() | kinds, st.none() | small),
    _op("start_cycle", jobs, st.sampled_from(list(CycleKind)), times),
    _op("append_log", jobs, records),
    _op("logs", jobs, queries),
    _op("prune_logs", jobs, times),
    _op("reset", jobs, flags, flags, flags, flags),
)


@pytest.fixture(scope="module")
def shared_sql(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlEngineState]:
    s = SqlEngineState(f"sqlite:///{tmp_path_factory.mktemp('diff') / 'diff.state.db'}")
    yield s
    s.close()


def _run(state: object, op: Operation, prefix: str) -> object:
    name, args = op
    if name == "save_job_state":
        (js,) = args
        args = (JobState(prefix + js.job, *[getattr(js, f) for f in JobState.__slots__[1:]]),)
    elif name == "reset":
        job, w, e, q, c = args
        return state.reset(prefix + job, watermark=w, escrows=e, quarantine=q, connections=c)  # type: ignore[attr-defined]
    else:
        args = (prefix + args[0], *args[1:])
    return apply(state, (name, args))  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(operations, min_size=10, max_size=60))
def test_memory_and_sql_states_agree(shared_sql: SqlEngineState, ops: list[Operation]) -> None:
    memory = MemoryEngineState()
    prefix = uuid.uuid4().hex[:8] + "-"  # a fresh set of jobs in the shared SQL database
    for op in ops:
        expected = _run(memory, op, prefix)
        got = _run(shared_sql, op, prefix)
        assert got == expected, op
    names = [prefix + j for j in JOBS]
    keys = ("a", "b", "c", "d"), ("t1", "t2", "t3")
    assert observe(shared_sql, names, *keys) == observe(memory, names, *keys)
