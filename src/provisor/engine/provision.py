"""Provisioning one object (entra-behaviour.md 1.3-1.6, 2.4, 2.6, 2.8, 2.12): the one place where
an object is matched, mapped, planned and exported, and where its outcome is kept: the object
connection, the escrow of a failure, the provisioning log record.

A cycle (:mod:`~provisor.engine.cycle`) runs every object through a :class:`Provisioner`;
provisioning on demand (2.11, :mod:`~provisor.engine.ondemand`) runs its one object, or its group
and at most five members, through one. Who decides *whether* to provision (scope, the deletion
threshold) stays with them; what differs in *how* is said when the provisioner is built:

* ``escrow_failures``: a cycle escrows a failed object for retry (2.8); on demand does not;
* ``inline_references``: on demand links a manager that already has an account in the object's
  own request; a cycle collects the managers (``pending_managers``) and links them in its
  reference round, once every user has its account (1.3 step 5).

Each step also goes to a :class:`~provisor.engine.trail.Trail`. A cycle passes
:data:`~provisor.engine.trail.SILENT`, which keeps nothing: its log records carry the export step
only, and no step is built per object. On demand passes a trail that keeps every step
(:class:`~provisor.engine.steps.StepTrail`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, NamedTuple

from provisor.engine.assignments import ScopeDecision, Verdict, app_role_assignments, user_members
from provisor.engine.escrow import next_escrow
from provisor.engine.jobs.model import Job, PatchDialect
from provisor.engine.mapping import EvalContext
from provisor.engine.mapping.attributes import CORE_GROUP, MappedValues, build_resource, map_object
from provisor.engine.matching import MatchingImpossible, MatchOutcome, decide, matching_queries
from provisor.engine.model import ObjectKind, SourceObject
from provisor.engine.plan import (
    Action,
    DeprovisionEvent,
    Plan,
    Reason,
    plan_create,
    plan_deprovision,
    plan_update,
    skip,
    staged,
)
from provisor.engine.state import EngineState, Escrow, LogRecord, LogStep, ObjectConnection, StagedDelete
from provisor.engine.targets import ScimTarget, TargetError
from provisor.engine.targets.patch import PatchOperation as TargetOp
from provisor.engine.templates import Template
from provisor.engine.trail import SILENT, Performed, Trail

__all__ = [
    "MembershipChange",
    "Provisioner",
    "computed_attributes",
    "deprovision_event",
    "scope_skip",
]

MANAGER_PATH = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"

#: A user whose manager is linked in the reference round: (user anchor, user target id, manager
#: anchor, the manager id the account has now).
PendingManager = tuple[str, str, str, str | None]


class MembershipChange(NamedTuple):
    """A group's membership update (1.6): the target ids of the members added, by anchor; the
    anchors removed; and how many members the group has in the target now (provisioned, active
    users the source lists)."""

    added_ids: Mapping[str, str]
    removed: tuple[str, ...]
    members: int

    @property
    def added(self) -> tuple[str, ...]:
        return tuple(self.added_ids)


def deprovision_event(decision: ScopeDecision) -> DeprovisionEvent:
    """Why a connected user that is out of scope leaves (2.6)."""
    if decision.verdict is Verdict.DISABLED:
        return DeprovisionEvent.SOFT_DELETED
    if decision.verdict is Verdict.NOT_EFFECTIVELY_ENTITLED:
        return DeprovisionEvent.NOT_EFFECTIVELY_ENTITLED
    return DeprovisionEvent.OUT_OF_SCOPE


def scope_skip(decision: ScopeDecision) -> Plan:
    """The Skip of an object out of scope, with its reason (2.2, 2.12)."""
    reason = (
        Reason.NOT_EFFECTIVELY_ENTITLED
        if decision.verdict is Verdict.NOT_EFFECTIVELY_ENTITLED
        else Reason.OUT_OF_SCOPE
    )
    return skip(reason, decision.detail or decision.verdict.value)


def computed_attributes(decision: ScopeDecision) -> dict[str, Any]:
    """The computed source attributes of a user in scope (``IsSoftDeleted``, the roles, 2.6, 3.3)."""
    return {"IsSoftDeleted": False, "appRoleAssignments": app_role_assignments(decision.roles)}


class Provisioner:
    """Provisions objects of ``job`` into ``target`` one at a time and keeps their outcomes in
    ``state``; log records carry ``cycle`` and every action and status is added to ``counts``."""

    def __init__(
        self,
        job: Job,
        template: Template,
        target: ScimTarget,
        state: EngineState,
        *,
        clock: Callable[[], datetime],
        ctx: EvalContext,
        cycle: str = "",
        counts: dict[str, int] | None = None,
        escrow_failures: bool = True,
        inline_references: bool = False,
        logged: Callable[[], None] | None = None,
    ) -> None:
        self.job = job
        self.name = job.name
        self.target = target
        self.state = state
        self.clock = clock
        self.ctx = ctx
        self.cycle = cycle
        self.counts: dict[str, int] = counts if counts is not None else {}
        self.users = template.user_mappings
        self.groups = template.group_mappings
        self.soft_delete_mapped = any(m.target.lower() == "active" for m in self.users)
        self.escrow_failures = escrow_failures
        self.inline_references = inline_references
        self.pending_managers: list[PendingManager] = []
        #: The job's escrows when the cycle began, by (kind, anchor) (a cycle sets it; empty on
        #: demand). :meth:`settle` ends those of objects left with nothing to do, without a state
        #: write for the others; and a user's *reference* escrow (its manager link failed, 2.8)
        #: outlives the user's own success until the link is made or no longer wanted.
        self.escrowed: dict[tuple[ObjectKind, str], Escrow] = {}
        self._logged = logged

    # -- an object in scope: match or follow the connection, map, plan, export ----------------

    async def provision(
        self,
        obj: SourceObject,
        conn: ObjectConnection | None,
        computed: Mapping[str, Any],
        trail: Trail = SILENT,
        *,
        settle: bool = True,
    ) -> bool:
        """Create or update ``obj``'s account (1.3, 1.4) and log it; False when that failed (the
        failure is logged, and escrowed in cycles). ``settle``: a success ends the object's escrow;
        a cycle ends a group's only once its memberships are done too."""
        kind = obj.kind
        mappings = self.users if kind is ObjectKind.USER else self.groups
        target_id: str | None = None
        try:
            current: dict[str, Any] | None = None
            if conn is not None:
                current = await self.target.get(kind, conn.target_id)
                if current is None:  # InvalidAnchor: the account is gone; match or create again
                    self.state.delete_connection(self.name, kind, obj.anchor)
                    trail.anchor_lost(conn.target_id)
                else:
                    target_id = conn.target_id
                    trail.connected(kind, target_id)
            if current is None:
                values = map_object(obj, mappings, self.ctx, creating=True, computed=computed)
                if values.failed:
                    self._failed_mapping(obj, None, values, trail)
                    return False
                try:
                    queries = matching_queries(values, mappings)
                except MatchingImpossible as exc:
                    trail.unmatchable(str(exc))
                    self.finish(obj, None, skip(Reason.IMPORT_SKIPPED, str(exc)), trail, Performed.NOTED)
                    self.settle(kind, obj.anchor)  # skipped, no account: nothing to retry
                    return True
                results: list[list[str]] = []
                found: list[dict[str, Any]] = []
                for path, value in queries:
                    found = await self.target.find(kind, path, value)
                    ids = [str(r.get("id")) for r in found]
                    results.append(ids)
                    trail.queried(path, value, ids)
                    if found:
                        break
                match = decide(results)
                trail.matched(kind, match)
                if match.outcome is MatchOutcome.DUPLICATE_TARGET_ENTRIES:
                    text = f"{len(match.candidates)} accounts match: {', '.join(match.candidates)}"
                    self.fail(obj, None, Reason.DUPLICATE_TARGET_ENTRIES.value, text, trail)
                    return False
                if match.outcome is MatchOutcome.CREATE:
                    await self._create(obj, values, trail, settle)
                    return True
                assert match.target_id is not None
                current = found[0] if len(found) == 1 else await self.target.get(kind, match.target_id)
                if current is None:
                    vanished = "the matched account vanished"
                    self.fail(obj, match.target_id, Reason.INVALID_ANCHOR.value, vanished, trail)
                    return False
                target_id = match.target_id
            assert target_id is not None
            return await self._update(obj, target_id, current, computed, trail, settle)
        except TargetError as exc:
            self.fail(obj, target_id, exc.code, str(exc), trail)
            return False

    async def _create(self, obj: SourceObject, values: MappedValues, trail: Trail, settle: bool) -> None:
        kind = obj.kind
        references = self._references(values) if self.inline_references and kind is ObjectKind.USER else None
        # Entra adds its ADSCIM group schema (Q9); the strict RFC dialect sends the core only.
        strict = kind is ObjectKind.GROUP and self.target.dialect is PatchDialect.RFC
        body = build_resource(kind, values, schemas=(CORE_GROUP,) if strict else None, references=references)
        created = await self.target.create(kind, body)
        target_id = str(created["id"])
        self.connect(obj, target_id, settle=settle)
        if kind is ObjectKind.USER and not self.inline_references:
            self._remember_manager(obj.anchor, target_id, values, None)
        note = self._reference_note(values, references) if references is not None else None
        self.finish(obj, target_id, plan_create(values), trail, Performed.CREATED, note=note)
        self._count("exports")

    async def _update(
        self,
        obj: SourceObject,
        target_id: str,
        current: Mapping[str, Any],
        computed: Mapping[str, Any],
        trail: Trail,
        settle: bool,
    ) -> bool:
        kind = obj.kind
        mappings = self.users if kind is ObjectKind.USER else self.groups
        values = map_object(obj, mappings, self.ctx, creating=False, computed=computed)
        if values.failed:
            self._failed_mapping(obj, target_id, values, trail)
            return False
        references = self._references(values) if self.inline_references and kind is ObjectKind.USER else None
        plan = plan_update(current, values, mappings, references=references)
        if plan.operations:
            await self.target.patch(kind, target_id, target_ops(plan))
            self._count("exports")
        self.connect(obj, target_id, settle=settle)
        if kind is ObjectKind.USER and not self.inline_references:
            self._remember_manager(obj.anchor, target_id, values, current)
        if plan.action is Action.SKIP:
            self.finish(obj, target_id, plan, trail, Performed.UNCHANGED)
        else:
            note = self._reference_note(values, references) if references is not None else None
            self.finish(obj, target_id, plan, trail, Performed.UPDATED, note=note)
        return True

    def _failed_mapping(
        self, obj: SourceObject, target_id: str | None, values: MappedValues, trail: Trail
    ) -> None:
        code = Reason.EXPRESSION_EVALUATION_FAILED.value
        self.fail(obj, target_id, code, values.failure_reason() or "", trail)

    # -- references (1.3 step 5) ----------------------------------------------------------------

    def _references(self, values: MappedValues) -> dict[str, list[str]]:
        """Manager references whose manager already has an account (on demand)."""
        out: dict[str, list[str]] = {}
        for path, anchors in values.references.items():
            if not _is_manager(path) or not anchors:
                continue
            manager = self.state.connection(self.name, ObjectKind.USER, anchors[0])
            if manager is not None:
                out[path] = [manager.target_id]
        return out

    @staticmethod
    def _reference_note(values: MappedValues, references: Mapping[str, list[str]]) -> dict[str, str]:
        for path, anchors in values.references.items():
            if _is_manager(path) and anchors and path not in references:
                return {"manager": f"{anchors[0]} has no account in the target yet: linked by a later cycle"}
        return {}

    def _remember_manager(
        self, anchor: str, target_id: str, values: MappedValues, current: Mapping[str, Any] | None
    ) -> None:
        anchors = next((a for p, a in values.references.items() if _is_manager(p)), ())
        if not anchors:
            self.settle(ObjectKind.USER, anchor)  # no manager (any more): no link to retry
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

    async def link_manager(self, pending: PendingManager) -> None:
        """The reference round's PATCH of one user's manager; a failure is a reference escrow."""
        anchor, target_id, manager_anchor, have = pending
        manager = self.state.connection(self.name, ObjectKind.USER, manager_anchor)
        if manager is None or manager.target_id == have:
            # out of scope: linked after a restart (KNOWN, 2.5); or already right
            self.settle(ObjectKind.USER, anchor)
            return
        op = TargetOp("add" if have is None else "replace", MANAGER_PATH, {"value": manager.target_id})
        try:
            await self.target.patch(ObjectKind.USER, target_id, [op])
            self._count("references")
            self.settle(ObjectKind.USER, anchor)
        except TargetError as exc:
            self._count("reference_failures")
            self._count("Failure")
            self.escrow(ObjectKind.USER, anchor, exc.code, str(exc), reference=True)

    # -- memberships (1.6) ----------------------------------------------------------------------

    async def memberships(self, group: SourceObject, conn: ObjectConnection) -> MembershipChange:
        """Add and remove members in batches: only users the engine provisioned (and has not
        disabled). Raises TargetError; the members recorded are those the target accepted.

        What the target should have is the source's members with an active connection. Only the
        members not provisioned yet need their connections read; a provisioned member goes when
        the source no longer lists it or its connection lapsed (``lapsed_members``, one indexed
        join), so a changed 20,000-member group does not read 20,000 connections."""
        name = self.name
        members = user_members(group)
        have = self.state.members(name, group.anchor)
        newcomers = [a for a in dict.fromkeys(members) if a not in have]
        connected = self.state.connections_of(name, ObjectKind.USER, newcomers)
        add_ids = {
            a: c.target_id for a in sorted(newcomers) if (c := connected.get(a)) is not None and c.active
        }
        listed = set(members)
        lapsed = self.state.lapsed_members(name, group.anchor)
        remove = tuple(sorted((have - listed) | lapsed))
        if add_ids:
            await self.target.add_members(conn.target_id, list(add_ids.values()))
            self.state.add_members(name, group.anchor, list(add_ids))
        if remove:
            gone = self.state.connections_of(name, ObjectKind.USER, remove)
            ids = [c.target_id for a in remove if (c := gone.get(a)) is not None]
            await self.target.remove_members(conn.target_id, ids)
            self.state.remove_members(name, group.anchor, remove)
        if add_ids or remove:
            self._count("memberships", len(add_ids) + len(remove))
        kept = len((have & listed) - lapsed)
        return MembershipChange(add_ids, remove, kept + len(add_ids))

    def memberships_failed(
        self, group: SourceObject, conn: ObjectConnection, exc: TargetError, trail: Trail = SILENT
    ) -> None:
        """A group's member update the target refused: logged and escrowed as the group's failure,
        and counted as a *reference* failure (``reference_failures``), as a failed manager link is.
        Entra counts reference failures (manager, group member) apart from object failures
        (entra-behaviour.md 2.8): they count toward the 60,000 cap only, not the 5,000 gate, the
        40,000 threshold or the 40 % proportion (2.9, :mod:`~provisor.engine.quarantine`)."""
        self._count("reference_failures")
        self.fail(group, conn.target_id, exc.code, str(exc), trail)

    # -- leaving: disable, delete, or stage (2.6, 2.7) ---------------------------------------

    async def deprovision(
        self,
        obj: SourceObject,
        conn: ObjectConnection,
        event: DeprovisionEvent,
        trail: Trail = SILENT,
        *,
        hold: bool = False,
    ) -> None:
        """Disable or delete ``obj``'s account as the deprovisioning matrix says (2.6); ``hold``
        stages a disable or delete instead (StagedDelete, 2.7)."""
        name, kind = self.name, obj.kind
        if kind is ObjectKind.GROUP:
            plan = Plan(
                Action.DELETE, Reason.OUT_OF_SCOPE if event is not DeprovisionEvent.HARD_DELETED else None
            )
        else:
            plan = self._deprovision_plan(event)
        if hold and plan.action in (Action.DISABLE, Action.DELETE):
            self.state.stage_delete(
                name, StagedDelete(kind, obj.anchor, conn.target_id, plan.action.value, self.clock())
            )
            self.finish(obj, conn.target_id, staged(plan), trail, Performed.DEPROVISIONED, status="Skipped")
            return
        try:
            if plan.action is Action.DELETE:
                await self.target.delete(kind, conn.target_id)
                self.state.delete_connection(name, kind, obj.anchor)
            elif plan.action is Action.DISABLE:
                # Read first, as for any update (1.4): the log shows the old value, an account
                # already inactive is RedundantExport, and one that is gone drops its connection.
                current = await self.target.get(kind, conn.target_id)
                if current is None:
                    self.state.delete_connection(name, kind, obj.anchor)
                    plan = skip(Reason.INVALID_ANCHOR, "the account no longer exists")
                else:
                    plan = self._deprovision_plan(event, current)
                    if plan.operations:
                        await self.target.patch(kind, conn.target_id, target_ops(plan))
                    self.state.save_connection(name, replace(conn, active=False))
        except TargetError as exc:
            self.fail(obj, conn.target_id, exc.code, str(exc), trail)
            return
        self.finish(obj, conn.target_id, plan, trail, Performed.DEPROVISIONED)
        self.settle(kind, obj.anchor)  # deleted, disabled or left alone: nothing left to retry

    def _deprovision_plan(self, event: DeprovisionEvent, current: Mapping[str, Any] | None = None) -> Plan:
        return plan_deprovision(
            event,
            soft_delete_mapped=self.soft_delete_mapped,
            skip_out_of_scope_deletions=self.job.settings.skip_out_of_scope_deletions,
            current=current,
        )

    # -- outcomes: connection, escrow, log record ----------------------------------------------

    def connect(self, obj: SourceObject, target_id: str, *, settle: bool = True) -> None:
        """Keep the object connection (OBJCONN, 2.4); ``settle``: the success ends the object's
        escrow (2.8), unless it is a manager link's (reference) escrow: that one ends when the
        reference round links the manager (or finds no link to make)."""
        display = obj.get("displayName") or obj.get("userPrincipalName") or ""
        self.state.save_connection(self.name, ObjectConnection(obj.kind, obj.anchor, target_id, str(display)))
        if settle:
            held = self.escrowed.get((obj.kind, obj.anchor))
            if held is not None and held.reference and not self.inline_references:
                return
            self.escrowed.pop((obj.kind, obj.anchor), None)
            self.state.clear_escrow(self.name, obj.kind, obj.anchor)

    def settle(self, kind: ObjectKind, anchor: str) -> None:
        """End the escrow of an object left with nothing to do (2.8: gone, deleted, out of scope
        with nothing to deprovision, a manager link made): it is not retried, nor looked up again.
        Only escrows in :attr:`escrowed` are cleared, so objects without one cost no write."""
        if self.escrowed.pop((kind, anchor), None) is not None:
            self.state.clear_escrow(self.name, kind, anchor)

    def escrow(
        self, kind: ObjectKind, anchor: str, code: str, message: str, *, reference: bool = False
    ) -> None:
        """Escrow a failure for retry with backoff (2.8)."""
        previous = self.state.escrow(self.name, kind, anchor)
        escrow = next_escrow(
            previous,
            kind=kind,
            anchor=anchor,
            code=code,
            message=message,
            now=self.clock(),
            reference=reference,
        )
        self.state.save_escrow(self.name, escrow)
        self.escrowed.pop((kind, anchor), None)  # superseded: a later settle must not clear this one

    def fail(
        self, obj: SourceObject, target_id: str | None, code: str, message: str, trail: Trail = SILENT
    ) -> None:
        """A failed object: escrowed (cycles) and logged with its error code (2.8, 2.12)."""
        if self.escrow_failures:
            self.escrow(obj.kind, obj.anchor, code, message)
        failure = Plan(Action.SKIP, None, detail=message)
        self.finish(obj, target_id, failure, trail, Performed.FAILED, status="Failure", code=code)

    def finish(
        self,
        obj: SourceObject,
        target_id: str | None,
        plan: Plan,
        trail: Trail = SILENT,
        performed: Performed = Performed.NOTED,
        *,
        status: str | None = None,
        code: str | None = None,
        note: Mapping[str, str] | None = None,
        steps: tuple[LogStep, ...] = (),
    ) -> None:
        """The Perform action step and the object's log record (2.12). ``status`` defaults to
        Skipped for a Skip and Success otherwise; ``steps`` stand in for a silent trail's."""
        if status is None:
            status = "Skipped" if plan.action is Action.SKIP else "Success"
        trail.acted(obj.kind, target_id, plan, status, performed, code, note)
        action = plan.action.value
        self._count(action)
        self._count(status)
        display = obj.get("displayName") or obj.get("userPrincipalName") or ""
        self.state.append_log(
            self.name,
            LogRecord(
                cycle=self.cycle,
                time=self.clock(),
                kind=obj.kind,
                source_anchor=obj.anchor,
                target_id=target_id,
                display=str(display),
                action=action,
                status=status,
                reason=code if code is not None else (plan.reason.value if plan.reason else ""),
                steps=trail.log_steps() or steps or export_steps(plan),
                modified=tuple((m.attribute, m.old, m.new) for m in plan.modified),
                error=plan.detail if status == "Failure" else "",
            ),
        )
        if self._logged is not None:
            self._logged()

    def _count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


def target_ops(plan: Plan) -> list[TargetOp]:
    """The plan's operations for the target client, which renders them in its dialect."""
    return [TargetOp(op.op, op.path, op.value) for op in plan.operations]


def export_steps(plan: Plan) -> tuple[LogStep, ...]:
    """A cycle's log steps: the export, with how many operations it sent."""
    status = "skipped" if plan.action is Action.SKIP else "success"
    details = {"operations": len(plan.operations)} if plan.operations else {}
    return (LogStep("export", status, plan.detail or plan.action.value, details),)


def _is_manager(path: str) -> bool:
    return path.lower().endswith("manager")
