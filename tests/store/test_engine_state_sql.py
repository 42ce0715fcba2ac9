"""SqlEngineState beyond the contract: persistence, migrations, processes, crashes, query plans."""

from __future__ import annotations

import multiprocessing
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from provisor.engine.model import ObjectKind
from provisor.engine.state import (
    CycleKind,
    Escrow,
    JobState,
    JobStatus,
    LogQuery,
    ObjectConnection,
    Quarantine,
    StagedDelete,
)
from provisor.engine.state_contract import observe, record
from provisor.store.sql import SqlStore
from provisor.store.sql.engine_state import SqlEngineState
from provisor.store.sql.migrate import ENGINE_STATE
from provisor.store.sql.migrate import head_revision as _head


def head_revision() -> str:
    return _head(ENGINE_STATE)


USER, GROUP = ObjectKind.USER, ObjectKind.GROUP
T0 = datetime(2025, 5, 1, 8, 30, tzinfo=UTC)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'clarizen-one.state.db'}"


def _fill(state: SqlEngineState, job: str) -> None:
    q = Quarantine("TooManyDeletes", "600 deletes", T0, T0, T0 + timedelta(hours=6), 2)
    state.save_job_state(JobState(job, JobStatus.QUARANTINE, "wm-1", q, True, "c", T0, T0, T0, "hash"))
    for i in range(30):
        state.save_connection(job, ObjectConnection(USER, f"u{i}", f"t{i}", f"User {i}", i % 2 == 0))
    state.save_connection(job, ObjectConnection(GROUP, "g", "tg", "Group"))
    state.add_members(job, "g", [f"u{i}" for i in range(10)])
    state.save_escrow(job, Escrow(USER, "u3", 2, T0, "Timeout", "slow", reference=True))
    state.stage_delete(job, StagedDelete(USER, "u4", "t4", "Delete", T0))
    cycle = state.start_cycle(job, CycleKind.INITIAL, T0)
    state.finish_cycle(
        type(cycle)(
            cycle.id, job, cycle.kind, cycle.started, T0 + timedelta(minutes=3), "Succeeded", {"n": 31}
        )
    )
    for i in range(40):
        state.append_log(job, record(f"u{i % 30}", cycle=cycle.id, seconds=i, target_id=f"t{i % 30}"))


def test_everything_survives_a_reopen(url: str) -> None:
    first = SqlEngineState(url)
    _fill(first, "job-a")
    before = observe(first, ["job-a", "job-b"], [f"u{i}" for i in range(30)] + ["g"], ["t1", "tg"])
    first.close()
    again = SqlEngineState(url)
    try:
        assert (
            observe(again, ["job-a", "job-b"], [f"u{i}" for i in range(30)] + ["g"], ["t1", "tg"]) == before
        )
        assert before["job-a"]["job"].quarantine is not None
        assert len(before["job-a"]["logs"]) == 40 and before["job-a"]["counts"][USER] == 30
    finally:
        again.close()


def test_migrations_are_idempotent_and_have_their_own_version_table(url: str) -> None:
    for _ in range(3):
        SqlEngineState(url).close()
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        versions = conn.execute("SELECT version_num FROM engine_state_version").fetchall()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert versions == [(head_revision(),)]
    assert "alembic_version" not in tables  # the SCIM store's chain is not involved
    assert {"engine_job_state", "engine_connections", "engine_logs", "engine_cycles"} <= tables
    assert journal == "wal"


