"""One provisioning cycle (entra-behaviour.md 2.5): read, scope, match, map, export, log.

Initial cycle: read the whole source twice, first to resolve assignments (which groups are
assigned and who their direct members are: per-object state only), then to provision users,
their managers (a second round trip, 1.3 step 5), groups and memberships; finally connected
objects that left scope or the source are disabled or deleted, unless the deletion threshold
stages them (2.7). Incremental cycle: only what changed since the watermark; its cost grows with
the changes, not with the directory.

Objects' outcomes (connection, escrow, log record) are group-committed every 200 objects or half
a second (``_Commits``), so a cycle killed at any point resumes without duplicates: the next cycle
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

from provisor.engine.assignments import (
    Assignments,
    ScopeDecision,
    Verdict,
    app_role_assignments,
    user_members,
)
from provisor.engine.escrow import due, next_escrow
from provisor.engine.jobs.model import Job, PatchDialect
from provisor.engine.mapping import EvalContext
from provisor.engine.mapping.attributes import MappedValues, build_resource, map_object
from provisor.engine.matching import MatchingImpossible, MatchOutcome, decide, matching_queries
from provisor.engine.model import ObjectKind, Source, SourceObject
from provisor.engine.plan import (
    Action,
    DeprovisionEvent,
    Plan,
    Reason,
    plan_create,
    plan_deprovision,
    plan_members,
    plan_update,
    staged,
)
from provisor.engine.state import (
    CycleKind,
    EngineState,
    JobStatus,
    LogRecord,
    LogStep,
    ObjectConnection,
    StagedDelete,
)
from provisor.engine.targets import ScimTarget, TargetError
from provisor.engine.targets.patch import PatchOperation as TargetOp
from provisor.engine.templates import Template
from provisor.engine.templates.model import AttributeMapping

CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
MANAGER_PATH = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"


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
        self.users = template.user_mappings
        self.groups = template.group_mappings
        self.soft_delete_mapped = any(m.target.lower() == "active" for m in self.users)
        self.assignments = Assignments(job.scope)
        self.counts: dict[str, int] = {}
        #: (user anchor, user target id, manager anchor, current manager id) for the reference round
        self.pending_managers: list[tuple[str, str, str, str | None]] = []
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
        self.cycle_id = cycle.id
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
        fresh = self.state.job_state(name)
        steady = not failures and not self.counts.get("exports", 0)
        self.state.save_job_state(
            replace(
                fresh,
                status=JobStatus.ACTIVE if fresh.status is not JobStatus.QUARANTINE else fresh.status,
                watermark=watermark,
                config_hash=digest,
                last_cycle=cycle.id,
                last_cycle_finished=now,
                allow_deletes=False if self.counts.get("released_deletes") else fresh.allow_deletes,
                steady_state_first=fresh.steady_state_first or (now if steady else None),
                steady_state_last=now if steady else fresh.steady_state_last,
            )
        )
        return CycleReport(cycle.id, kind, result, dict(self.counts), self.counts.get("StagedDelete", 0))

    # -- the two kinds of cycle --------------------------------------------------------------

    async def _initial(self) -> str:
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
        # Per-object state only: the assigned groups are the connected ones (assigned mode), with
        # the members the engine provisioned in them.
        group_members: dict[str, set[str]] = {}
        for conn in self.state.connections(name, ObjectKind.GROUP):
            role = self.assignments.group_role(conn.display)
            if role is not None:
                self.assignments.group_roles[conn.anchor] = role
                group_members[conn.anchor] = self.state.members(name, conn.anchor)

        def known(kind: ObjectKind) -> Iterable[str]:
            return [c.anchor for c in self.state.connections(name, kind)]

        changes = await asyncio.to_thread(self.source.read_changes, watermark, known)
        changed = list(changes.objects)  # an incremental change set: proportional to the changes
        users = [o for o in changed if o.kind is ObjectKind.USER]
        groups = [o for o in changed if o.kind is ObjectKind.GROUP]
        affected: set[str] = set()
        for group in groups:
            if not group.deleted and group.anchor in group_members:
                members = set(user_members(group))
                affected |= members ^ group_members[group.anchor]
                group_members[group.anchor] = members
        # A user's roles come from every assigned group it is in: a changed group's membership
        # replaces only that group's share (two groups may give the same role).
        for group_anchor, members in group_members.items():
            role = self.assignments.group_roles[group_anchor]
            for anchor in members:
                self.assignments.member_roles.setdefault(anchor, set()).add(role)
        # Users whose scope changed through a group while they themselves did not change, and
        # escrowed users whose retry is due (2.8).
        started = self.clock()
        affected |= {
            e.anchor
            for e in self.state.escrows(name)
            if e.kind is ObjectKind.USER and not e.reference and due(e, started)
        }
        lookup = getattr(self.source, "get", None)
        if lookup is not None:
            for anchor in sorted(affected - {u.anchor for u in users}):
                found = await asyncio.to_thread(lookup, ObjectKind.USER, anchor)
                gone = SourceObject(ObjectKind.USER, anchor, deleted=True)
                users.append(found if found is not None else gone)
        self._phase("users")
        await self._each(iter(users), self._object)
        await self._managers()
        self._phase("groups")
        await self._each(iter(groups), self._group)
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
                event = (
                    DeprovisionEvent.SOFT_DELETED
                    if decision.verdict is Verdict.DISABLED
                    else DeprovisionEvent.NOT_EFFECTIVELY_ENTITLED
                    if decision.verdict is Verdict.NOT_EFFECTIVELY_ENTITLED
                    else DeprovisionEvent.OUT_OF_SCOPE
                )
                self._candidate(ObjectKind.USER, obj.anchor, event, obj)
                self.seen[ObjectKind.USER].add(obj.anchor)
            elif self.job.scope.mode.value == "all" or decision.verdict is not Verdict.NOT_ASSIGNED:
                self._log(obj, None, _skip_plan(decision), status="Skipped", steps=_scope_steps(decision))
            return
        self.seen[ObjectKind.USER].add(obj.anchor)
        computed = {"IsSoftDeleted": False, "appRoleAssignments": app_role_assignments(decision.roles)}
        try:
            await self._provision(obj, conn, computed)
        except TargetError as exc:
            self._fail(obj, conn.target_id if conn else None, exc.code, str(exc))

    async def _provision(
        self, obj: SourceObject, conn: ObjectConnection | None, computed: dict[str, Any]
    ) -> None:
        kind, mappings = obj.kind, self._mappings(obj.kind)
        current: dict[str, Any] | None = None
        if conn is not None:
            current = await self.target.get(kind, conn.target_id)
            if current is None:  # InvalidAnchor: the account is gone; match or create again
                self.state.delete_connection(self.job.name, kind, obj.anchor)
                conn = None
        if conn is None:
            values = map_object(obj, mappings, self.ctx, creating=True, computed=computed)
            if values.failed:
                self._fail(
                    obj, None, Reason.EXPRESSION_EVALUATION_FAILED.value, values.failure_reason() or ""
                )
                return
            try:
                queries = matching_queries(values, mappings)
            except MatchingImpossible as exc:
                self._log(
                    obj, None, Plan(Action.SKIP, Reason.IMPORT_SKIPPED, detail=str(exc)), status="Skipped"
                )
                return
            results: list[list[str]] = []
            found: list[dict[str, Any]] = []
            for path, value in queries:
                found = await self.target.find(kind, path, value)
                results.append([str(r.get("id")) for r in found])
                if found:
                    break
            match = decide(results)
            if match.outcome is MatchOutcome.DUPLICATE_TARGET_ENTRIES:
                self._fail(
                    obj,
                    None,
                    Reason.DUPLICATE_TARGET_ENTRIES.value,
                    f"{len(match.candidates)} accounts match: {', '.join(match.candidates)}",
                )
                return
            if match.outcome is MatchOutcome.CREATE:
                # Entra adds its ADSCIM group schema (Q9); the strict RFC dialect sends the core only.
                strict = kind is ObjectKind.GROUP and self.target.dialect is PatchDialect.RFC
                body = build_resource(kind, values, schemas=(CORE_GROUP,) if strict else None)
                created = await self.target.create(kind, body)
                target_id = str(created["id"])
                self._connect(obj, target_id, values)
                self._remember_manager(obj.anchor, target_id, values, None)
                self._log(obj, target_id, plan_create(values))
                self._count("exports")
                return
            assert match.target_id is not None
            current = found[0] if len(found) == 1 else await self.target.get(kind, match.target_id)
            conn = ObjectConnection(kind, obj.anchor, match.target_id)
        assert conn is not None and current is not None
        values = map_object(obj, mappings, self.ctx, creating=False, computed=computed)
        if values.failed:
            self._fail(
                obj, conn.target_id, Reason.EXPRESSION_EVALUATION_FAILED.value, values.failure_reason() or ""
            )
            return
        plan = plan_update(current, values, mappings)
        if plan.operations:
            await self.target.patch(kind, conn.target_id, _target_ops(plan))
            self._count("exports")
        self._connect(obj, conn.target_id, values)
        if kind is ObjectKind.USER:
            self._remember_manager(obj.anchor, conn.target_id, values, current)
        self._log(obj, conn.target_id, plan, status="Skipped" if plan.action is Action.SKIP else "Success")

    def _remember_manager(
        self, anchor: str, target_id: str, values: MappedValues, current: dict[str, Any] | None
    ) -> None:
        anchors = next((a for p, a in values.references.items() if p.lower().endswith("manager")), ())
        if not anchors:
            return
        have = None
        if current is not None:
            ext = current.get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User") or {}
            manager = ext.get("manager") if isinstance(ext, dict) else None
            have = (
                manager.get("value")
                if isinstance(manager, dict)
                else manager
                if isinstance(manager, str)
                else None
            )
        self.pending_managers.append((anchor, target_id, anchors[0], have))

    async def _managers(self) -> None:
        """Reference round (1.3 step 5): link managers once every user has its account."""
        self._phase("references")
        pending, self.pending_managers = self.pending_managers, []

        async def link(item: tuple[str, str, str, str | None]) -> None:
            anchor, target_id, manager_anchor, have = item
            manager = self.state.connection(self.job.name, ObjectKind.USER, manager_anchor)
            if manager is None or manager.target_id == have:
                return  # out of scope: linked after a restart (KNOWN, 2.5); or already right
            try:
                await self.target.patch(
                    ObjectKind.USER,
                    target_id,
                    [
                        TargetOp(
                            "add" if have is None else "replace", MANAGER_PATH, {"value": manager.target_id}
                        )
                    ],
                )
                self._count("references")
            except TargetError as exc:
                self._count("reference_failures")
                self._count("Failure")
                self._escrow(ObjectKind.USER, anchor, exc.code, str(exc), reference=True)

        await self._each(iter(pending), link)

    # -- groups ------------------------------------------------------------------------------

    async def _group(self, obj: SourceObject) -> None:
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
            return
        self.seen[ObjectKind.GROUP].add(obj.anchor)
        try:
            await self._provision(obj, conn, {})
            conn = self.state.connection(self.job.name, ObjectKind.GROUP, obj.anchor)
            if conn is not None:
                await self._memberships(obj, conn)
        except TargetError as exc:
            self._fail(obj, conn.target_id if conn else None, exc.code, str(exc))

    async def _memberships(self, group: SourceObject, conn: ObjectConnection) -> None:
        """Add and remove members in batches (1.6): only users the engine provisioned."""
        name = self.job.name
        wanted: dict[str, str] = {}
        for anchor in user_members(group):
            member = self.state.connection(name, ObjectKind.USER, anchor)
            if member is not None and member.active:
                wanted[anchor] = member.target_id
        have = self.state.members(name, group.anchor)
        add_anchors, remove_anchors = plan_members(have, wanted)
        if add_anchors:
            await self.target.add_members(conn.target_id, [wanted[a] for a in add_anchors])
            self.state.add_members(name, group.anchor, add_anchors)
        if remove_anchors:
            ids = [
                c.target_id for a in remove_anchors if (c := self.state.connection(name, ObjectKind.USER, a))
            ]
            await self.target.remove_members(conn.target_id, ids)
            self.state.remove_members(name, group.anchor, remove_anchors)
        if add_anchors or remove_anchors:
            self._count("memberships", len(add_anchors) + len(remove_anchors))

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
        if hold:
            fresh = self.state.job_state(name)
            self.state.save_job_state(replace(fresh, status=JobStatus.QUARANTINE))
            self._count("threshold_reached")
        elif allow:
            self.state.clear_staged(name)
            self._count("released_deletes", max(len(self.candidates), 1))

    async def _deprovision(
        self, kind: ObjectKind, anchor: str, event: DeprovisionEvent, obj: SourceObject, *, hold: bool = False
    ) -> None:
        name = self.job.name
        conn = self.state.connection(name, kind, anchor)
        if conn is None:
            return
        if kind is ObjectKind.GROUP:
            plan = Plan(
                Action.DELETE, Reason.OUT_OF_SCOPE if event is not DeprovisionEvent.HARD_DELETED else None
            )
        else:
            plan = plan_deprovision(
                event,
                soft_delete_mapped=self.soft_delete_mapped,
                skip_out_of_scope_deletions=self.job.settings.skip_out_of_scope_deletions,
            )
        if hold and plan.action in (Action.DISABLE, Action.DELETE):
            self.state.stage_delete(
                name, StagedDelete(kind, anchor, conn.target_id, plan.action.value, self.clock())
            )
            self._log(obj, conn.target_id, staged(plan), status="Skipped")
            return
        try:
            if plan.action is Action.DELETE:
                await self.target.delete(kind, conn.target_id)
                self.state.delete_connection(name, kind, anchor)
            elif plan.action is Action.DISABLE:
                # Read first, as for any update (1.4): the log shows the old value, an account
                # already inactive is RedundantExport, and one that is gone drops its connection.
                current = await self.target.get(kind, conn.target_id)
                if current is None:
                    self.state.delete_connection(name, kind, anchor)
                    plan = Plan(Action.SKIP, Reason.INVALID_ANCHOR, detail="the account no longer exists")
                else:
                    plan = plan_deprovision(
                        event,
                        soft_delete_mapped=self.soft_delete_mapped,
                        skip_out_of_scope_deletions=self.job.settings.skip_out_of_scope_deletions,
                        current=current,
                    )
                    if plan.operations:
                        await self.target.patch(kind, conn.target_id, _target_ops(plan))
                    self.state.save_connection(name, replace(conn, active=False))
        except TargetError as exc:
            self._fail(obj, conn.target_id, exc.code, str(exc))
            return
        self._log(obj, conn.target_id, plan, status="Skipped" if plan.action is Action.SKIP else "Success")

    # -- bookkeeping -------------------------------------------------------------------------

    def _mappings(self, kind: ObjectKind) -> Sequence[AttributeMapping]:
        return self.users if kind is ObjectKind.USER else self.groups

    def _connect(self, obj: SourceObject, target_id: str, values: MappedValues) -> None:
        display = obj.get("displayName") or obj.get("userPrincipalName") or ""
        self.state.save_connection(
            self.job.name, ObjectConnection(obj.kind, obj.anchor, target_id, str(display))
        )
        self.state.clear_escrow(self.job.name, obj.kind, obj.anchor)

    def _escrow(
        self, kind: ObjectKind, anchor: str, code: str, message: str, *, reference: bool = False
    ) -> None:
        previous = self.state.escrow(self.job.name, kind, anchor)
        escrow = next_escrow(
            previous,
            kind=kind,
            anchor=anchor,
            code=code,
            message=message,
            now=self.clock(),
            reference=reference,
        )
        self.state.save_escrow(self.job.name, escrow)

    def _fail(self, obj: SourceObject, target_id: str | None, code: str, message: str) -> None:
        self._escrow(obj.kind, obj.anchor, code, message)
        self._log(
            obj,
            target_id,
            Plan(Action.SKIP, None, detail=message),
            status="Failure",
            reason=code,
            error=message,
        )

    def _log(
        self,
        obj: SourceObject,
        target_id: str | None,
        plan: Plan,
        *,
        status: str = "Success",
        reason: str | None = None,
        error: str = "",
        steps: tuple[LogStep, ...] = (),
    ) -> None:
        action = plan.action.value
        self._count(action)
        self._count(status)
        display = obj.get("displayName") or obj.get("userPrincipalName") or ""
        self.state.append_log(
            self.job.name,
            LogRecord(
                cycle=self.cycle_id,
                time=self.clock(),
                kind=obj.kind,
                source_anchor=obj.anchor,
                target_id=target_id,
                display=str(display),
                action=action,
                status=status,
                reason=reason if reason is not None else (plan.reason.value if plan.reason else ""),
                steps=steps or _steps(plan),
                modified=tuple((m.attribute, m.old, m.new) for m in plan.modified),
                error=error,
            ),
        )
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

        The objects' state writes are group-committed (``state.batch()``, see :class:`_Commits`).
        """
        running: set[asyncio.Task[None]] = set()
        limit = self._concurrency
        with _Commits(self.state) as commits:
            for item in items:
                if len(running) >= limit:
                    done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()
                    commits.done(len(done))
                running.add(asyncio.create_task(work(item)))
            if running:
                for outcome in await asyncio.gather(*running, return_exceptions=True):
                    if isinstance(outcome, BaseException):
                        raise outcome


