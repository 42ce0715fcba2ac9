"""One provisioning cycle (entra-behaviour.md 2.5): read, scope, match, map, export, log.

Initial cycle: read the whole source twice, first to resolve assignments (which groups are
assigned and who their direct members are: per-object state only), then to provision users,
their managers (a second round trip, 1.3 step 5), groups and memberships; finally connected
objects that left scope or the source are disabled or deleted, unless the deletion threshold
stages them (2.7). Incremental cycle: only what changed since the watermark; its cost grows with
the changes, not with the directory.

Objects' outcomes (connection, escrow, log record) are group-committed every 200 objects, and a
batch never holds the write lock for more than half a second in a row (``_Commits``: then a short
gap lets an admin command or another writer in), so a cycle killed at any point resumes without
duplicates: the next cycle
finds the connection, or, for the last uncommitted batch, matches the account it created
(query-before-create) before it would create anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from provisor.engine.assignments import Assignments, ScopeDecision, Verdict, user_members
from provisor.engine.escrow import due
from provisor.engine.jobs.model import Job
from provisor.engine.mapping import EvalContext
from provisor.engine.model import ListsDeletions, LooksUpMany, LooksUpOne, ObjectKind, Source, SourceObject
from provisor.engine.plan import DeprovisionEvent
from provisor.engine.provision import Provisioner, computed_attributes, deprovision_event, scope_skip
from provisor.engine.state import KEEP, CycleKind, EngineState, Escrow, JobStateChange, JobStatus, LogStep
from provisor.engine.targets import ScimTarget, TargetError
from provisor.engine.templates import Template


@dataclass(slots=True)
class Progress:
    """What a progress bar shows (2.13): objects done of those known, per phase."""

    cycle: str
    kind: CycleKind
    phase: str = "reading"
    done: int = 0
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CycleReport:
    cycle: str
    kind: CycleKind
    result: str  # Succeeded / EntryLevelErrors
    counts: dict[str, int]
    staged: int = 0


def config_hash(job: Job, template: Template) -> str:
    """A change of mappings or scope forces a new initial cycle (2.5)."""
    text = json.dumps(
        [repr(template.user_mappings), repr(template.group_mappings), repr(job.scope)], sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Cycle:
    """Runs one cycle of ``job``; built by the engine service with its ports."""

    def __init__(
        self,
        job: Job,
        template: Template,
        source: Source,
        target: ScimTarget,
        state: EngineState,
        *,
        clock: Callable[[], datetime],
        ctx: EvalContext,
        progress: Callable[[Progress], None] | None = None,
        concurrency: int = 8,
    ) -> None:
        self.job = job
        self.template = template
        self.source = source
        self.target = target
        self.state = state
        self.clock = clock
        self.ctx = ctx
        self._progress_cb = progress
        self._concurrency = max(1, concurrency)
        self.assignments = Assignments(job.scope)
        self.counts: dict[str, int] = {}
        self.provisioner = Provisioner(
            job, template, target, state, clock=clock, ctx=ctx, counts=self.counts, logged=self._advance
        )
        self.candidates: dict[tuple[ObjectKind, str], tuple[DeprovisionEvent, SourceObject]] = {}
        self.seen: dict[ObjectKind, set[str]] = {ObjectKind.USER: set(), ObjectKind.GROUP: set()}
        self.exists: dict[ObjectKind, set[str]] = {ObjectKind.USER: set(), ObjectKind.GROUP: set()}
        self.cycle_id = ""
        self.progress: Progress | None = None

    # -- entry -------------------------------------------------------------------------------

    async def run(self) -> CycleReport:
        name = self.job.name
        job_state = self.state.job_state(name)
        digest = config_hash(self.job, self.template)
        initial = job_state.watermark is None or job_state.config_hash != digest
        kind = CycleKind.INITIAL if initial else CycleKind.INCREMENTAL
        cycle = self.state.start_cycle(name, kind, self.clock())
        self.cycle_id = self.provisioner.cycle = cycle.id
        self.progress = Progress(cycle.id, kind)
        if initial:
            watermark = await self._initial()
        else:
            assert job_state.watermark is not None
            watermark = await self._incremental(job_state.watermark)
        failures = self.counts.get("Failure", 0)
        result = "EntryLevelErrors" if failures else "Succeeded"
        now = self.clock()
        self.state.finish_cycle(replace(cycle, finished=now, result=result, counts=dict(self.counts)))
        steady = not failures and not self.counts.get("exports", 0)
        # Only the fields a cycle owns, in one write: what an admin command wrote meanwhile (a
        # pause, a quarantine lifted, deletes allowed, a restart's cleared watermark) stands. Only
        # cycles write the steady state, and one runs at a time (the runner lease), so reading it
        # first is safe.
        first_steady = steady and self.state.job_state(name).steady_state_first is None
        self.state.update_job_state(
            name,
            JobStateChange(
                status=JobStatus.ACTIVE,  # a pause or quarantine written while the cycle ran stands
                status_from=frozenset({JobStatus.NOT_RUN, JobStatus.ACTIVE}),
                watermark=watermark,
                watermark_was=job_state.watermark,  # a restart made while the cycle ran stands
                config_hash=digest,
                last_cycle=cycle.id,
                last_cycle_finished=now,
                allow_deletes=False if self.counts.get("released_deletes") else KEEP,
                steady_state_first=now if first_steady else KEEP,
                steady_state_last=now if steady else KEEP,
            ),
        )
        return CycleReport(cycle.id, kind, result, dict(self.counts), self.counts.get("StagedDelete", 0))

    # -- the two kinds of cycle --------------------------------------------------------------

    async def _initial(self) -> str:
        self._load_escrows()
        if self.job.scope.mode.value == "assigned":
            first = await asyncio.to_thread(self.source.read_all)
            for obj in await asyncio.to_thread(_groups_of, first.objects):
                self.assignments.note_group(obj)
        changes = await asyncio.to_thread(self.source.read_all)
        self._phase("users")
        groups: list[SourceObject] = []
        await self._each(_stream(changes.objects, groups), self._object)
        await self._managers()
        self._phase("groups")
        await self._each(iter(groups), self._group)
        self._unseen()
        await self._apply_deprovisions()
        return changes.final_watermark()

    async def _incremental(self, watermark: str) -> str:
        name = self.job.name
        # Per-object state only, and only what the changes touch: the assigned groups are the
        # connected ones (assigned mode); a user's roles through groups that did not change come
        # from their source membership as last recorded, read for that user alone
        # (``source_groups_of``, indexed), never by loading every membership of the job.
        assignments = self.assignments
        for conn in self.state.connections(name, ObjectKind.GROUP):
            role = assignments.group_role(conn.display)
            if role is not None:
                assignments.group_roles[conn.anchor] = role
        assignments.recorded_groups = lambda anchor: self.state.source_groups_of(name, anchor)

        def known(kind: ObjectKind) -> Iterable[str]:
            return list(self.state.anchors(name, kind))

        # Deleted users are found by listing every id of the directory (SCIM has no tombstones):
        # the one part of an incremental cycle that grows with the directory. A source that can
        # (``deletions``) lists them in a worker thread while the changes are processed; they are
        # needed only when the cycle deprovisions.
        source = self.source
        deleted_users: asyncio.Future[list[SourceObject]] | None = None
        if isinstance(source, ListsDeletions):
            deleted_users = asyncio.ensure_future(  # reading the known anchors is in the thread too
                asyncio.to_thread(lambda: source.deletions(ObjectKind.USER, known(ObjectKind.USER)))
            )

        def known_to_read(kind: ObjectKind) -> Iterable[str]:
            """What the change read lists deletions of: no users when they are listed apart."""
            return () if kind is ObjectKind.USER and deleted_users is not None else known(kind)

        try:
            return await self._incremental_changes(watermark, known_to_read, deleted_users)
        finally:
            if deleted_users is not None and not deleted_users.done():
                deleted_users.cancel()  # the cycle failed: its thread finishes on its own

    async def _incremental_changes(
        self,
        watermark: str,
        known: Callable[[ObjectKind], Iterable[str]],
        deleted_users: asyncio.Future[list[SourceObject]] | None,
    ) -> str:
        name = self.job.name
        assignments = self.assignments
        changes = await asyncio.to_thread(self.source.read_changes, watermark, known)
        changed = list(changes.objects)  # an incremental change set: proportional to the changes
        users = [o for o in changed if o.kind is ObjectKind.USER]
        groups = [o for o in changed if o.kind is ObjectKind.GROUP]
        # Escrowed objects whose retry is due (2.8) are processed whether or not they changed:
        # users below (a failed manager link too: a reference escrow, retried with the user), with
        # those whose scope changed through a group; groups (a failed create or update, or failed
        # memberships) now, so that their members count.
        started = self.clock()
        retry = [e for e in self._load_escrows().values() if due(e, started)]
        changed_groups = {g.anchor for g in groups}
        groups += await _look_up(
            self.source,
            ObjectKind.GROUP,
            sorted(e.anchor for e in retry if e.kind is ObjectKind.GROUP and e.anchor not in changed_groups),
        )
        # A re-read group's membership replaces only that group's share of its members' roles
        # (two groups may give the same role); its members that came or went are affected.
        affected: set[str] = set()
        for group in groups:
            if group.deleted:  # its members lose what it gave them
                if group.anchor in assignments.group_roles:
                    affected |= self.state.source_members(name, group.anchor)
                    assignments.reread.add(group.anchor)
                continue
            if group.anchor not in assignments.group_roles:
                # Not connected (its create failed, or it is new): resolved as an initial cycle does.
                assignments.note_group(group)
                if group.anchor not in assignments.group_roles:
                    continue
            role = assignments.group_roles[group.anchor]
            members = set(user_members(group))
            affected |= members ^ self.state.source_members(name, group.anchor)
            assignments.reread.add(group.anchor)
            for anchor in members:
                assignments.add_member_role(anchor, role)
        # Users whose scope changed through a group while they themselves did not change.
        affected |= {e.anchor for e in retry if e.kind is ObjectKind.USER}
        users += await _look_up(self.source, ObjectKind.USER, sorted(affected - {u.anchor for u in users}))
        self._phase("users")
        await self._each(iter(users), self._object)
        await self._managers()
        self._phase("groups")
        await self._each(iter(groups), self._group)
        if deleted_users is not None:
            for gone in await deleted_users:
                self._candidate(ObjectKind.USER, gone.anchor, DeprovisionEvent.HARD_DELETED, gone)
        await self._apply_deprovisions()
        return changes.final_watermark()

    # -- users -------------------------------------------------------------------------------

    async def _object(self, obj: SourceObject) -> None:
        if obj.kind is ObjectKind.GROUP:  # a full read yields groups after users
            return
        if obj.deleted:
            self._candidate(ObjectKind.USER, obj.anchor, DeprovisionEvent.HARD_DELETED, obj)
            return
        self.exists[ObjectKind.USER].add(obj.anchor)
        decision = self.assignments.user(obj)
        conn = self.state.connection(self.job.name, ObjectKind.USER, obj.anchor)
        if not decision.in_scope:
            if conn is not None and conn.active:
                self._candidate(ObjectKind.USER, obj.anchor, deprovision_event(decision), obj)
                self.seen[ObjectKind.USER].add(obj.anchor)
                return
            if self.job.scope.mode.value == "all" or decision.verdict is not Verdict.NOT_ASSIGNED:
                self.provisioner.finish(obj, None, scope_skip(decision), steps=_scope_steps(decision))
            self.provisioner.settle(ObjectKind.USER, obj.anchor)  # nothing to deprovision (2.8)
            return
        self.seen[ObjectKind.USER].add(obj.anchor)
        await self.provisioner.provision(obj, conn, computed_attributes(decision))

    async def _managers(self) -> None:
        """Reference round (1.3 step 5): link managers once every user has its account."""
        self._phase("references")
        pending, self.provisioner.pending_managers = self.provisioner.pending_managers, []
        await self._each(iter(pending), self.provisioner.link_manager)

    # -- groups ------------------------------------------------------------------------------

    async def _group(self, obj: SourceObject) -> None:
        if obj.anchor in self.assignments.group_roles:
            # Its members' roles through it, for later cycles; after the users are done, so a
            # cycle cut short reads the group as changed again and its members as affected.
            members = () if obj.deleted else user_members(obj)
            self.state.set_source_members(self.job.name, obj.anchor, members)
        if obj.deleted:
            self._candidate(ObjectKind.GROUP, obj.anchor, DeprovisionEvent.HARD_DELETED, obj)
            return
        self.exists[ObjectKind.GROUP].add(obj.anchor)
        decision = self.assignments.group(obj)
        conn = self.state.connection(self.job.name, ObjectKind.GROUP, obj.anchor)
        if not decision.in_scope:
            if conn is not None:
                self._candidate(ObjectKind.GROUP, obj.anchor, DeprovisionEvent.OUT_OF_SCOPE, obj)
                self.seen[ObjectKind.GROUP].add(obj.anchor)
            else:
                self.provisioner.settle(ObjectKind.GROUP, obj.anchor)  # nothing to deprovision (2.8)
            return
        self.seen[ObjectKind.GROUP].add(obj.anchor)
        # The group's escrow covers its memberships: it ends once both are done (2.8).
        provisioned = await self.provisioner.provision(obj, conn, {}, settle=False)
        conn = self.state.connection(self.job.name, ObjectKind.GROUP, obj.anchor)
        if conn is None:
            return
        try:
            await self.provisioner.memberships(obj, conn)
        except TargetError as exc:
            self.provisioner.memberships_failed(obj, conn, exc)  # a reference failure (2.8, 2.9)
            return
        if provisioned:
            self.provisioner.settle(ObjectKind.GROUP, obj.anchor)

    # -- deprovisioning and the deletion threshold (2.6, 2.7) ---------------------------------

    def _candidate(self, kind: ObjectKind, anchor: str, event: DeprovisionEvent, obj: SourceObject) -> None:
        """A disable or delete to make; all of a cycle's are counted before any is made (2.7)."""
        self.candidates[(kind, anchor)] = (event, obj)

    def _unseen(self) -> None:
        """After a full read: connected objects not seen in scope left scope or the source."""
        for kind in (ObjectKind.USER, ObjectKind.GROUP):
            for conn in self.state.connections(self.job.name, kind):
                if conn.anchor in self.seen[kind] or (kind is ObjectKind.USER and not conn.active):
                    continue
                gone = conn.anchor not in self.exists[kind]
                event = DeprovisionEvent.HARD_DELETED if gone else DeprovisionEvent.OUT_OF_SCOPE
                obj = SourceObject(kind, conn.anchor, {"displayName": conn.display}, deleted=gone)
                self._candidate(kind, conn.anchor, event, obj)

    async def _apply_deprovisions(self) -> None:
        """Accidental-deletion prevention (2.7): when a cycle's disables and deletes reach the
        threshold, none is made: all are staged (StagedDelete) and the job is quarantined with
        TooManyDeletes. After ``allow-deletes`` the next cycle makes the staged ones too."""
        name = self.job.name
        allow = self.state.job_state(name).allow_deletes
        if allow:
            for held in self.state.staged_deletes(name):
                event = (
                    DeprovisionEvent.HARD_DELETED
                    if held.action == "Delete"
                    else DeprovisionEvent.OUT_OF_SCOPE
                )
                obj = SourceObject(held.kind, held.anchor, deleted=held.action == "Delete")
                self.candidates.setdefault((held.kind, held.anchor), (event, obj))
        threshold = self.job.settings.deletion_threshold
        hold = threshold > 0 and len(self.candidates) >= threshold and not allow
        self._phase("deprovisioning")
        for (kind, anchor), (event, obj) in sorted(self.candidates.items()):
            await self._deprovision(kind, anchor, event, obj, hold=hold)
        if hold:  # only the status: an admin's pause written meanwhile stands
            self.state.update_job_state(
                name,
                JobStateChange(
                    status=JobStatus.QUARANTINE,
                    status_from=frozenset({JobStatus.NOT_RUN, JobStatus.ACTIVE, JobStatus.QUARANTINE}),
                ),
            )
            self._count("threshold_reached")
        elif allow:
            self.state.clear_staged(name)
            self._count("released_deletes", max(len(self.candidates), 1))

    async def _deprovision(
        self, kind: ObjectKind, anchor: str, event: DeprovisionEvent, obj: SourceObject, *, hold: bool = False
    ) -> None:
        conn = self.state.connection(self.job.name, kind, anchor)
        if conn is not None:
            await self.provisioner.deprovision(obj, conn, event, hold=hold)
        else:
            self.provisioner.settle(kind, anchor)  # gone, and no account to deprovision (2.8)

    # -- escrows (2.8) -------------------------------------------------------------------------

    def _load_escrows(self) -> dict[tuple[ObjectKind, str], Escrow]:
        """The job's escrows as the cycle begins (as many as objects failing, not the directory),
        handed to the provisioner: an object settled by this cycle ends its escrow with one write,
        the others cost none, and a user's manager-link escrow waits for the reference round."""
        escrowed = {(e.kind, e.anchor): e for e in self.state.escrows(self.job.name)}
        self.provisioner.escrowed = escrowed
        return escrowed

    # -- bookkeeping -------------------------------------------------------------------------

    def _advance(self) -> None:
        """One more object done (its log record written)."""
        if self.progress is not None:
            self.progress.done += 1
            if self._progress_cb is not None:
                self._progress_cb(self.progress)

    def _count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def _phase(self, phase: str) -> None:
        if self.progress is not None:
            self.progress.phase = phase
            if self._progress_cb is not None:
                self._progress_cb(self.progress)

    async def _each(self, items: Iterable[Any], work: Callable[[Any], Coroutine[Any, Any, None]]) -> None:
        """Run ``work`` over a stream with bounded concurrency, without materialising the stream.

        The objects' state writes are group-committed (``state.batch()``, see :class:`_Commits`);
        the waits for objects are bounded so that a batch is committed on time even while no
        object finishes. When an object's work fails, or this is cancelled (SIGTERM, Ctrl-C), the
        objects still running are cancelled and awaited before the error goes on: nothing of the
        phase runs on behind it, and what the objects committed stays.
        """
        running: set[asyncio.Task[None]] = set()
        limit = self._concurrency

        async def settle(pending: set[asyncio.Task[None]]) -> set[asyncio.Task[None]]:
            done, pending = await asyncio.wait(
                pending, timeout=commits.timeout(), return_when=asyncio.FIRST_COMPLETED
            )
            commits.done(len(done))
            failed = [t for t in done if t.cancelled() or t.exception() is not None]  # all retrieved
            if failed:
                failed[0].result()  # raises
            return pending

        with _Commits(self.state) as commits:
            try:
                for item in items:
                    while len(running) >= limit:
                        running = await settle(running)
                    running.add(asyncio.create_task(work(item)))
                    commits.done(0)  # a slow stream must not hold a batch open either
                while running:
                    running = await settle(running)
            except BaseException:
                for task in running:
                    task.cancel()
                if running:
                    await asyncio.gather(*running, return_exceptions=True)
                raise


