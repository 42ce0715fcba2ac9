"""``MemoryEngineState``: the in-memory twin of the engine's state port (engine/state.py).

It behaves as ``provisor.store.sql.engine_state.SqlEngineState`` does (the contract suite in
``provisor.engine.state_contract`` runs against both), so engine unit tests can use it:

* datetimes must be tz-aware; they come back in UTC;
* log steps' ``details`` and cycle ``counts`` go through JSON on the way in, as they would through
  a database (a tuple comes back a list; what JSON cannot hold is refused on write);
* orders: connections by anchor; ``connection_by_target`` picks the smallest anchor when several
  share a target id; escrows by (kind, anchor); staged deletes by (staged, kind, anchor); cycles
  newest first (by started, then start order); logs by (time, insertion) with ``limit`` keeping the first N;
* ``prune_logs(job, before)`` drops the job's records with ``time < before`` and says how many.
* a runner lease is free once ``expires <= now`` (``now`` as the caller gives it).

Everything is held in dicts under one lock: nothing survives the process. ``batch()`` exists for
parity and does nothing (every write is immediately visible).
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson

from provisor.engine.model import ObjectKind
from provisor.engine.state import (
    Cycle,
    CycleKind,
    Escrow,
    JobState,
    JobStateChange,
    JobStatus,
    LogQuery,
    LogRecord,
    LogStep,
    ObjectConnection,
    RunnerLease,
    StagedDelete,
)

_Key = tuple[str, ObjectKind, str]  # (job, kind, anchor)


def utc(when: datetime) -> datetime:
    """A tz-aware datetime in UTC; naive datetimes are refused (as the SQL state refuses them)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"engine state needs tz-aware datetimes, got {when!r}")
    return when.astimezone(UTC)


def _opt_utc(when: datetime | None) -> datetime | None:
    return None if when is None else utc(when)