class _Commits:
    """Group commit of a phase's state writes: one transaction per ``COMMIT_OBJECTS`` finished
    objects or ``COMMIT_SECONDS``, whichever comes first, and at the end of the phase.

    A commit per write (connection, escrow, log record: three per object) cost more than the
    object's own work. The price: a process killed mid-phase loses the connections and log
    records of the last uncommitted batch. That never duplicates an account: the next cycle has
    no connection for those objects, so it runs query-before-create and finds the account it
    created (1.3), then updates it; a group's members are recorded after their PATCH, so a lost
    record only makes the next cycle add them again (adding a member twice is a no-op).
    """

    COMMIT_OBJECTS = 200
    COMMIT_SECONDS = 0.5

    def __init__(self, state: EngineState) -> None:
        self._state = state
        self._block: AbstractContextManager[None] | None = None
        self._objects = 0
        self._since = 0.0

    def __enter__(self) -> _Commits:
        self._open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def done(self, n: int) -> None:
        self._objects += n
        if self._objects >= self.COMMIT_OBJECTS or time.monotonic() - self._since >= self.COMMIT_SECONDS:
            self._close()
            self._open()

    def _open(self) -> None:
        self._block = self._state.batch()
        self._block.__enter__()
        self._objects = 0
        self._since = time.monotonic()

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


def _groups_of(objects: Iterable[SourceObject]) -> list[SourceObject]:
    return [o for o in objects if o.kind is ObjectKind.GROUP]


def _target_ops(plan: Plan) -> list[TargetOp]:
    return [TargetOp(op.op, op.path, op.value) for op in plan.operations]


def _skip_plan(decision: ScopeDecision) -> Plan:
    reason = (
        Reason.NOT_EFFECTIVELY_ENTITLED
        if decision.verdict is Verdict.NOT_EFFECTIVELY_ENTITLED
        else Reason.OUT_OF_SCOPE
    )
    return Plan(Action.SKIP, reason, detail=decision.detail)


def _scope_steps(decision: ScopeDecision) -> tuple[LogStep, ...]:
    return (LogStep("scoping", "skipped", decision.detail or decision.verdict.value),)


def _steps(plan: Plan) -> tuple[LogStep, ...]:
    status = "skipped" if plan.action is Action.SKIP else "success"
    details = {"operations": len(plan.operations)} if plan.operations else {}
    return (LogStep("export", status, plan.detail or plan.action.value, details),)
