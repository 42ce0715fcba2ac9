"""The contract every ``EngineState`` passes: a pytest test class to subclass with a ``state`` fixture.

    class TestSqlEngineState(EngineStateContract):
        @pytest.fixture
        def state(self, tmp_path):
            s = SqlEngineState(f"sqlite:///{tmp_path}/job.state.db")
            yield s
            s.close()

The fixture gives a fresh, empty state that also offers ``batch()`` (group commit). Behaviour
follows engine/state.py and entra-behaviour.md 2.4-2.12; the orders it checks are documented in
``memory_state`` and ``provisor.store.sql.engine_state``. :func:`apply` and :func:`observe` let a
differential test run the same operations on two implementations and compare what they show.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Protocol

import pytest

from provisor.engine.model import ObjectKind
from provisor.engine.state import (
    Cycle,
    CycleKind,
    EngineState,
    Escrow,
    JobState,
    JobStateChange,
    JobStatus,
    LogQuery,
    LogRecord,
    LogStep,
    ObjectConnection,
    Quarantine,
    RunnerLease,
    StagedDelete,
)

USER, GROUP = ObjectKind.USER, ObjectKind.GROUP
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
PARIS = timezone(timedelta(hours=2))


class BatchingState(EngineState, Protocol):
    """An engine state with group commit, as both implementations offer."""

    def batch(self) -> AbstractContextManager[None]: ...


def at(seconds: float) -> datetime:
    """``T0`` plus some seconds."""
    return T0 + timedelta(seconds=seconds)


def record(
    anchor: str,
    *,
    cycle: str = "c1",
    seconds: float = 0,
    target_id: str | None = None,
    action: str = "Create",
    status: str = "Success",
    kind: ObjectKind = USER,
) -> LogRecord:
    """A log record with plausible steps and modified attributes."""
    return LogRecord(
        cycle=cycle,
        time=at(seconds),
        kind=kind,
        source_anchor=anchor,
        target_id=target_id,
        display=f"Display {anchor}",
        action=action,
        status=status,
        reason="" if status == "Success" else "because",
        steps=(
            LogStep("Import", "Success", "Received User", {"userPrincipalName": f"{anchor}@contoso.com"}),
            LogStep("Export", status, "Exported", {"attempts": 1, "nested": {"a": [1, 2]}}),
        ),
        modified=(("userName", None, f"{anchor}@contoso.com"), ("active", "False", "True")),
        error="" if status == "Success" else "SCIM 400",
        duration_ms=12.5,
    )


def anchors(records: Iterator[LogRecord]) -> list[str]:
    return [r.source_anchor for r in records]


class EngineStateContract:
    """Behaviour of ``EngineState`` (engine/state.py) that every implementation must show."""

    @pytest.fixture
    def state(self) -> BatchingState:
        raise NotImplementedError("subclasses provide a fresh state")

    # -- job state ---------------------------------------------------------------------------------

    def test_unknown_job_has_default_state(self, state: BatchingState) -> None:
        assert state.job_state("never") == JobState(job="never")
        assert state.job_state("never").status is JobStatus.NOT_RUN

    def test_job_state_round_trips_in_utc(self, state: BatchingState) -> None:
        q = Quarantine("TooManyDeletes", "501 deletes", at(-60).astimezone(PARIS), at(-30), at(3600), 3)
        saved = JobState(
            job="j",
            status=JobStatus.QUARANTINE,
            watermark="w-17",
            quarantine=q,
            allow_deletes=True,
            last_cycle="c9",
            last_cycle_finished=at(5).astimezone(PARIS),
            steady_state_first=at(1),
            steady_state_last=at(2),
            config_hash="abc123",
        )
        state.save_job_state(saved)
        got = state.job_state("j")
        assert got == saved  # equal instants
        assert got.quarantine is not None
        for when in (got.last_cycle_finished, got.quarantine.series_began, got.quarantine.next_attempt):
            assert when is not None and when.utcoffset() == timedelta(0)
        assert got.status is JobStatus.QUARANTINE and got.quarantine.series_count == 3

    def test_save_job_state_replaces(self, state: BatchingState) -> None:
        q = Quarantine("EncounteredQuarantineException", "401", at(0), at(0), at(60))
        state.save_job_state(JobState("j", JobStatus.QUARANTINE, "w1", q, config_hash="h"))
        state.save_job_state(JobState("j", JobStatus.ACTIVE, "w2"))
        assert state.job_state("j") == JobState("j", JobStatus.ACTIVE, "w2")
        assert state.job_state("other") == JobState("other")

    def test_naive_datetimes_are_refused(self, state: BatchingState) -> None:
        naive = datetime(2025, 1, 1)
        with pytest.raises(ValueError):
            state.save_job_state(JobState("j", last_cycle_finished=naive))
        with pytest.raises(ValueError):
            state.save_escrow("j", Escrow(USER, "a", 1, naive, "E", "m"))
        with pytest.raises(ValueError):
            state.start_cycle("j", CycleKind.INITIAL, naive)
        with pytest.raises(ValueError):
            state.append_log("j", dataclasses.replace(record("a"), time=naive))
        with pytest.raises(ValueError):
            state.stage_delete("j", StagedDelete(USER, "a", "t", "Delete", naive))
        assert state.job_state("j") == JobState("j")
        assert state.escrows("j") == [] and state.cycles("j") == [] and state.staged_deletes("j") == []
        assert list(state.logs("j", LogQuery())) == []

    # -- object connections ------------------------------------------------------------------------

    def test_connection_round_trip_and_lookups(self, state: BatchingState) -> None:
        conn = ObjectConnection(USER, "src-1", "tgt-1", "Alice", active=False)
        state.save_connection("j", conn)
        assert state.connection("j", USER, "src-1") == conn
        assert state.connection_by_target("j", USER, "tgt-1") == conn
        assert state.connection("j", GROUP, "src-1") is None  # kinds apart
        assert state.connection("other", USER, "src-1") is None  # jobs apart
        assert state.connection_by_target("j", GROUP, "tgt-1") is None
        assert state.connection_by_target("j", USER, "nope") is None

    def test_save_connection_replaces_and_moves_the_target_index(self, state: BatchingState) -> None:
        state.save_connection("j", ObjectConnection(USER, "a", "t-old", "A"))
        state.save_connection("j", ObjectConnection(USER, "a", "t-new", "A2", active=False))
        assert state.connection("j", USER, "a") == ObjectConnection(USER, "a", "t-new", "A2", False)
        assert state.connection_by_target("j", USER, "t-old") is None
        assert state.connection_by_target("j", USER, "t-new") is not None
        assert state.count_connections("j", USER) == 1

    def test_shared_target_id_resolves_to_the_smallest_anchor(self, state: BatchingState) -> None:
        for anchor in ("m", "c", "x"):
            state.save_connection("j", ObjectConnection(USER, anchor, "same", anchor))
        found = state.connection_by_target("j", USER, "same")
        assert found is not None and found.anchor == "c"
        state.delete_connection("j", USER, "c")
        found = state.connection_by_target("j", USER, "same")
        assert found is not None and found.anchor == "m"

    def test_delete_connection(self, state: BatchingState) -> None:
        state.save_connection("j", ObjectConnection(USER, "a", "t", "A"))
        state.save_connection("j", ObjectConnection(GROUP, "a", "g", "G"))
        state.delete_connection("j", USER, "a")
        state.delete_connection("j", USER, "a")  # again: nothing happens
        state.delete_connection("j", USER, "never")
        assert state.connection("j", USER, "a") is None
        assert state.connection_by_target("j", USER, "t") is None
        assert state.connection("j", GROUP, "a") is not None
        assert (state.count_connections("j", USER), state.count_connections("j", GROUP)) == (0, 1)

    def test_connections_of_many_anchors(self, state: BatchingState) -> None:
        for i in range(1100):  # more than one IN-list chunk (512)
            state.save_connection("j", ObjectConnection(USER, f"u{i}", f"t{i}", f"U{i}", active=i % 7 != 0))
        state.save_connection("j", ObjectConnection(GROUP, "u5", "g5", "G"))  # same anchor, other kind
        state.save_connection("k", ObjectConnection(USER, "u6", "other-job", "U"))
        asked = [f"u{i}" for i in range(0, 1100, 2)] + ["nobody", "u4", "u4"]  # duplicates are fine
        got = state.connections_of("j", USER, iter(asked))
        assert set(got) == {f"u{i}" for i in range(0, 1100, 2)}
        for anchor, conn in got.items():
            assert conn == state.connection("j", USER, anchor)
        assert state.connections_of("j", USER, []) == {}
        assert state.connections_of("j", GROUP, ["u5", "u6"]) == {
            "u5": ObjectConnection(GROUP, "u5", "g5", "G")
        }

    def test_connections_stream_by_anchor_across_pages(self, state: BatchingState) -> None:
        names = [f"u{i:05d}" for i in range(1203)]
        with state.batch():
            for name in reversed(names):
                state.save_connection("j", ObjectConnection(USER, name, f"t-{name}", name))
            state.save_connection("j", ObjectConnection(GROUP, "g1", "tg1", "G"))
            state.save_connection("other", ObjectConnection(USER, "zz", "t", "Z"))
        listed = list(state.connections("j", USER))
        assert [c.anchor for c in listed] == names
        assert listed[7] == ObjectConnection(USER, "u00007", "t-u00007", "u00007")
        assert state.count_connections("j", USER) == 1203
        assert [c.anchor for c in state.connections("j", GROUP)] == ["g1"]
        assert list(state.anchors("j", USER)) == names  # the anchors alone, in the same order
        assert list(state.anchors("j", GROUP)) == ["g1"]
        assert list(state.connections("nobody", USER)) == []
        assert list(state.anchors("nobody", USER)) == []
        assert state.count_connections("nobody", USER) == 0

    def test_deleting_while_iterating_connections_is_safe(self, state: BatchingState) -> None:
        for i in range(1100):
            state.save_connection("j", ObjectConnection(USER, f"a{i:04d}", f"t{i}", ""))
        seen = []
        for conn in state.connections("j", USER):
            seen.append(conn.anchor)
            state.delete_connection("j", USER, conn.anchor)
        assert len(seen) == 1100 and seen == sorted(seen)
        assert state.count_connections("j", USER) == 0

    def test_anchors_are_compared_exactly(self, state: BatchingState) -> None:
        state.save_connection("j", ObjectConnection(USER, "Abc", "T1", ""))
        state.save_connection("j", ObjectConnection(USER, "abc", "t1", ""))
        assert state.count_connections("j", USER) == 2
        found = state.connection_by_target("j", USER, "T1")
        assert found is not None and found.anchor == "Abc"
        assert [c.anchor for c in state.connections("j", USER)] == ["Abc", "abc"]
        assert list(state.anchors("j", USER)) == ["Abc", "abc"]

    # -- memberships -------------------------------------------------------------------------------

    def test_members(self, state: BatchingState) -> None:
        assert state.members("j", "g") == set()
        state.add_members("j", "g", iter(["a", "b", "a"]))
        state.add_members("j", "g", ["b", "c"])
        state.add_members("j", "g", [])
        state.add_members("j", "h", ["z"])
        state.add_members("k", "g", ["y"])
        assert state.members("j", "g") == {"a", "b", "c"}
        state.remove_members("j", "g", (m for m in ["a", "nope"]))
        state.remove_members("j", "g", [])
        assert state.members("j", "g") == {"b", "c"}
        assert state.members("j", "h") == {"z"} and state.members("k", "g") == {"y"}
        got = state.members("j", "g")
        got.add("mutated")
        assert state.members("j", "g") == {"b", "c"}  # a copy

    def test_source_members(self, state: BatchingState) -> None:
        assert state.source_members("j", "g1") == set() and state.source_groups_of("j", "a") == set()
        state.set_source_members("j", "g1", iter(["a", "b", "a"]))
        state.set_source_members("j", "g2", ["a"])
        state.set_source_members("j", "G1", ["A"])  # anchors are case-sensitive
        state.set_source_members("k", "g3", ["a"])  # another job
        assert state.source_members("j", "g1") == {"a", "b"}
        assert state.source_groups_of("j", "a") == {"g1", "g2"}
        assert state.source_groups_of("j", "A") == {"G1"} and state.source_groups_of("k", "a") == {"g3"}
        state.set_source_members("j", "g1", ["b", "c"])  # replaced, not merged
        assert state.source_members("j", "g1") == {"b", "c"}
        assert state.source_groups_of("j", "a") == {"g2"} and state.source_groups_of("j", "c") == {"g1"}
        state.set_source_members("j", "g2", [])  # forgotten
        assert state.source_groups_of("j", "a") == set() and state.source_members("j", "g2") == set()
        assert state.members("j", "g1") == set()  # the provisioned memberships are another relation
        got = state.source_members("j", "g1")
        got.add("mutated")
        assert state.source_members("j", "g1") == {"b", "c"}  # a copy
        for anchor in ("a", "b", "c", "A", "nobody"):  # one relation, read both ways
            assert state.source_groups_of("j", anchor) == {
                g for g in ("g1", "g2", "G1") if anchor in state.source_members("j", g)
            }

    # -- escrows -----------------------------------------------------------------------------------

    def test_escrows(self, state: BatchingState) -> None:
        e1 = Escrow(USER, "b", 1, at(2400), "SystemForCrossDomainIdentityManagementBadResponse", "400")
        e2 = Escrow(GROUP, "a", 2, at(4800).astimezone(PARIS), "Ref", "manager", reference=True)
        e3 = Escrow(USER, "a", 1, at(60), "Timeout", "slow")
        for e in (e1, e2, e3):
            state.save_escrow("j", e)
        state.save_escrow("other", e1)
        assert state.escrow("j", GROUP, "a") == e2
        assert state.escrow("j", USER, "zz") is None
        got = state.escrow("j", GROUP, "a")
        assert got is not None and got.next_attempt.utcoffset() == timedelta(0) and got.reference
        assert state.escrows("j") == [e2, e3, e1]  # by (kind, anchor)
        state.save_escrow("j", dataclasses.replace(e1, attempts=2, next_attempt=at(9000)))
        assert state.escrow("j", USER, "b") == dataclasses.replace(e1, attempts=2, next_attempt=at(9000))
        state.clear_escrow("j", USER, "b")
        state.clear_escrow("j", USER, "b")
        assert state.escrows("j") == [e2, e3]
        state.clear_escrows("j")
        assert state.escrows("j") == [] and state.escrows("other") == [e1]

    # -- staged deletes ----------------------------------------------------------------------------

    def test_staged_deletes(self, state: BatchingState) -> None:
        s1 = StagedDelete(USER, "u2", "t2", "Disable", at(1))
        s2 = StagedDelete(USER, "u1", "t1", "Delete", at(1))
        s3 = StagedDelete(GROUP, "g1", "tg", "Delete", at(0).astimezone(PARIS))
        for s in (s1, s2, s3):
            state.stage_delete("j", s)
        state.stage_delete("other", s1)
        assert state.staged_deletes("j") == [s3, s2, s1]  # by (staged, kind, anchor)
        state.stage_delete("j", dataclasses.replace(s1, action="Delete"))
        assert state.staged_deletes("j")[-1].action == "Delete" and len(state.staged_deletes("j")) == 3
        state.clear_staged("j", USER, "u1")
        assert state.staged_deletes("j") == [s3, dataclasses.replace(s1, action="Delete")]
        state.clear_staged("j", GROUP)
        assert [s.anchor for s in state.staged_deletes("j")] == ["u2"]
        state.stage_delete("j", s3)
        state.clear_staged("j", anchor="g1")
        assert [s.anchor for s in state.staged_deletes("j")] == ["u2"]
        state.clear_staged("j")
        assert state.staged_deletes("j") == [] and state.staged_deletes("other") == [s1]

    # -- cycles ------------------------------------------------------------------------------------

    def test_cycles(self, state: BatchingState) -> None:
        first = state.start_cycle("j", CycleKind.INITIAL, at(0).astimezone(PARIS))
        assert first.job == "j" and first.kind is CycleKind.INITIAL and first.started == at(0)
        assert first.started.utcoffset() == timedelta(0)
        assert first.finished is None and first.result is None and dict(first.counts) == {}
        second = state.start_cycle("j", CycleKind.INCREMENTAL, at(100))
        state.start_cycle("other", CycleKind.INITIAL, at(50))
        assert first.id != second.id
        assert state.cycles("j") == [second, first]  # newest first
        done = dataclasses.replace(
            first, finished=at(40), result="Succeeded", counts={"created": 3, "failed": 0}
        )
        state.finish_cycle(done)
        assert state.cycles("j")[1] == done
        assert state.cycles("j", limit=1) == [second]
        assert state.cycles("j", limit=0) == []
        assert len(state.cycles("other")) == 1

    def test_finishing_an_unknown_cycle_raises(self, state: BatchingState) -> None:
        ghost = Cycle("no-such-cycle", "j", CycleKind.INITIAL, at(0), at(1), "Succeeded")
        with pytest.raises(KeyError):
            state.finish_cycle(ghost)
        started = state.start_cycle("j", CycleKind.INITIAL, at(0))
        with pytest.raises(KeyError):  # a cycle of another job
            state.finish_cycle(dataclasses.replace(started, job="other", result="Failed"))
        assert state.cycles("j") == [started]

    def test_cycles_started_at_the_same_time_are_in_start_order(self, state: BatchingState) -> None:
        made = [state.start_cycle("j", CycleKind.INCREMENTAL, at(0)) for _ in range(6)]
        state.start_cycle("j", CycleKind.INCREMENTAL, at(-1))
        assert state.cycles("j", limit=6) == list(reversed(made))

    def test_many_cycles_keep_only_the_newest(self, state: BatchingState) -> None:
        made = [state.start_cycle("j", CycleKind.INCREMENTAL, at(i)) for i in range(25)]
        assert state.cycles("j") == list(reversed(made))[:20]

    # -- logs --------------------------------------------------------------------------------------

    def test_log_round_trip(self, state: BatchingState) -> None:
        rec = record("a", target_id="t", status="Failure")
        rec = dataclasses.replace(rec, time=rec.time.astimezone(PARIS))
        state.append_log("j", rec)
        (got,) = state.logs("j", LogQuery())
        assert got == rec and got.time.utcoffset() == timedelta(0)
        assert got.steps[1].details == {"attempts": 1, "nested": {"a": [1, 2]}}
        assert got.modified == (("userName", None, "a@contoso.com"), ("active", "False", "True"))
        bare = LogRecord("c1", at(1), GROUP, "g", None, "", "Skip", "Skipped")
        state.append_log("j", bare)
        assert list(state.logs("j", LogQuery()))[1] == bare

    def test_log_details_come_back_as_json(self, state: BatchingState) -> None:
        rec = dataclasses.replace(record("a"), steps=(LogStep("Import", "Success", "x", {"t": (1, 2)}),))
        state.append_log("j", rec)
        (got,) = state.logs("j", LogQuery())
        assert got.steps[0].details == {"t": [1, 2]}

    def test_logs_are_in_time_then_insertion_order(self, state: BatchingState) -> None:
        for anchor, seconds in (("late", 5), ("early", 1), ("tie-1", 3), ("tie-2", 3), ("mid", 2)):
            state.append_log("j", record(anchor, seconds=seconds))
        state.append_log("other", record("elsewhere"))
        assert anchors(state.logs("j", LogQuery())) == ["early", "mid", "tie-1", "tie-2", "late"]
        assert anchors(state.logs("other", LogQuery())) == ["elsewhere"]
        assert list(state.logs("nobody", LogQuery())) == []

    def test_log_filters(self, state: BatchingState) -> None:
        rows = [
            record("u1", cycle="c1", seconds=1, target_id="t1", action="Create"),
            record("u2", cycle="c1", seconds=2, target_id="t2", action="Update", status="Failure"),
            record("u3", cycle="c2", seconds=3, target_id="u1", action="Update"),  # target id == u1
            record("u1", cycle="c2", seconds=4, target_id="t1", action="Disable", status="Failure"),
            record("g1", cycle="c2", seconds=5, action="Skip", status="Skipped", kind=GROUP),
        ]
        for r in rows:
            state.append_log("j", r)

        def find(**kwargs: Any) -> list[tuple[str, float]]:
            return [
                (r.source_anchor, (r.time - T0).total_seconds()) for r in state.logs("j", LogQuery(**kwargs))
            ]

        assert find(cycle="c1") == [("u1", 1), ("u2", 2)]
        assert find(action="Update") == [("u2", 2), ("u3", 3)]
        assert find(status="Failure") == [("u2", 2), ("u1", 4)]
        assert find(anchor="u1") == [("u1", 1), ("u3", 3), ("u1", 4)]  # source anchor or target id
        assert find(anchor="t1") == [("u1", 1), ("u1", 4)]
        assert find(anchor="u1", cycle="c2", status="Success") == [("u3", 3)]
        assert find(cycle="c2", status="Failure", action="Disable") == [("u1", 4)]
        assert find(cycle="c9") == [] and find(anchor="nobody") == []
        assert find(limit=2) == [("u1", 1), ("u2", 2)]  # the first N
        assert find(anchor="u1", limit=2) == [("u1", 1), ("u3", 3)]
        assert find(limit=0) == []

    def test_a_record_whose_source_and_target_are_the_anchor_shows_once(self, state: BatchingState) -> None:
        state.append_log("j", record("same", target_id="same"))
        assert len(list(state.logs("j", LogQuery(anchor="same")))) == 1

    def test_logs_stream_across_pages_with_limit(self, state: BatchingState) -> None:
        with state.batch():
            for i in range(1234):
                # three records per time value, appended newest-first within each
                state.append_log("j", record(f"a{i:05d}", seconds=(1234 - i) // 3, target_id=f"t{i % 7}"))
        every = list(state.logs("j", LogQuery()))
        assert len(every) == 1234
        # by time; within a time, by insertion (here: ascending anchors)
        assert every == sorted(every, key=lambda r: (r.time, r.source_anchor))
        assert every[0].source_anchor == "a01232" and every[-1].source_anchor == "a00001"
        assert list(state.logs("j", LogQuery(limit=1001))) == every[:1001]
        assert list(state.logs("j", LogQuery(limit=5000))) == every
        by_target = list(state.logs("j", LogQuery(anchor="t3")))
        assert by_target == [r for r in every if r.target_id == "t3"] and len(by_target) == 176
        matching = list(state.logs("j", LogQuery(cycle="c1", status="Success", limit=600)))
        assert matching == every[:600]

    # -- log retention (2.12) ----------------------------------------------------------------------

    def test_prune_logs_drops_only_older_records_of_the_job(self, state: BatchingState) -> None:
        for anchor, seconds in (("old-1", 1), ("old-2", 2), ("edge", 3), ("new", 4), ("old-0", 0)):
            state.append_log("j", record(anchor, seconds=seconds))
        state.append_log("other", record("elsewhere", seconds=0))
        cycle = state.start_cycle("j", CycleKind.INITIAL, at(0))
        assert state.prune_logs("j", at(3).astimezone(PARIS)) == 3
        assert anchors(state.logs("j", LogQuery())) == ["edge", "new"]  # a record at ``before`` stays
        assert anchors(state.logs("other", LogQuery())) == ["elsewhere"]
        assert state.cycles("j") == [cycle]  # cycles are kept
        assert state.prune_logs("j", at(3)) == 0  # nothing left to prune
        assert state.prune_logs("nobody", at(3)) == 0
        state.append_log("j", record("late", seconds=5))
        assert state.prune_logs("j", at(100)) == 3
        assert list(state.logs("j", LogQuery())) == []
        state.append_log("j", record("again", seconds=0))  # the job logs again afterwards
        assert anchors(state.logs("j", LogQuery())) == ["again"]

    def test_prune_logs_refuses_naive_datetimes(self, state: BatchingState) -> None:
        state.append_log("j", record("a"))
        with pytest.raises(ValueError):
            state.prune_logs("j", datetime(2030, 1, 1))
        assert anchors(state.logs("j", LogQuery())) == ["a"]

    def test_prune_logs_of_many_records(self, state: BatchingState) -> None:
        """More records than one delete chunk of the SQL state; in a batch and outside one."""
        with state.batch():
            for i in range(2345):
                state.append_log("j", record(f"a{i:05d}", seconds=i // 2))
        with state.batch():
            assert state.prune_logs("j", at(500)) == 1000
            assert len(list(state.logs("j", LogQuery(limit=5)))) == 5  # reads see the prune
        assert state.prune_logs("j", at(1100)) == 1200
        left = anchors(state.logs("j", LogQuery()))
        assert left == [f"a{i:05d}" for i in range(2200, 2345)]

    # -- update_job_state: each writer its own fields -----------------------------------------------

    def _full(self, state: BatchingState, job: str = "j") -> JobState:
        q = Quarantine("EncounteredEscrowProportionThreshold", "45%", at(0), at(1), at(21600), 2)
        full = JobState(job, JobStatus.QUARANTINE, "wm", q, True, "c1", at(2), at(3), at(4), "h1")
        state.save_job_state(full)
        return full

    def test_update_job_state_sets_only_the_named_fields(self, state: BatchingState) -> None:
        full = self._full(state)
        after = state.update_job_state("j", JobStateChange(watermark="wm-2", last_cycle_finished=at(9)))
        assert after == dataclasses.replace(full, watermark="wm-2", last_cycle_finished=at(9))
        assert state.job_state("j") == after
        assert state.update_job_state("j", JobStateChange()) == after  # nothing named: nothing changes
        cleared = state.update_job_state("j", JobStateChange(watermark=None, quarantine=None))
        assert cleared == dataclasses.replace(after, watermark=None, quarantine=None)
        assert cleared.status is JobStatus.QUARANTINE  # the status was not named
        assert state.job_state("other") == JobState("other")

    def test_update_job_state_of_a_new_job_starts_from_the_defaults(self, state: BatchingState) -> None:
        got = state.update_job_state("new", JobStateChange(allow_deletes=True, config_hash="h"))
        assert got == JobState("new", allow_deletes=True, config_hash="h")
        assert state.job_state("new") == got
        assert state.update_job_state("blank", JobStateChange()) == JobState("blank")

    def test_update_job_state_round_trips_in_utc(self, state: BatchingState) -> None:
        q = Quarantine("TooManyDeletes", "501", at(0).astimezone(PARIS), at(1), at(2).astimezone(PARIS), 3)
        change = JobStateChange(
            quarantine=q,
            last_cycle_finished=at(5).astimezone(PARIS),
            steady_state_first=at(6),
            steady_state_last=at(7).astimezone(PARIS),
        )
        got = state.update_job_state("j", change)
        assert got == JobState(
            "j", quarantine=q, last_cycle_finished=at(5), steady_state_first=at(6), steady_state_last=at(7)
        )
        assert got.quarantine is not None and got.quarantine.series_count == 3
        for when in (got.last_cycle_finished, got.steady_state_last, got.quarantine.next_attempt):
            assert when is not None and when.utcoffset() == timedelta(0)
        assert state.job_state("j") == got

    def test_update_job_state_sets_the_status_only_from_the_statuses_given(
        self, state: BatchingState
    ) -> None:
        end_of_cycle = JobStateChange(
            status=JobStatus.ACTIVE,
            status_from=frozenset({JobStatus.NOT_RUN, JobStatus.ACTIVE}),
            watermark="w-next",
        )
        assert state.update_job_state("new", end_of_cycle).status is JobStatus.ACTIVE
        for held in (JobStatus.PAUSED, JobStatus.QUARANTINE):
            state.save_job_state(JobState("j", held, "w-old"))
            got = state.update_job_state("j", end_of_cycle)
            assert got == JobState("j", held, "w-next")  # the rest of the change is made
        state.save_job_state(JobState("j", JobStatus.PAUSED))
        never = JobStateChange(status=JobStatus.ACTIVE, status_from=frozenset(), allow_deletes=True)
        assert state.update_job_state("j", never) == JobState("j", JobStatus.PAUSED, allow_deletes=True)
        anyway = JobStateChange(status=JobStatus.ACTIVE)
        assert state.update_job_state("j", anyway).status is JobStatus.ACTIVE

    def test_update_job_state_sets_the_watermark_only_over_the_one_given(self, state: BatchingState) -> None:
        """A cycle's end over a restart made while it ran: the cleared watermark stands."""
        end = JobStateChange(watermark="w-2", watermark_was="w-1", last_cycle="c2")
        state.save_job_state(JobState("j", JobStatus.ACTIVE, "w-1"))
        assert state.update_job_state("j", end) == JobState("j", JobStatus.ACTIVE, "w-2", last_cycle="c2")
        state.save_job_state(JobState("j", JobStatus.ACTIVE, "w-1"))
        state.reset("j", watermark=True, escrows=False, quarantine=False, connections=False)
        got = state.update_job_state("j", end)
        assert got == JobState("j", JobStatus.ACTIVE, None, last_cycle="c2")  # the rest is written
        assert state.job_state("j") == got
        # from no watermark (an initial cycle): set when there is still none
        first = JobStateChange(watermark="w-1", watermark_was=None)
        assert state.update_job_state("j", first).watermark == "w-1"
        assert state.update_job_state("j", first).watermark == "w-1"  # "w-1" is not None: kept
        assert state.update_job_state("new", first).watermark == "w-1"

    def test_writers_of_different_fields_keep_each_others(self, state: BatchingState) -> None:
        """A cycle's end and an admin command, interleaved: neither undoes the other."""
        full = self._full(state)
        state.update_job_state("j", JobStateChange(status=JobStatus.PAUSED))  # `provisor pause`
        state.update_job_state("j", JobStateChange(watermark="wm-2", last_cycle="c2"))  # the cycle
        state.update_job_state("j", JobStateChange(allow_deletes=False))  # the cycle released deletes
        state.update_job_state("j", JobStateChange(quarantine=None))  # restart QuarantineState
        assert state.job_state("j") == dataclasses.replace(
            full,
            status=JobStatus.PAUSED,
            watermark="wm-2",
            last_cycle="c2",
            allow_deletes=False,
            quarantine=None,
        )

    def test_update_job_state_refuses_naive_datetimes_and_writes_nothing(self, state: BatchingState) -> None:
        full = self._full(state)
        naive = datetime(2025, 1, 1)
        for change in (
            JobStateChange(watermark="x", last_cycle_finished=naive),
            JobStateChange(status=JobStatus.ACTIVE, quarantine=Quarantine("r", "e", naive, at(0), at(0))),
        ):
            with pytest.raises(ValueError):
                state.update_job_state("j", change)
        assert state.job_state("j") == full
        with pytest.raises(ValueError):
            state.update_job_state("fresh", JobStateChange(steady_state_last=naive))
        assert state.job_state("fresh") == JobState("fresh")

    def test_update_job_state_in_a_batch(self, state: BatchingState) -> None:
        with state.batch():
            state.update_job_state("j", JobStateChange(watermark="in-batch"))
            assert state.job_state("j").watermark == "in-batch"
        assert state.job_state("j") == JobState("j", watermark="in-batch")

    # -- runner lease ------------------------------------------------------------------------------

    def test_lease_is_taken_when_free_and_refused_while_another_holds_it(self, state: BatchingState) -> None:
        mine = state.acquire_lease("j", "a", now=at(0), expires=at(60).astimezone(PARIS))
        assert mine == RunnerLease("j", "a", at(60)) and mine.expires.utcoffset() == timedelta(0)
        theirs = state.acquire_lease("j", "b", now=at(59), expires=at(120))
        assert theirs == RunnerLease("j", "a", at(60))  # still a's: b did not get it
        assert state.acquire_lease("k", "b", now=at(59), expires=at(120)) == RunnerLease("k", "b", at(120))

    def test_lease_is_renewed_by_its_owner(self, state: BatchingState) -> None:
        state.acquire_lease("j", "a", now=at(0), expires=at(60))
        assert state.acquire_lease("j", "a", now=at(30), expires=at(90)) == RunnerLease("j", "a", at(90))
        assert state.acquire_lease("j", "b", now=at(60), expires=at(120)).owner == "a"
        # an owner renews even a lease that ran out, while nobody else took it
        assert state.acquire_lease("j", "a", now=at(200), expires=at(260)) == RunnerLease("j", "a", at(260))

    def test_an_expired_lease_is_taken_over(self, state: BatchingState) -> None:
        state.acquire_lease("j", "dead", now=at(0), expires=at(60))
        assert state.acquire_lease("j", "b", now=at(60), expires=at(120)) == RunnerLease("j", "b", at(120))
        # the old holder comes back: the lease is b's now
        assert state.acquire_lease("j", "dead", now=at(61), expires=at(121)).owner == "b"

    def test_release_lease(self, state: BatchingState) -> None:
        state.acquire_lease("j", "a", now=at(0), expires=at(60))
        state.release_lease("j", "b")  # not b's: nothing happens
        assert state.acquire_lease("j", "b", now=at(1), expires=at(61)).owner == "a"
        state.release_lease("j", "a")
        state.release_lease("j", "a")  # again: nothing happens
        state.release_lease("nobody", "a")
        assert state.acquire_lease("j", "b", now=at(1), expires=at(61)) == RunnerLease("j", "b", at(61))

    def test_the_lease_as_stored(self, state: BatchingState) -> None:
        assert state.lease("j") is None
        state.acquire_lease("j", "a", now=at(0), expires=at(60))
        state.acquire_lease("j", "b", now=at(30), expires=at(90))  # refused: still a's
        assert state.lease("j") == RunnerLease("j", "a", at(60))
        state.acquire_lease("j", "b", now=at(60), expires=at(120))  # expired: taken over
        assert state.lease("j") == RunnerLease("j", "b", at(120)) and state.lease("k") is None
        state.release_lease("j", "b")
        assert state.lease("j") is None

    def test_lease_refuses_naive_datetimes(self, state: BatchingState) -> None:
        with pytest.raises(ValueError):
            state.acquire_lease("j", "a", now=datetime(2025, 1, 1), expires=at(60))
        with pytest.raises(ValueError):
            state.acquire_lease("j", "a", now=at(0), expires=datetime(2025, 1, 1))
        assert state.acquire_lease("j", "b", now=at(0), expires=at(60)).owner == "b"

    # -- reset (2.10) ------------------------------------------------------------------------------

    def _populate(self, state: BatchingState, job: str) -> JobState:
        q = Quarantine("EncounteredEscrowProportionThreshold", "45%", at(0), at(0), at(21600))
        full = JobState(
            job, JobStatus.QUARANTINE, "wm", q, allow_deletes=True, last_cycle="c", config_hash="h"
        )
        state.save_job_state(full)
        state.save_connection(job, ObjectConnection(USER, "u", "t", "U"))
        state.save_connection(job, ObjectConnection(GROUP, "g", "tg", "G"))
        state.add_members(job, "g", ["u"])
        state.set_source_members(job, "g", ["u", "out-of-scope"])
        state.save_escrow(job, Escrow(USER, "u", 1, at(60), "E", "m"))
        state.stage_delete(job, StagedDelete(USER, "u", "t", "Delete", at(0)))
        state.start_cycle(job, CycleKind.INITIAL, at(0))
        state.append_log(job, record("u", target_id="t"))
        return full

    def _untouched(self, state: BatchingState, job: str) -> None:
        assert len(state.staged_deletes(job)) == 1
        assert len(state.cycles(job)) == 1
        assert len(list(state.logs(job, LogQuery()))) == 1

    def test_reset_watermark_only(self, state: BatchingState) -> None:
        full = self._populate(state, "j")
        state.reset("j", watermark=True, escrows=False, quarantine=False, connections=False)
        assert state.job_state("j") == dataclasses.replace(full, watermark=None)
        assert len(state.escrows("j")) == 1 and state.count_connections("j", USER) == 1
        self._untouched(state, "j")

    def test_reset_escrows_only(self, state: BatchingState) -> None:
        full = self._populate(state, "j")
        state.reset("j", watermark=False, escrows=True, quarantine=False, connections=False)
        assert state.job_state("j") == full and state.escrows("j") == []
        self._untouched(state, "j")

    def test_reset_quarantine_lifts_it(self, state: BatchingState) -> None:
        full = self._populate(state, "j")
        state.reset("j", watermark=False, escrows=False, quarantine=True, connections=False)
        assert state.job_state("j") == dataclasses.replace(full, quarantine=None, status=JobStatus.ACTIVE)
        paused = JobState("p", JobStatus.PAUSED, "w", Quarantine("r", "e", at(0), at(0), at(1)))
        state.save_job_state(paused)
        state.reset("p", watermark=False, escrows=False, quarantine=True, connections=False)
        assert state.job_state("p") == JobState("p", JobStatus.PAUSED, "w")  # only Quarantine -> Active
        self._untouched(state, "j")

    def test_portal_restart_keeps_connections(self, state: BatchingState) -> None:
        full = self._populate(state, "j")
        state.reset("j", watermark=True, escrows=True, quarantine=True, connections=False)
        after = state.job_state("j")
        assert after == dataclasses.replace(full, watermark=None, quarantine=None, status=JobStatus.ACTIVE)
        assert after.allow_deletes and after.config_hash == "h"
        assert state.escrows("j") == [] and state.connection("j", USER, "u") is not None
        assert state.members("j", "g") == {"u"}
        self._untouched(state, "j")

    def test_full_reset_forgets_connections_and_memberships(self, state: BatchingState) -> None:
        self._populate(state, "j")
        self._populate(state, "k")
        state.reset("j", watermark=True, escrows=True, quarantine=True, connections=True)
        assert state.count_connections("j", USER) == 0 and state.count_connections("j", GROUP) == 0
        assert state.connection_by_target("j", USER, "t") is None
        assert state.members("j", "g") == set() and state.source_members("j", "g") == set()
        self._untouched(state, "j")
        # the other job keeps everything
        assert state.count_connections("k", USER) == 1 and state.members("k", "g") == {"u"}
        assert state.source_groups_of("k", "out-of-scope") == {"g"}
        assert state.job_state("k").watermark == "wm" and len(state.escrows("k")) == 1
        state.save_connection("j", ObjectConnection(USER, "u", "t2", "U"))  # connections start again
        assert state.connection_by_target("j", USER, "t2") is not None

    def test_reset_of_an_unknown_job_does_nothing(self, state: BatchingState) -> None:
        state.reset("ghost", watermark=True, escrows=True, quarantine=True, connections=True)
        assert state.job_state("ghost") == JobState("ghost")

    # -- batch -------------------------------------------------------------------------------------

    def test_batch_reads_its_own_writes(self, state: BatchingState) -> None:
        with state.batch():
            state.save_connection("j", ObjectConnection(USER, "a", "t", "A"))
            assert state.connection("j", USER, "a") is not None
            with state.batch():  # nested: joins
                state.add_members("j", "g", ["a"])
            assert state.members("j", "g") == {"a"}
            state.append_log("j", record("a"))
            assert len(list(state.logs("j", LogQuery()))) == 1
        assert state.connection_by_target("j", USER, "t") is not None
        assert state.members("j", "g") == {"a"}

    def test_an_exception_in_a_batch_keeps_the_writes_that_returned(self, state: BatchingState) -> None:
        with pytest.raises(RuntimeError, match="target down"), state.batch():
            state.save_connection("j", ObjectConnection(USER, "a", "t", "A"))
            raise RuntimeError("target down")
        assert state.connection("j", USER, "a") is not None
        state.save_connection("j", ObjectConnection(USER, "b", "t2", "B"))  # usable afterwards
        assert state.count_connections("j", USER) == 2


