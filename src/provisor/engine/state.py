"""The engine's persistent state, as a port (entra-behaviour.md 2.4, 2.5, 2.7-2.10, 2.12).

Per job: object connections (source anchor <-> target id), the group memberships the engine has
provisioned, the watermark, escrows (per-object failures retried with backoff), quarantine,
staged deletes held by the deletion threshold, cycles and provisioning log records (kept for the
job's retention period, 30 days by default, then pruned), and the runner lease that keeps two
processes from running the job's cycles at once. Every write is
committed when it returns, so a cycle killed at any point resumes with what was done (issue 3,
item 6: "each object connection is committed as its object is done").

The job's state has several writers: a running cycle (watermark, last cycle, steady state), the
admin commands from another shell (status, allow-deletes, restart scopes) and the quarantine
rules. Each changes only the fields it owns with :meth:`EngineState.update_job_state`, one atomic
write, so none writes back a stale copy of another's fields.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, Literal, Protocol

from provisor.engine.model import ObjectKind


class JobStatus(enum.StrEnum):
    """Graph ``synchronizationStatus.code`` values (2.1)."""

    NOT_RUN = "NotRun"
    ACTIVE = "Active"
    PAUSED = "Paused"
    QUARANTINE = "Quarantine"


class CycleKind(enum.StrEnum):
    INITIAL = "Initial"
    INCREMENTAL = "Incremental"


@dataclass(frozen=True, slots=True)
class ObjectConnection:
    """A source object the engine manages and its account in the target (OBJCONN, 2.4)."""

    kind: ObjectKind
    anchor: str
    target_id: str
    display: str = ""
    #: False once the engine has disabled (soft-deprovisioned) the account.
    active: bool = True


@dataclass(frozen=True, slots=True)
class Escrow:
    """A failed object, retried in later cycles with growing intervals (2.8)."""

    kind: ObjectKind
    anchor: str
    attempts: int
    next_attempt: datetime
    code: str
    message: str
    reference: bool = False  # a manager or membership failure (counted apart for quarantine, 2.9)


@dataclass(frozen=True, slots=True)
class StagedDelete:
    """A disable or delete held back by the accidental-deletion threshold (2.7)."""

    kind: ObjectKind
    anchor: str
    target_id: str
    action: str  # "Disable" or "Delete"
    staged: datetime


@dataclass(frozen=True, slots=True)
class Quarantine:
    """G-QUAR: why and since when the job is quarantined, and when it tries again."""

    reason: str
    error: str
    series_began: datetime
    current_began: datetime
    next_attempt: datetime
    series_count: int = 1


@dataclass(frozen=True, slots=True)
class JobState:
    job: str
    status: JobStatus = JobStatus.NOT_RUN
    watermark: str | None = None
    quarantine: Quarantine | None = None
    allow_deletes: bool = False  # "Allow deletes" / restart scope ForceDeletes (2.7, 2.10)
    last_cycle: str | None = None
    last_cycle_finished: datetime | None = None
    steady_state_first: datetime | None = None
    steady_state_last: datetime | None = None
    #: Content hash of the job's mappings and scope; a change forces a new initial cycle (2.5).
    config_hash: str | None = None


class _Keep(enum.Enum):
    KEEP = "keep"


#: A :class:`JobStateChange` field left as stored.
KEEP: Final = _Keep.KEEP
Keep = Literal[_Keep.KEEP]


@dataclass(frozen=True, slots=True)
class JobStateChange:
    """The fields of a job's state one writer sets; every field left ``KEEP`` stays as stored.

    ``status`` is set only when the stored status is in ``status_from`` (when given): e.g. the end
    of a cycle moves the job to Active from NotRun or Active, but leaves a pause or a quarantine
    written while it ran. Likewise ``watermark`` is set only when the stored watermark is still
    ``watermark_was`` (when given): a cycle's new watermark does not undo a restart (2.10) that
    cleared the watermark while the cycle ran.
    """

    status: JobStatus | Keep = KEEP
    status_from: frozenset[JobStatus] | None = None
    watermark: str | Keep | None = KEEP
    watermark_was: str | Keep | None = KEEP
    quarantine: Quarantine | Keep | None = KEEP
    allow_deletes: bool | Keep = KEEP
    last_cycle: str | Keep | None = KEEP
    last_cycle_finished: datetime | Keep | None = KEEP
    steady_state_first: datetime | Keep | None = KEEP
    steady_state_last: datetime | Keep | None = KEEP
    config_hash: str | Keep | None = KEEP

    def named(self) -> dict[str, Any]:
        """Every field this change sets, by name (``status`` whatever ``status_from`` says)."""
        return {name: value for name in JOB_STATE_FIELDS if (value := getattr(self, name)) is not KEEP}

    def changes(self, stored: JobState) -> dict[str, Any]:
        """The fields this change sets on ``stored``, by name (the status only when it applies)."""
        found = self.named()
        if "status" in found:
            if self.status_from is None or stored.status in self.status_from:
                found["status"] = JobStatus(found["status"])
            else:
                del found["status"]
        if "watermark" in found and self.watermark_was is not KEEP and stored.watermark != self.watermark_was:
            del found["watermark"]
        return found

    def apply(self, stored: JobState) -> JobState:
        """``stored`` with this change made."""
        return replace(stored, **self.changes(stored))


#: The fields of :class:`JobState` a :class:`JobStateChange` can set (all but ``job``).
JOB_STATE_FIELDS: Final = (
    "status",
    "watermark",
    "quarantine",
    "allow_deletes",
    "last_cycle",
    "last_cycle_finished",
    "steady_state_first",
    "steady_state_last",
    "config_hash",
)


@dataclass(frozen=True, slots=True)
class RunnerLease:
    """Who runs the job's cycles, until when (renewed while that process lives).

    A process that dies (kill -9, a crashed host) stops renewing: its lease expires and another
    process may take the job. ``owner`` says who, for an admin (e.g. ``provisor run pid 4242 on
    host-1 [3f9c2a1b]``); it is unique per process.
    """

    job: str
    owner: str
    expires: datetime


@dataclass(frozen=True, slots=True)
class Cycle:
    id: str
    job: str
    kind: CycleKind
    started: datetime
    finished: datetime | None = None
    result: str | None = None  # Succeeded / EntryLevelErrors / Failed / Interrupted (engine.schedule)
    counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LogStep:
    """G-STEP: one step of an object's processing (import, scoping, matching, processing,
    referenceResolution, export) with its status and details."""

    type: str
    status: str
    description: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One provisioning log entry (2.12): one per object per cycle. Immutable once written."""

    cycle: str
    time: datetime
    kind: ObjectKind
    source_anchor: str
    target_id: str | None
    display: str
    action: str  # Create / Update / Disable / Delete / Skip / StagedDelete
    status: str  # Success / Failure / Skipped / Warning
    reason: str = ""
    steps: tuple[LogStep, ...] = ()
    modified: tuple[tuple[str, str | None, str | None], ...] = ()  # (attribute, old, new)
    error: str = ""
    duration_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class LogQuery:
    cycle: str | None = None
    action: str | None = None
    status: str | None = None
    anchor: str | None = None  # source anchor or target id
    limit: int | None = None