class _Commits:
    """Group commit of a phase's state writes, fair to the job's other writers.

    The objects' writes share a transaction, committed every ``COMMIT_OBJECTS`` finished objects
    and at the end of the phase. A commit per write (connection, escrow, log record: three per
    object) cost more than the object's own work. The price: a process killed mid-phase loses the
    connections and log records of the last uncommitted batch. That never duplicates an account:
    the next cycle has no connection for those objects, so it runs query-before-create and finds
    the account it created (1.3), then updates it; a group's members are recorded after their
    PATCH, so a lost record only makes the next cycle add them again (a no-op).

    An open batch holds the database's write lock (on SQLite, the whole file). So batches hold it
    ``HOLD_SECONDS`` in a row at most (``_each`` wakes up for it even while no object finishes),
    then none is open for ``GAP_SECONDS``: the writes of that moment commit one by one, and
    another writer (``provisor pause`` from another shell, the runner lease's renewal) gets its
    turn. SQLite's busy handler retries a waiting writer at least every 100 ms, so a gap of
    that length is always seen, and a cycle writing flat out no longer makes the admin's command
    fail with "database is locked".
    """

    COMMIT_OBJECTS = 200
    HOLD_SECONDS = 0.5
    GAP_SECONDS = 0.1

    def __init__(self, state: EngineState, clock: Callable[[], float] = time.monotonic) -> None:
        self._state = state
        self._clock = clock
        self._block: AbstractContextManager[None] | None = None
        self._objects = 0
        self._held_since = 0.0  # when the batches began to hold the lock (the first of a run)
        self._gap_since = 0.0

    def __enter__(self) -> _Commits:
        self._open()
        self._held_since = self._clock()
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def timeout(self) -> float | None:
        """How long the caller may wait for objects before it calls :meth:`done` anyway: until
        the batches must let go of the lock (no limit in a gap: its writes commit one by one)."""
        if self._block is None:
            return None
        return max(0.0, self._held_since + self.HOLD_SECONDS - self._clock())

    def done(self, n: int) -> None:
        """``n`` more objects finished (0: none, the time has come): commit, let go or begin again."""
        self._objects += n
        now = self._clock()
        if self._block is None:
            if now - self._gap_since >= self.GAP_SECONDS:
                self._open()
                self._held_since = now
        elif now - self._held_since >= self.HOLD_SECONDS:
            self._close()
            # from the end of the commit, which holds the lock too: counted from before it, a
            # commit as long as the gap (a busy machine) left the other writers none
            self._gap_since = self._clock()
        elif self._objects >= self.COMMIT_OBJECTS:
            self._close()
            self._open()

    def _open(self) -> None:
        block = self._state.batch()
        block.__enter__()
        self._block = block
        self._objects = 0

    def _close(self) -> None:
        block, self._block = self._block, None
        if block is not None:
            block.__exit__(None, None, None)


