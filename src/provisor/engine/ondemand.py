"""Provision on demand (entra-behaviour.md 2.11): one user, or one group with at most five
members, through every step now, each step's result reported.

The steps are Entra's: Test connection (reported only when it failed), Import (the source
attributes, normalised), Scope evaluation (active? assigned? role? scoping filters?), Match (each
matching attribute in precedence order, its query and how many accounts answered) and Perform
action (Create, Update or Disable with the modified attributes old -> new, or Skip with its
reason, e.g. ``RedundantExport``). A group's members are provisioned first, then the group and
its memberships.

The object goes through the same :class:`~provisor.engine.provision.Provisioner` as in a cycle,
with a :class:`~provisor.engine.steps.StepTrail` keeping its steps. Like a cycle, the outcome is
written to the provisioning log (one record per object, the steps included) and the object
connection is updated; unlike a cycle, the watermark, the job's status, escrows and the deletion
threshold are left alone, and a manager that already has an account is linked in the user's own
request. Entra's limits hold (2.11):

* the ``aadOptscim062020`` flag is not honoured: on-demand PATCH bodies are always Entra's
  default dialect (1.4), whatever the target URL or ``patch_dialect`` says;
* a user disabled in the source is not acted on (the next cycle disables the account), while a
  connected user that is no longer assigned is disabled;
* no nested groups (only a group's direct user members), at most 5 members.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from provisor.engine.assignments import Assignments, ScopeDecision, Verdict, user_members
from provisor.engine.directory import (
    AmbiguousObject,
    Directory,
    ObjectNotFound,
    OnDemandError,
    directory_for,
)
from provisor.engine.jobs.model import DEFAULT_ACCESS_ROLE, Job, PatchDialect, ScopeMode
from provisor.engine.mapping import EvalContext
from provisor.engine.model import ObjectKind, SourceObject
from provisor.engine.plan import Action, DeprovisionEvent, Reason, skip
from provisor.engine.provision import Provisioner, computed_attributes, deprovision_event, scope_skip
from provisor.engine.scoping import evaluate
from provisor.engine.state import EngineState, ObjectConnection
from provisor.engine.steps import OnDemandResult, Step, StepTrail, display_of, log_text
from provisor.engine.targets import ScimTarget, TargetError
from provisor.engine.templates import Template
from provisor.engine.trail import Performed

__all__ = [
    "MAX_GROUP_MEMBERS",
    "AmbiguousObject",
    "Directory",
    "ObjectNotFound",
    "OnDemandError",
    "OnDemandResult",
    "Step",
    "TooManyMembers",
    "directory_for",
    "provision_on_demand",
    "run_on_demand",
]

#: "one group with up to 5 members" (2.11).
MAX_GROUP_MEMBERS = 5
#: The dialect on-demand provisioning always speaks: the flag is not honoured (1.4, 2.11).
ON_DEMAND_DIALECT = PatchDialect.ENTRA
#: 2.11: on demand can't act on users disabled or deleted in the source.
_DISABLED_IN_SOURCE = (
    "disabled in the source: provisioning on demand does not act on it; the next cycle disables the account"
)


class TooManyMembers(OnDemandError):
    """A group with more than :data:`MAX_GROUP_MEMBERS` members (2.11)."""


class OnDemand:
    """One on-demand run against an open target; see :func:`provision_on_demand`."""

    def __init__(
        self,
        job: Job,
        template: Template,
        state: EngineState,
        target: ScimTarget,
        directory: Directory,
        *,
        clock: Callable[[], datetime],
        ctx: EvalContext,
    ) -> None:
        self.job = job
        self.state = state
        self.directory = directory
        self.assignments = Assignments(job.scope)
        self.cycle = f"on-demand-{uuid.uuid4()}"
        self.provisioner = Provisioner(
            job,
            template,
            target,
            state,
            clock=clock,
            ctx=ctx,
            cycle=self.cycle,
            escrow_failures=False,
            inline_references=True,
        )

    async def run(self, kind: ObjectKind, key: str) -> OnDemandResult:
        obj = self.directory.find(kind, key)
        if self.job.scope.mode is ScopeMode.ASSIGNED:
            names = [a.group for a in self.job.scope.assignments if a.group is not None]
            for group in self.directory.groups_named(names) if names else []:
                self.assignments.note_group(group)
        if kind is ObjectKind.USER:
            return await self._user(obj)
        return await self._group(obj)

    def _start(self, obj: SourceObject) -> tuple[OnDemandResult, StepTrail]:
        res = OnDemandResult(obj.kind, obj.anchor, display_of(obj), cycle=self.cycle)
        trail = StepTrail(res)
        trail.imported(obj)
        return res, trail

    # -- users ---------------------------------------------------------------------------------

    async def _user(self, obj: SourceObject) -> OnDemandResult:
        res, trail = self._start(obj)
        decision = self.assignments.user(obj)
        trail.add(self._user_scope_step(obj, decision))
        conn = self.state.connection(self.job.name, ObjectKind.USER, obj.anchor)
        if decision.in_scope:
            await self.provisioner.provision(obj, conn, computed_attributes(decision), trail)
        else:
            await self._out_of_scope(obj, conn, decision, trail)
        return res

    def _user_scope_step(self, obj: SourceObject, decision: ScopeDecision) -> Step:
        scope = self.job.scope
        upn = obj.get("userPrincipalName")
        roles = self.assignments.direct_roles(
            upn if isinstance(upn, str) else None
        ) | self.assignments.member_roles.get(obj.anchor, frozenset())
        sync_all = scope.mode is ScopeMode.ALL
        assigned = sync_all or bool(roles)
        entitled = sync_all or not (scope.skip_default_access and roles <= {DEFAULT_ACCESS_ROLE})
        filters = evaluate(scope.user_filters, obj.attributes)
        active = (
            decision.verdict is not Verdict.DISABLED and str(obj.get("accountEnabled")).lower() != "false"
        )
        details = {
            "Active in source system": log_text(active),
            "Assigned to application": log_text(assigned),
            "Scope sync all": log_text(sync_all),
            "User has required role": log_text(assigned and entitled),
            "Roles": ", ".join(sorted(roles)) if roles else "",
            "Scoping filter evaluation passed": log_text(filters.in_scope),
            "Scoping filters": filters.explain(),
            "ScopeEvaluationResult": decision.verdict.value,
        }
        if decision.in_scope:
            how = (
                "every user is in scope (sync all)"
                if sync_all
                else f"assigned with role {', '.join(sorted(roles))}"
            )
            return Step("Scope evaluation", "scoping", "success", f"The user is in scope: {how}", details)
        return Step(
            "Scope evaluation",
            "scoping",
            "skipped",
            f"The user is out of scope: {decision.detail or decision.verdict.value}",
            details,
        )

    async def _out_of_scope(
        self, obj: SourceObject, conn: ObjectConnection | None, decision: ScopeDecision, trail: StepTrail
    ) -> None:
        """A user that is not (or no longer) in scope: left alone unless it has an active
        account, which is disabled now (2.11), not at the next cycle."""
        if conn is None or not conn.active:
            self.provisioner.finish(obj, None, scope_skip(decision), trail, Performed.SKIPPED)
            return
        event = deprovision_event(decision)
        if event is DeprovisionEvent.SOFT_DELETED:
            plan = skip(Reason.OUT_OF_SCOPE, _DISABLED_IN_SOURCE)
            self.provisioner.finish(obj, conn.target_id, plan, trail, Performed.NOTED)
            return
        await self.provisioner.deprovision(obj, conn, event, trail)

    # -- groups --------------------------------------------------------------------------------

    async def _group(self, obj: SourceObject) -> OnDemandResult:
        anchors = user_members(obj)
        if len(anchors) > MAX_GROUP_MEMBERS:
            raise TooManyMembers(
                f"group {display_of(obj)!r} has {len(anchors)} members; provisioning on demand takes a "
                f"group with at most {MAX_GROUP_MEMBERS} members (use 'provisor sync')"
            )
        res, trail = self._start(obj)
        decision = self.assignments.group(obj)
        scope = self.job.scope
        filters = evaluate(scope.group_filters, obj.attributes)
        details = {
            "Assigned to application": log_text(
                scope.mode is ScopeMode.ALL or obj.anchor in self.assignments.group_roles
            ),
            "Scope sync all": log_text(scope.mode is ScopeMode.ALL),
            "Scoping filter evaluation passed": log_text(filters.in_scope),
            "Scoping filters": filters.explain(),
            "Members": str(len(anchors)),
            "ScopeEvaluationResult": decision.verdict.value,
        }
        conn = self.state.connection(self.job.name, ObjectKind.GROUP, obj.anchor)
        if not decision.in_scope:
            detail = decision.detail or decision.verdict.value
            trail.add(
                Step(
                    "Scope evaluation", "scoping", "skipped", f"The group is out of scope: {detail}", details
                )
            )
            target_id = conn.target_id if conn else None
            plan = skip(Reason.OUT_OF_SCOPE, detail)
            self.provisioner.finish(obj, target_id, plan, trail, Performed.SKIPPED)
            return res
        trail.add(Step("Scope evaluation", "scoping", "success", "The group is in scope", details))
        sources = self.directory.users(anchors)
        for anchor in anchors:
            member = sources.get(anchor)
            if member is None:
                res.members.append(self._missing_member(anchor))
            else:
                res.members.append(await self._user(member))
        await self.provisioner.provision(obj, conn, {}, trail)
        conn = self.state.connection(self.job.name, ObjectKind.GROUP, obj.anchor)
        if conn is not None and res.result != "Failure":
            await self._memberships(obj, conn, res)
        return res

    def _missing_member(self, anchor: str) -> OnDemandResult:
        gone = OnDemandResult(
            ObjectKind.USER,
            anchor,
            anchor,
            result="Skipped",
            action=Action.SKIP.value,
            reason="NotFound",
            cycle=self.cycle,
        )
        gone.steps.append(Step("Import", "import", "skipped", "The member is not in the source", {}))
        return gone

    async def _memberships(self, group: SourceObject, conn: ObjectConnection, res: OnDemandResult) -> None:
        try:
            change = await self.provisioner.memberships(group, conn)
        except TargetError as exc:
            res.steps.append(Step("Memberships", "export", "failure", f"{exc.code}: {exc}", {}))
            res.result = "Failure"
            return
        add, remove = change.added, change.removed
        details = {
            "added": ", ".join(change.added_ids.values()),
            "removed": ", ".join(remove),
            "members": str(change.members),
        }
        if add or remove:
            text = f"Added {len(add)} and removed {len(remove)} member(s)"
            res.steps.append(Step("Memberships", "export", "success", text, details))
            if res.result == "Skipped":  # the group itself was unchanged but its members were
                res.result, res.action = "Success", Action.UPDATE.value
        else:
            res.steps.append(
                Step("Memberships", "export", "skipped", "Memberships already up to date", details)
            )


async def provision_on_demand(
    job: Job,
    template: Template,
    state: EngineState,
    target: ScimTarget,
    directory: Directory,
    *,
    kind: ObjectKind,
    key: str,
    clock: Callable[[], datetime],
    ctx: EvalContext | None = None,
) -> OnDemandResult:
    """Provision one object now (no Test Connection: see :func:`run_on_demand`)."""
    ctx = ctx or EvalContext(clock=clock, random=random.SystemRandom())
    return await OnDemand(job, template, state, target, directory, clock=clock, ctx=ctx).run(kind, key)


async def run_on_demand(
    job: Job,
    template: Template,
    state: EngineState,
    *,
    kind: ObjectKind,
    key: str,
    clock: Callable[[], datetime],
    directory: Directory | None = None,
    target_options: Mapping[str, Any] | None = None,
) -> OnDemandResult:
    """Test connection, then :func:`provision_on_demand`, in Entra's default PATCH dialect.

    A failed Test connection is the only step shown then (2.11), with result Failure. Raises
    :class:`OnDemandError` when the object cannot be found or is not eligible, SourceError when
    the source cannot be read.
    """
    options = {**(target_options or {}), "dialect": ON_DEMAND_DIALECT}
    directory = directory or directory_for(job)
    try:
        async with ScimTarget.from_config(job.target, **options) as target:
            matching = next(
                (m.target for m in template.user_mappings if m.matching_precedence == 1), "userName"
            )
            try:
                await target.test_connection(user_matching_attr=matching)
            except TargetError as exc:
                res = OnDemandResult(kind, key, key, result="Failure", reason=exc.code)
                res.steps.append(
                    Step(
                        "Test connection",
                        "import",
                        "failure",
                        f"Test connection failed: {exc}",
                        {"code": exc.code},
                    )
                )
                return res
            return await provision_on_demand(
                job, template, state, target, directory, kind=kind, key=key, clock=clock
            )
    finally:
        directory.close()