class EngineState(Protocol):
    """Persistent state of provisioning jobs; every method commits before it returns."""

    # -- job ---------------------------------------------------------------------------------
    def job_state(self, job: str) -> JobState: ...
    def save_job_state(self, state: JobState) -> None:
        """Replace the job's whole state (set-up, imports, tests). Writers that share the job
        with others (cycles, admin commands) use :meth:`update_job_state` instead."""
        ...

    def update_job_state(self, job: str, change: JobStateChange) -> JobState:
        """Set the fields ``change`` names (and only those) in one atomic write; the job's state
        after it. A job never saved starts from the defaults. Naive datetimes are refused."""
        ...

    # -- runner lease ------------------------------------------------------------------------
    def acquire_lease(self, job: str, owner: str, *, now: datetime, expires: datetime) -> RunnerLease:
        """Take or renew the job's runner lease for ``owner`` until ``expires``, atomically: done
        when nobody holds it, ``owner`` does, or the holder's lease expired (``expires <= now``).
        Returns the lease as it stands afterwards: ``owner`` tells whether it was taken."""
        ...

    def release_lease(self, job: str, owner: str) -> None:
        """Give up ``owner``'s lease on the job (another owner's lease is left alone)."""
        ...

    def lease(self, job: str) -> RunnerLease | None:
        """The job's runner lease as stored (it may have expired), or None when nobody took it."""
        ...

    # -- object connections ------------------------------------------------------------------
    def connection(self, job: str, kind: ObjectKind, anchor: str) -> ObjectConnection | None: ...
    def connections_of(
        self, job: str, kind: ObjectKind, anchors: Iterable[str]
    ) -> dict[str, ObjectConnection]:
        """The connections of these anchors that exist, by anchor, in a few round trips (a group's
        members: 20,000 lookups were 20,000 queries)."""
        ...

    def connection_by_target(self, job: str, kind: ObjectKind, target_id: str) -> ObjectConnection | None: ...
    def save_connection(self, job: str, connection: ObjectConnection) -> None: ...
    def delete_connection(self, job: str, kind: ObjectKind, anchor: str) -> None: ...
    def connections(self, job: str, kind: ObjectKind) -> Iterator[ObjectConnection]: ...
    def anchors(self, job: str, kind: ObjectKind) -> Iterator[str]:
        """The anchors of ``connections``, in the same order, without the rest of each connection
        (a deletion check compares 100,000 of them with the source's ids)."""
        ...

    def count_connections(self, job: str, kind: ObjectKind) -> int: ...

    # -- provisioned memberships (group anchor -> member anchors) ----------------------------
    def members(self, job: str, group_anchor: str) -> set[str]: ...
    def lapsed_members(self, job: str, group_anchor: str) -> set[str]:
        """The group's provisioned members whose user connection is gone or inactive (disabled or
        out of scope): what a membership update removes even when the source still lists them,
        found without reading every member's connection (a 20,000-member group)."""
        ...

    # -- source membership of assigned groups ----------------------------------------------------
    # What the source said the assigned groups' direct user members were when each group was last
    # processed, whether or not the members are in scope: a user's roles through groups that did
    # not change come from here (an incremental cycle reads one user's groups, indexed, instead of
    # every membership of the job).
    def source_members(self, job: str, group_anchor: str) -> set[str]: ...
    def set_source_members(self, job: str, group_anchor: str, member_anchors: Iterable[str]) -> None:
        """Replace a group's recorded source members (an empty iterable forgets the group)."""
        ...

    def source_groups_of(self, job: str, member_anchor: str) -> set[str]: ...

    def add_members(self, job: str, group_anchor: str, member_anchors: Iterable[str]) -> None: ...
    def remove_members(self, job: str, group_anchor: str, member_anchors: Iterable[str]) -> None: ...

    # -- escrows -----------------------------------------------------------------------------
    def escrow(self, job: str, kind: ObjectKind, anchor: str) -> Escrow | None: ...
    def save_escrow(self, job: str, escrow: Escrow) -> None: ...
    def clear_escrow(self, job: str, kind: ObjectKind, anchor: str) -> None: ...
    def escrows(self, job: str) -> list[Escrow]: ...
    def clear_escrows(self, job: str) -> None: ...

    # -- staged deletes ----------------------------------------------------------------------
    def stage_delete(self, job: str, staged: StagedDelete) -> None: ...
    def staged_deletes(self, job: str) -> list[StagedDelete]: ...
    def clear_staged(self, job: str, kind: ObjectKind | None = None, anchor: str | None = None) -> None: ...

    # -- cycles and logs ---------------------------------------------------------------------
    def start_cycle(self, job: str, kind: CycleKind, started: datetime) -> Cycle: ...
    def finish_cycle(self, cycle: Cycle) -> None: ...
    def cycles(self, job: str, limit: int = 20) -> list[Cycle]: ...
    def append_log(self, job: str, record: LogRecord) -> None: ...
    def logs(self, job: str, query: LogQuery) -> Iterator[LogRecord]: ...
    def prune_logs(self, job: str, before: datetime) -> int:
        """Delete the job's log records older than ``before`` (retention, 2.12); how many went.

        A record at exactly ``before`` stays; cycles and every other job's records are untouched.
        """
        ...

    # -- restart (2.10) ----------------------------------------------------------------------
    def reset(
        self, job: str, *, watermark: bool, escrows: bool, quarantine: bool, connections: bool
    ) -> None: ...

    # -- group commit -----------------------------------------------------------------------
    def batch(self) -> AbstractContextManager[None]:
        """This thread's writes inside the block share one transaction, committed when the block
        exits (normally or not); a nested block joins the outer one. Reads see the writes."""
        ...

    def close(self) -> None: ...