def _stream(objects: Iterable[SourceObject], groups: list[SourceObject]) -> Iterable[SourceObject]:
    """Users pass through; groups (yielded after users) are kept for the group phase."""
    for obj in objects:
        if obj.kind is ObjectKind.GROUP:
            groups.append(obj)
        else:
            yield obj


async def _look_up(source: Source, kind: ObjectKind, anchors: Sequence[str]) -> list[SourceObject]:
    """Objects from the source by anchor; one the source no longer has is a hard delete.

    A source with ``get_many`` (a file, read in one pass) answers them all at once; one with
    ``get`` (a SCIM directory: ``GET /Users/{id}``) one by one; one with neither, none.
    """
    if not anchors:
        return []
    if isinstance(source, LooksUpMany):
        found = await asyncio.to_thread(source.get_many, kind, anchors)
        return [found.get(a) or SourceObject(kind, a, deleted=True) for a in anchors]
    if not isinstance(source, LooksUpOne):
        return []
    out: list[SourceObject] = []
    for anchor in anchors:
        obj = await asyncio.to_thread(source.get, kind, anchor)
        out.append(obj if obj is not None else SourceObject(kind, anchor, deleted=True))
    return out


def _groups_of(objects: Iterable[SourceObject]) -> list[SourceObject]:
    return [o for o in objects if o.kind is ObjectKind.GROUP]


def _scope_steps(decision: ScopeDecision) -> tuple[LogStep, ...]:
    return (LogStep("scoping", "skipped", decision.detail or decision.verdict.value),)