def _through_json(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def _normal(state: JobState) -> JobState:
    """A job state as stored: datetimes in UTC (naive ones refused), the status an enum."""
    q = state.quarantine
    if q is not None:
        q = dataclasses.replace(
            q,
            series_began=utc(q.series_began),
            current_began=utc(q.current_began),
            next_attempt=utc(q.next_attempt),
        )
    return dataclasses.replace(
        state,
        status=JobStatus(state.status),
        quarantine=q,
        last_cycle_finished=_opt_utc(state.last_cycle_finished),
        steady_state_first=_opt_utc(state.steady_state_first),
        steady_state_last=_opt_utc(state.steady_state_last),
    )


class MemoryEngineState:
    """Engine state in dicts; implements ``EngineState``. Thread-safe (one lock)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._jobs: dict[str, JobState] = {}
        self._leases: dict[str, RunnerLease] = {}
        self._connections: dict[_Key, ObjectConnection] = {}
        #: (job, kind) -> sorted anchors, for ordered iteration.
        self._anchors: dict[tuple[str, ObjectKind], list[str]] = {}
        #: (job, kind, target_id) -> anchors connected to it.
        self._by_target: dict[_Key, set[str]] = {}
        self._members: dict[tuple[str, str], set[str]] = {}
        self._source_members: dict[tuple[str, str], set[str]] = {}
        self._escrows: dict[_Key, Escrow] = {}
        self._staged: dict[_Key, StagedDelete] = {}
        self._cycles: dict[str, tuple[int, Cycle]] = {}  # id -> (start order, cycle)
        self._logs: dict[str, list[tuple[datetime, int, LogRecord]]] = {}
        self._seq = 0
        self.closed = False

    def close(self) -> None:
        """Nothing to release; marks the state closed (for tests of the composition root)."""
        self.closed = True

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit, for parity with the SQL state: writes here are visible immediately."""
        yield

    # -- job ---------------------------------------------------------------------------------------

    def job_state(self, job: str) -> JobState:
        with self._lock:
            return self._jobs.get(job) or JobState(job=job)

    def save_job_state(self, state: JobState) -> None:
        normal = _normal(state)
        with self._lock:
            self._jobs[state.job] = normal

    def update_job_state(self, job: str, change: JobStateChange) -> JobState:
        """Set the fields ``change`` names under the lock (see ``EngineState.update_job_state``)."""
        with self._lock:
            updated = _normal(change.apply(self._jobs.get(job) or JobState(job=job)))
            self._jobs[job] = updated
            return updated

    # -- runner lease ------------------------------------------------------------------------------

    def acquire_lease(self, job: str, owner: str, *, now: datetime, expires: datetime) -> RunnerLease:
        now, expires = utc(now), utc(expires)
        with self._lock:
            held = self._leases.get(job)
            if held is None or held.owner == owner or held.expires <= now:
                held = self._leases[job] = RunnerLease(job, owner, expires)
            return held

    def release_lease(self, job: str, owner: str) -> None:
        with self._lock:
            held = self._leases.get(job)
            if held is not None and held.owner == owner:
                del self._leases[job]

    def lease(self, job: str) -> RunnerLease | None:
        with self._lock:
            return self._leases.get(job)

    # -- object connections ------------------------------------------------------------------------

    def connection(self, job: str, kind: ObjectKind, anchor: str) -> ObjectConnection | None:
        with self._lock:
            return self._connections.get((job, ObjectKind(kind), anchor))

    def connections_of(
        self, job: str, kind: ObjectKind, anchors: Iterable[str]
    ) -> dict[str, ObjectConnection]:
        with self._lock:
            found = (self._connections.get((job, ObjectKind(kind), a)) for a in anchors)
            return {c.anchor: c for c in found if c is not None}

    def connection_by_target(self, job: str, kind: ObjectKind, target_id: str) -> ObjectConnection | None:
        kind = ObjectKind(kind)
        with self._lock:
            anchors = self._by_target.get((job, kind, target_id))
            return self._connections[(job, kind, min(anchors))] if anchors else None

    def save_connection(self, job: str, connection: ObjectConnection) -> None:
        kind = ObjectKind(connection.kind)
        connection = dataclasses.replace(connection, kind=kind)
        key = (job, kind, connection.anchor)
        with self._lock:
            old = self._connections.get(key)
            if old is None:
                bisect.insort(self._anchors.setdefault((job, kind), []), connection.anchor)
            else:
                self._unindex_target(job, old)
            self._connections[key] = connection
            self._by_target.setdefault((job, kind, connection.target_id), set()).add(connection.anchor)

    def _unindex_target(self, job: str, old: ObjectConnection) -> None:
        target_key = (job, old.kind, old.target_id)
        anchors = self._by_target[target_key]
        anchors.discard(old.anchor)
        if not anchors:
            del self._by_target[target_key]

    def delete_connection(self, job: str, kind: ObjectKind, anchor: str) -> None:
        kind = ObjectKind(kind)
        with self._lock:
            old = self._connections.pop((job, kind, anchor), None)
            if old is None:
                return
            self._unindex_target(job, old)
            anchors = self._anchors[(job, kind)]
            del anchors[bisect.bisect_left(anchors, anchor)]

    def connections(self, job: str, kind: ObjectKind) -> Iterator[ObjectConnection]:
        kind = ObjectKind(kind)
        with self._lock:
            anchors = list(self._anchors.get((job, kind), ()))
        for anchor in anchors:
            with self._lock:
                found = self._connections.get((job, kind, anchor))
            if found is not None:  # deleted meanwhile
                yield found

    def anchors(self, job: str, kind: ObjectKind) -> Iterator[str]:
        for conn in self.connections(job, kind):
            yield conn.anchor

    def count_connections(self, job: str, kind: ObjectKind) -> int:
        with self._lock:
            return len(self._anchors.get((job, ObjectKind(kind)), ()))

    # -- provisioned memberships -------------------------------------------------------------------

    def members(self, job: str, group_anchor: str) -> set[str]:
        with self._lock:
            return set(self._members.get((job, group_anchor), ()))

    def lapsed_members(self, job: str, group_anchor: str) -> set[str]:
        with self._lock:
            return {
                anchor
                for anchor in self._members.get((job, group_anchor), ())
                if (c := self._connections.get((job, ObjectKind.USER, anchor))) is None or not c.active
            }

    def source_members(self, job: str, group_anchor: str) -> set[str]:
        with self._lock:
            return set(self._source_members.get((job, group_anchor), ()))

    def set_source_members(self, job: str, group_anchor: str, member_anchors: Iterable[str]) -> None:
        members = set(member_anchors)
        with self._lock:
            if members:
                self._source_members[(job, group_anchor)] = members
            else:
                self._source_members.pop((job, group_anchor), None)

    def source_groups_of(self, job: str, member_anchor: str) -> set[str]:
        with self._lock:  # a scan: this state serves tests and small jobs
            return {
                g for (j, g), members in self._source_members.items() if j == job and member_anchor in members
            }

    def add_members(self, job: str, group_anchor: str, member_anchors: Iterable[str]) -> None:
        added = list(member_anchors)
        if added:
            with self._lock:
                self._members.setdefault((job, group_anchor), set()).update(added)

    def remove_members(self, job: str, group_anchor: str, member_anchors: Iterable[str]) -> None:
        removed = list(member_anchors)
        with self._lock:
            current = self._members.get((job, group_anchor))
            if current is not None:
                current.difference_update(removed)
                if not current:
                    del self._members[(job, group_anchor)]

    # -- escrows -----------------------------------------------------------------------------------

    def escrow(self, job: str, kind: ObjectKind, anchor: str) -> Escrow | None:
        with self._lock:
            return self._escrows.get((job, ObjectKind(kind), anchor))

    def save_escrow(self, job: str, escrow: Escrow) -> None:
        escrow = dataclasses.replace(
            escrow, kind=ObjectKind(escrow.kind), next_attempt=utc(escrow.next_attempt)
        )
        with self._lock:
            self._escrows[(job, escrow.kind, escrow.anchor)] = escrow

    def clear_escrow(self, job: str, kind: ObjectKind, anchor: str) -> None:
        with self._lock:
            self._escrows.pop((job, ObjectKind(kind), anchor), None)

    def escrows(self, job: str) -> list[Escrow]:
        with self._lock:
            found = [e for (j, _, _), e in self._escrows.items() if j == job]
        return sorted(found, key=lambda e: (e.kind.value, e.anchor))

    def clear_escrows(self, job: str) -> None:
        with self._lock:
            for key in [k for k in self._escrows if k[0] == job]:
                del self._escrows[key]

    # -- staged deletes ----------------------------------------------------------------------------

    def stage_delete(self, job: str, staged: StagedDelete) -> None:
        staged = dataclasses.replace(staged, kind=ObjectKind(staged.kind), staged=utc(staged.staged))
        with self._lock:
            self._staged[(job, staged.kind, staged.anchor)] = staged

    def staged_deletes(self, job: str) -> list[StagedDelete]:
        with self._lock:
            found = [s for (j, _, _), s in self._staged.items() if j == job]
        return sorted(found, key=lambda s: (s.staged, s.kind.value, s.anchor))

    def clear_staged(self, job: str, kind: ObjectKind | None = None, anchor: str | None = None) -> None:
        with self._lock:
            for key in [
                k
                for k in self._staged
                if k[0] == job
                and (kind is None or k[1] == ObjectKind(kind))
                and (anchor is None or k[2] == anchor)
            ]:
                del self._staged[key]

    # -- cycles and logs ---------------------------------------------------------------------------

    def start_cycle(self, job: str, kind: CycleKind, started: datetime) -> Cycle:
        cycle = Cycle(id=str(uuid.uuid4()), job=job, kind=CycleKind(kind), started=utc(started))
        with self._lock:
            self._seq += 1
            self._cycles[cycle.id] = (self._seq, cycle)
        return cycle

    def finish_cycle(self, cycle: Cycle) -> None:
        counts = _through_json(dict(cycle.counts))
        with self._lock:
            seq, known = self._cycles.get(cycle.id, (0, None))
            if known is None or known.job != cycle.job:
                raise KeyError(f"no cycle {cycle.id!r} for job {cycle.job!r}")
            self._cycles[cycle.id] = (
                seq,
                dataclasses.replace(
                    known, finished=_opt_utc(cycle.finished), result=cycle.result, counts=counts
                ),
            )

    def cycles(self, job: str, limit: int = 20) -> list[Cycle]:
        with self._lock:
            found = [(c.started, seq, c) for seq, c in self._cycles.values() if c.job == job]
        found.sort(key=lambda e: (e[0], e[1]), reverse=True)
        return [c for _, _, c in found[: max(limit, 0)]]

    def append_log(self, job: str, record: LogRecord) -> None:
        steps = tuple(
            LogStep(s.type, s.status, s.description, _through_json(dict(s.details))) for s in record.steps
        )
        modified = tuple((str(a), old, new) for a, old, new in _through_json(list(record.modified)))
        record = dataclasses.replace(
            record,
            time=utc(record.time),
            kind=ObjectKind(record.kind),
            steps=steps,
            modified=modified,
            duration_ms=float(record.duration_ms),
        )
        with self._lock:
            self._seq += 1
            # (time, seq) is unique, so records themselves are never compared.
            bisect.insort(self._logs.setdefault(job, []), (record.time, self._seq, record))

    def logs(self, job: str, query: LogQuery) -> Iterator[LogRecord]:
        with self._lock:
            entries = list(self._logs.get(job, ()))
        remaining = query.limit
        if remaining is not None and remaining <= 0:
            return
        for _, _, record in entries:
            if (
                (query.cycle is not None and record.cycle != query.cycle)
                or (query.action is not None and record.action != query.action)
                or (query.status is not None and record.status != query.status)
                or (query.anchor is not None and query.anchor not in (record.source_anchor, record.target_id))
            ):
                continue
            yield record
            if remaining is not None:
                remaining -= 1
                if remaining == 0:
                    return

    def prune_logs(self, job: str, before: datetime) -> int:
        """Drop the job's records older than ``before`` (see ``SqlEngineState.prune_logs``)."""
        before = utc(before)
        with self._lock:
            entries = self._logs.get(job)
            if not entries:
                return 0
            cut = bisect.bisect_left(entries, before, key=lambda e: e[0])  # records at ``before`` stay
            del entries[:cut]
            return cut

    # -- restart (2.10) ----------------------------------------------------------------------------

    def reset(self, job: str, *, watermark: bool, escrows: bool, quarantine: bool, connections: bool) -> None:
        """Clear state by Graph restart scope (see ``SqlEngineState.reset``)."""
        with self._lock:
            state = self._jobs.get(job)
            if state is not None:
                if watermark:
                    state = dataclasses.replace(state, watermark=None)
                if quarantine:
                    status = JobStatus.ACTIVE if state.status is JobStatus.QUARANTINE else state.status
                    state = dataclasses.replace(state, quarantine=None, status=status)
                self._jobs[job] = state
            if escrows:
                self.clear_escrows(job)
            if connections:
                for key in [k for k in self._connections if k[0] == job]:
                    del self._connections[key]
                for anchor_key in [k for k in self._anchors if k[0] == job]:
                    del self._anchors[anchor_key]
                for target_key in [k for k in self._by_target if k[0] == job]:
                    del self._by_target[target_key]
                for member_key in [k for k in self._members if k[0] == job]:
                    del self._members[member_key]
                for member_key in [k for k in self._source_members if k[0] == job]:
                    del self._source_members[member_key]