def test_the_migrated_schema_is_the_tables_the_queries_use(url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    from provisor.store.sql import engine_state_tables

    SqlEngineState(url).close()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"version_table": engine_state_tables.VERSION_TABLE}
            )
            diff = compare_metadata(context, engine_state_tables.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_shares_a_file_with_the_scim_store(url: str) -> None:
    store = SqlStore(url)
    state = SqlEngineState(url)
    try:
        tenant = store.create_tenant("contoso").id
        state.save_connection("j", ObjectConnection(USER, "a", "t", "A"))
        with store.engine.connect() as conn:
            assert len(conn.execute(text("SELECT version_num FROM alembic_version")).all()) == 1
            assert len(conn.execute(text("SELECT version_num FROM engine_state_version")).all()) == 1
        assert store.get_tenant("contoso").id == tenant and state.count_connections("j", USER) == 1
    finally:
        state.close()
        store.close()


def test_a_write_is_visible_to_another_instance_when_it_returns(url: str) -> None:
    a, b = SqlEngineState(url), SqlEngineState(url)
    try:
        a.save_connection("j", ObjectConnection(USER, "x", "tx", "X"))
        assert b.connection("j", USER, "x") is not None
        with a.batch():
            a.save_connection("j", ObjectConnection(USER, "y", "ty", "Y"))
            a.append_log("j", record("y"))
            assert b.connection("j", USER, "y") is None  # not committed yet: one transaction
            assert list(b.logs("j", LogQuery())) == []
        assert b.connection("j", USER, "y") is not None and len(list(b.logs("j", LogQuery()))) == 1
    finally:
        a.close()
        b.close()


def test_other_threads_wait_for_a_batch_instead_of_failing(url: str) -> None:
    state = SqlEngineState(url)
    try:
        in_batch, release = threading.Event(), threading.Event()

        def batcher() -> None:
            with state.batch():
                state.save_connection("j", ObjectConnection(USER, "batched", "tb", ""))
                in_batch.set()
                release.wait(5)

        def writer(i: int) -> None:
            state.save_connection("j", ObjectConnection(USER, f"w{i}", f"tw{i}", ""))

        holder = threading.Thread(target=batcher)
        holder.start()
        assert in_batch.wait(5)
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(writer, i) for i in range(8)]
            # reads are not blocked by the open batch (WAL), and do not see it
            assert state.connection("j", USER, "batched") is None
            release.set()
            for f in futures:
                f.result(timeout=10)
        holder.join(5)
        assert state.count_connections("j", USER) == 9
    finally:
        state.close()


def test_concurrent_threads_lose_no_writes(url: str) -> None:
    state = SqlEngineState(url)
    try:

        def work(t: int) -> None:
            for i in range(50):
                if i % 10 == 0:
                    with state.batch():
                        for k in range(5):
                            state.append_log("j", record(f"b{t}-{i}-{k}"))
                state.save_connection("j", ObjectConnection(USER, f"{t}-{i}", f"t{t}-{i}", ""))
                state.add_members("j", f"g{t}", [f"{t}-{i}"])

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(work, range(8)))
        assert state.count_connections("j", USER) == 400
        assert len(list(state.logs("j", LogQuery()))) == 8 * 5 * 5
        assert all(len(state.members("j", f"g{t}")) == 50 for t in range(8))
    finally:
        state.close()


def _process_worker(url: str, name: str, count: int) -> int:
    state = SqlEngineState(url)  # every process migrates on open: they must not trip over each other
    try:
        for i in range(count):
            state.save_connection("shared", ObjectConnection(USER, f"{name}-{i}", f"t-{name}-{i}", name))
            state.append_log("shared", record(f"{name}-{i}", seconds=i))
        with state.batch():
            state.add_members("shared", "g", [f"{name}-{i}" for i in range(count)])
        return count
    finally:
        state.close()