# -- differential testing --------------------------------------------------------------------------

#: An operation for :func:`apply`: (method name, positional arguments).
Operation = tuple[str, tuple[Any, ...]]


def apply(state: EngineState, op: Operation) -> Any:
    """Run one operation; its result, or the type of the exception it raised."""
    name, args = op
    try:
        result = getattr(state, name)(*args)
    except (KeyError, ValueError) as exc:
        return type(exc)
    if name in ("connections", "logs"):
        return list(result)
    if name == "start_cycle":
        return (result.job, result.kind, result.started)  # ids are random
    return result


def observe(
    state: EngineState,
    jobs: Sequence[str],
    anchors: Sequence[str] = (),
    targets: Sequence[str] = (),
) -> dict[str, Any]:
    """Everything a state shows about ``jobs`` (cycle ids left out: they are random).

    With ``anchors`` and ``targets`` (the small key space of a generated test), every point lookup
    over them too: connections by anchor and by target, escrows, group members.
    """
    seen: dict[str, Any] = {}
    for job in jobs:
        seen[job] = {
            "job": state.job_state(job),
            "connections": {k: list(state.connections(job, k)) for k in ObjectKind},
            "counts": {k: state.count_connections(job, k) for k in ObjectKind},
            "escrows": state.escrows(job),
            "staged": state.staged_deletes(job),
            "cycles": [dataclasses.replace(c, id="") for c in state.cycles(job, 100)],
            "logs": list(state.logs(job, LogQuery())),
            "by_anchor": {(k, a): state.connection(job, k, a) for k in ObjectKind for a in anchors},
            "by_target": {(k, t): state.connection_by_target(job, k, t) for k in ObjectKind for t in targets},
            "escrow": {(k, a): state.escrow(job, k, a) for k in ObjectKind for a in anchors},
            "members": {a: state.members(job, a) for a in anchors},
        }
    return seen