def test_processes_open_and_write_one_fresh_file(url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        written = pool.starmap(_process_worker, [(url, f"p{p}", 60) for p in range(4)])
    assert written == [60] * 4
    state = SqlEngineState(url)
    try:
        assert state.count_connections("shared", USER) == 240
        assert len(list(state.logs("shared", LogQuery()))) == 240
        assert len(state.members("shared", "g")) == 240
        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            assert len(conn.execute("SELECT version_num FROM engine_state_version").fetchall()) == 1
    finally:
        state.close()


# -- crash safety ----------------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import os, sys, time
    from provisor.engine.model import ObjectKind
    from provisor.engine.state import ObjectConnection
    from provisor.engine.state_contract import record
    from provisor.store.sql.engine_state import SqlEngineState

    url, mode = sys.argv[1], sys.argv[2]
    state = SqlEngineState(url)
    def save(name):
        state.save_connection("j", ObjectConnection(ObjectKind.USER, name, "t-" + name, ""))
        state.append_log("j", record(name))
    if mode == "exit":
        for i in range(50):
            save(f"a{i}")
        os._exit(0)  # no close, no cleanup
    if mode == "stream":
        for i in range(100000):
            save(f"a{i}")
            print(f"a{i}", flush=True)  # only after the write returned
    if mode == "batch":
        with state.batch():
            save("committed")
        print("committed", flush=True)
        with state.batch():
            save("pending")
            print("pending", flush=True)
            time.sleep(60)
    """
)


def _child(url: str, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, url, mode], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )


def _anchors(url: str) -> tuple[set[str], set[str]]:
    """The anchors with a connection, and those with a log record."""
    state = SqlEngineState(url)
    try:
        conns = {c.anchor for c in state.connections("j", USER)}
        logs = {r.source_anchor for r in state.logs("j", LogQuery())}
        return conns, logs
    finally:
        state.close()


def test_writes_survive_exit_without_close(url: str) -> None:
    child = _child(url, "exit")
    assert child.wait(60) == 0
    everything = {f"a{i}" for i in range(50)}
    assert _anchors(url) == (everything, everything)


def test_every_write_that_returned_survives_sigkill(url: str) -> None:
    child = _child(url, "stream")
    assert child.stdout is not None
    for _ in range(300):
        child.stdout.readline()
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    assert child.returncode == -signal.SIGKILL
    returned = {f"a{i}" for i in range(300)} | set(child.stdout.read().split())  # all it reported
    conns, logs = _anchors(url)
    assert returned <= logs <= conns
    assert len(conns - returned) <= 1  # at most the object under way when killed


def test_sigkill_inside_a_batch_loses_only_the_open_batch(url: str) -> None:
    child = _child(url, "batch")
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "committed"
    assert child.stdout.readline().strip() == "pending"
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    assert _anchors(url) == ({"committed"}, {"committed"})


# -- query plans: every lookup and log filter is served by an index --------------------------------


def _plan(state: SqlEngineState, sql: str) -> str:
    with state.engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, (None,) * sql.count("?")).all()
    return " | ".join(str(r[3]) for r in rows)


def test_lookups_use_their_indexes(url: str) -> None:
    state = SqlEngineState(url)
    try:
        by_target = _plan(state, state._sql.connection_by_target.sql)
        assert "ix_engine_connections_target" in by_target
        # a changed user's groups: one index range, never every membership of the job
        groups_of = _plan(state, state._sql.source_groups_of.sql)
        assert "ix_engine_source_members_member (job=? AND member_anchor=?)" in groups_of, groups_of
        cases = {
            LogQuery(cycle="c"): "ix_engine_logs_cycle",
            LogQuery(action="Create"): "ix_engine_logs_action",
            LogQuery(status="Failure"): "ix_engine_logs_status",
            LogQuery(): "ix_engine_logs_time",
        }
        for query, index in cases.items():
            for first in (True, False):
                plan = _plan(state, state._sql.logs(query, first).sql)
                assert index in plan and "TEMP B-TREE" not in plan, (query, plan)
        for first in (True, False):
            plan = _plan(state, state._sql.logs(LogQuery(anchor="a", status="Failure"), first).sql)
            assert "ix_engine_logs_source" in plan and "ix_engine_logs_target" in plan, plan
            assert "ix_engine_logs_status" not in plan
    finally:
        state.close()


def test_pruning_logs_reads_a_range_of_the_time_index(url: str) -> None:
    state = SqlEngineState(url)
    try:
        plan = _plan(state, state._sql.prune_logs.sql)
        assert "COVERING INDEX ix_engine_logs_time (job=? AND time<?)" in plan, plan
        assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
    finally:
        state.close()


def test_naive_datetimes_never_reach_the_database(url: str) -> None:
    state = SqlEngineState(url)
    try:
        with pytest.raises(ValueError, match="tz-aware"):
            state.start_cycle("j", CycleKind.INITIAL, datetime(2025, 1, 1))
        assert state.cycles("j") == []
    finally:
        state.close()
