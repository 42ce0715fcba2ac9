"""Provision on demand (entra-behaviour.md 2.11): one user, or one group with at most five
members, through every step now, each step's result reported.

The steps are Entra's: Test connection (reported only when it failed), Import (the source
attributes, normalised), Scope evaluation (active? assigned? role? scoping filters?), Match (each
matching attribute in precedence order, its query and how many accounts answered) and Perform
action (Create, Update or Disable with the modified attributes old -> new, or Skip with its
reason, e.g. ``RedundantExport``). A group's members are provisioned first, then the group and
its memberships.

Like a cycle, the outcome is written to the provisioning log (one record per object, the steps
included) and the object connection is updated; unlike a cycle, the watermark, the job's
status, escrows and the deletion threshold are left alone. Entra's limits hold (2.11):

* the ``aadOptscim062020`` flag is not honoured: on-demand PATCH bodies are always Entra's
  default dialect (1.4), whatever the target URL or ``patch_dialect`` says;
* a user disabled in the source is not acted on (the next cycle disables the account), while a
  connected user that is no longer assigned is disabled;
* no nested groups (only a group's direct user members), at most 5 members.
"""

from __future__ import annotations

import json
import random
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from provisor.engine.assignments import (
    Assignments,
    ScopeDecision,
    Verdict,
    app_role_assignments,
    user_members,
)
from provisor.engine.jobs.model import DEFAULT_ACCESS_ROLE, Job, PatchDialect, ScopeMode, SourceType
from provisor.engine.mapping import EvalContext
from provisor.engine.mapping.attributes import MappedValues, build_resource, map_object
from provisor.engine.matching import MatchingImpossible, MatchOutcome, decide, filter_text, matching_queries
from provisor.engine.model import ObjectKind, SourceError, SourceObject
from provisor.engine.plan import (
    Action,
    DeprovisionEvent,
    ModifiedProperty,
    Plan,
    Reason,
    plan_create,
    plan_deprovision,
    plan_members,
    plan_update,
)
from provisor.engine.scoping import evaluate
from provisor.engine.state import EngineState, LogRecord, LogStep, ObjectConnection
from provisor.engine.targets import ScimTarget, TargetError
from provisor.engine.targets.patch import PatchOperation as TargetOp
from provisor.engine.templates import Template
from provisor.engine.templates.model import AttributeMapping

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


class OnDemandError(Exception):
    """The object cannot be provisioned on demand; the message says why (no secrets)."""


class ObjectNotFound(OnDemandError):
    """No source object has that id, userPrincipalName or displayName."""


class AmbiguousObject(OnDemandError):
    """More than one source object answers to the name given."""


class TooManyMembers(OnDemandError):
    """A group with more than :data:`MAX_GROUP_MEMBERS` members (2.11)."""


@dataclass(frozen=True, slots=True)
class Step:
    """One provisioning step as Entra's on-demand answer shows it (G-POD, G-STEP)."""

    name: str
    type: str  # import / scoping / matching / export
    status: str  # success / skipped / failure / warning
    description: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "status": self.status,
            "description": self.description,
            "details": dict(self.details),
        }


@dataclass(slots=True)
class OnDemandResult:
    """What happened to one object: ``result`` is Success, Skipped or Failure."""

    kind: ObjectKind
    anchor: str
    display: str
    result: str = "Success"
    action: str = ""
    reason: str = ""
    target_id: str | None = None
    steps: list[Step] = field(default_factory=list)
    modified: tuple[ModifiedProperty, ...] = ()
    members: list[OnDemandResult] = field(default_factory=list)
    cycle: str = ""

    @property
    def failed(self) -> bool:
        """This object or one of its members failed."""
        return self.result == "Failure" or any(m.failed for m in self.members)

    def as_json(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "object": {"type": self.kind.value.title(), "id": self.anchor, "displayName": self.display},
            "action": self.action,
            "reason": self.reason,
            "targetId": self.target_id,
            "provisioningSteps": [s.as_json() for s in self.steps],
            "modifiedProperties": [{"name": m.attribute, "old": m.old, "new": m.new} for m in self.modified],
            "members": [m.as_json() for m in self.members],
            "logCycle": self.cycle,
        }


# -- finding the object in the source ------------------------------------------------------------


class Directory(Protocol):
    """Looks objects up in the job's source without reading it as a cycle would."""

    def find(self, kind: ObjectKind, key: str) -> SourceObject:
        """By anchor, or by userPrincipalName (users) / displayName (groups)."""
        ...

    def groups_named(self, names: Iterable[str]) -> list[SourceObject]:
        """The groups with these displayNames (case-insensitive)."""
        ...

    def users(self, anchors: Iterable[str]) -> dict[str, SourceObject]:
        """These users, by anchor; anchors the source does not have are missing."""
        ...

    def close(self) -> None: ...


_ENDPOINT = {ObjectKind.USER: "/Users", ObjectKind.GROUP: "/Groups"}
_NAME = {ObjectKind.USER: ("userName", "userPrincipalName"), ObjectKind.GROUP: ("displayName", "displayName")}


class ScimDirectory:
    """A SCIM source: ``GET /Users/{id}`` or ``filter=userName eq "..."`` (``displayName`` for
    groups); never a full read."""

    def __init__(self, job: Job, *, client: httpx.Client | None = None) -> None:
        from provisor.engine.sources.scim import ScimSource

        config = job.source
        if not config.url or config.token is None:
            raise OnDemandError("a scim source needs a url and a token")
        self._base = config.url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {config.token.reveal()}",
            "Accept": "application/scim+json",
        }
        self._client = client or httpx.Client(timeout=30.0)
        self._source = ScimSource.from_config(config, client=self._client)
        self._nickname = (config.option("nickname_from_external_id", "true") or "true").lower() != "false"

    def close(self) -> None:
        self._client.close()

    def _by_id(self, kind: ObjectKind, anchor: str) -> SourceObject | None:
        try:
            return self._source.get(kind, anchor)
        except SourceError as exc:
            if "(HTTP 400)" in str(exc):
                return None  # an id the server cannot parse is no id of it
            raise

    def _by_name(self, kind: ObjectKind, name: str) -> list[SourceObject]:
        from provisor.engine.sources.scim_normalise import to_source_object

        attribute = _NAME[kind][0]
        params = {"filter": filter_text(attribute, name)}
        if kind is ObjectKind.USER:
            params["excludedAttributes"] = "groups"
        try:
            response = self._client.get(self._base + _ENDPOINT[kind], params=params, headers=self._headers)
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot reach the SCIM source at {self._base}: {type(exc).__name__}") from exc
        if response.status_code in (401, 403):
            raise SourceError(f"the SCIM source refused the token ({response.status_code})")
        if response.status_code != 200:
            raise SourceError(f"GET {self._base}{_ENDPOINT[kind]} answered {response.status_code}")
        resources = response.json().get("Resources") or []
        return [
            to_source_object(kind, r, nickname_from_external_id=self._nickname)
            for r in resources
            if isinstance(r, Mapping)
        ]

    def find(self, kind: ObjectKind, key: str) -> SourceObject:
        by_name = "@" in key if kind is ObjectKind.USER else False
        if not by_name:
            found = self._by_id(kind, key)
            if found is not None:
                return found
        return _one(kind, key, self._by_name(kind, key))

    def groups_named(self, names: Iterable[str]) -> list[SourceObject]:
        out: list[SourceObject] = []
        for name in sorted(set(names)):
            out.extend(
                g
                for g in self._by_name(ObjectKind.GROUP, name)
                if str(g.get("displayName")).lower() == name.lower()
            )
        return out

    def users(self, anchors: Iterable[str]) -> dict[str, SourceObject]:
        out: dict[str, SourceObject] = {}
        for anchor in anchors:
            found = self._source.get(ObjectKind.USER, anchor)
            if found is not None:
                out[anchor] = found
        return out


class FileDirectory:
    """A CSV or JSON-lines source: a scan of the file, with a throw-away snapshot so that the
    job's own snapshot (its watermark) is not touched."""

    def __init__(self, job: Job) -> None:
        from provisor.engine.sources import files

        self._tmp = tempfile.TemporaryDirectory(prefix="provisor-ondemand-")
        config = replace(job.source, options=tuple((k, v) for k, v in job.source.options if k != "snapshot"))
        self._source = files.from_config(config, snapshot_path=Path(self._tmp.name) / "scan.db")

    def close(self) -> None:
        self._tmp.cleanup()

    def _scan(self, keep: Callable[[SourceObject], bool]) -> list[SourceObject]:
        return [o for o in self._source.read_all().objects if not o.deleted and keep(o)]

    def find(self, kind: ObjectKind, key: str) -> SourceObject:
        name = _NAME[kind][1]
        low = key.lower()
        hits = self._scan(
            lambda o: o.kind is kind and (o.anchor == key or str(o.get(name) or "").lower() == low)
        )
        exact = [o for o in hits if o.anchor == key]
        return exact[0] if exact else _one(kind, key, hits)

    def groups_named(self, names: Iterable[str]) -> list[SourceObject]:
        wanted = {n.lower() for n in names}
        return self._scan(
            lambda o: o.kind is ObjectKind.GROUP and str(o.get("displayName") or "").lower() in wanted
        )

    def users(self, anchors: Iterable[str]) -> dict[str, SourceObject]:
        wanted = set(anchors)
        return {o.anchor: o for o in self._scan(lambda o: o.kind is ObjectKind.USER and o.anchor in wanted)}


def _one(kind: ObjectKind, key: str, found: Sequence[SourceObject]) -> SourceObject:
    what = "user" if kind is ObjectKind.USER else "group"
    if not found:
        by = "id or userPrincipalName" if kind is ObjectKind.USER else "id or displayName"
        raise ObjectNotFound(f"no {what} with {by} {key!r} in the source")
    if len(found) > 1:
        raise AmbiguousObject(f"{len(found)} {what}s answer to {key!r}; give the id instead")
    return found[0]


def directory_for(job: Job) -> Directory:
    """The lookup for the job's source (SCIM: queries; files: a scan)."""
    if job.source.type is SourceType.SCIM:
        return ScimDirectory(job)
    return FileDirectory(job)


# -- the steps -----------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _display(obj: SourceObject) -> str:
    return str(obj.get("displayName") or obj.get("userPrincipalName") or obj.anchor)


def _is_manager(path: str) -> bool:
    return path.lower().endswith("manager")


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
        self.template = template
        self.state = state
        self.target = target
        self.directory = directory
        self.clock = clock
        self.ctx = ctx
        self.assignments = Assignments(job.scope)
        self.soft_delete_mapped = any(m.target.lower() == "active" for m in template.user_mappings)
        self.cycle = f"on-demand-{uuid.uuid4()}"

    # -- entry ---------------------------------------------------------------------------------

    async def run(self, kind: ObjectKind, key: str) -> OnDemandResult:
        obj = self.directory.find(kind, key)
        if self.job.scope.mode is ScopeMode.ASSIGNED:
            names = [a.group for a in self.job.scope.assignments if a.group is not None]
            for group in self.directory.groups_named(names) if names else []:
                self.assignments.note_group(group)
        if kind is ObjectKind.USER:
            return await self._user(obj)
        return await self._group(obj)

    # -- users ---------------------------------------------------------------------------------

    async def _user(self, obj: SourceObject) -> OnDemandResult:
        res = OnDemandResult(ObjectKind.USER, obj.anchor, _display(obj), cycle=self.cycle)
        res.steps.append(self._import_step(obj))
        decision = self.assignments.user(obj)
        res.steps.append(self._user_scope_step(obj, decision))
        conn = self.state.connection(self.job.name, ObjectKind.USER, obj.anchor)
        if not decision.in_scope:
            await self._out_of_scope(obj, conn, decision, res)
            return res
        computed = {"IsSoftDeleted": False, "appRoleAssignments": app_role_assignments(decision.roles)}
        await self._provision(obj, conn, computed, res)
        return res

    def _import_step(self, obj: SourceObject) -> Step:
        what = "user" if obj.kind is ObjectKind.USER else "group"
        details = {name: _text(value) for name, value in sorted(obj.attributes.items()) if value is not None}
        return Step(
            "Import",
            "import",
            "success",
            f"Retrieved {what} {_display(obj)} ({obj.anchor}) from the source system",
            details,
        )

    def _user_scope_step(self, obj: SourceObject, decision: ScopeDecision) -> Step:
        scope = self.job.scope
        upn = obj.get("userPrincipalName")
        roles = self.assignments.direct_roles(
            upn if isinstance(upn, str) else None
        ) | self.assignments.member_roles.get(obj.anchor, set())
        sync_all = scope.mode is ScopeMode.ALL
        assigned = sync_all or bool(roles)
        entitled = sync_all or not (scope.skip_default_access and roles <= {DEFAULT_ACCESS_ROLE})
        filters = evaluate(scope.user_filters, obj.attributes)
        active = (
            decision.verdict is not Verdict.DISABLED and str(obj.get("accountEnabled")).lower() != "false"
        )
        details = {
            "Active in source system": _text(active),
            "Assigned to application": _text(assigned),
            "Scope sync all": _text(sync_all),
            "User has required role": _text(assigned and entitled),
            "Roles": ", ".join(sorted(roles)) if roles else "",
            "Scoping filter evaluation passed": _text(filters.in_scope),
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
        self, obj: SourceObject, conn: ObjectConnection | None, decision: ScopeDecision, res: OnDemandResult
    ) -> None:
        reason = (
            Reason.NOT_EFFECTIVELY_ENTITLED
            if decision.verdict is Verdict.NOT_EFFECTIVELY_ENTITLED
            else Reason.OUT_OF_SCOPE
        )
        if conn is None or not conn.active:
            detail = decision.detail or decision.verdict.value
            self._finish(
                obj, res, None, Plan(Action.SKIP, reason, detail=detail), "Skipped", f"Skipped: {detail}"
            )
            return
        if decision.verdict is Verdict.DISABLED:
            # 2.11: on demand can't act on users disabled or deleted in the source.
            detail = (
                "disabled in the source: provisioning on demand does not act on it; "
                "the next cycle disables the account"
            )
            self._finish(
                obj, res, conn.target_id, Plan(Action.SKIP, reason, detail=detail), "Skipped", detail
            )
            return
        event = (
            DeprovisionEvent.NOT_EFFECTIVELY_ENTITLED
            if decision.verdict is Verdict.NOT_EFFECTIVELY_ENTITLED
            else DeprovisionEvent.OUT_OF_SCOPE
        )
        try:
            current = await self.target.get(ObjectKind.USER, conn.target_id)
            plan = plan_deprovision(
                event,
                soft_delete_mapped=self.soft_delete_mapped,
                skip_out_of_scope_deletions=self.job.settings.skip_out_of_scope_deletions,
                current=current,
            )
            if plan.action is Action.DISABLE:
                await self.target.patch(ObjectKind.USER, conn.target_id, _ops(plan))
                self.state.save_connection(self.job.name, replace(conn, active=False))
        except TargetError as exc:
            self._failure(obj, res, conn.target_id, exc.code, str(exc))
            return
        status = "Skipped" if plan.action is Action.SKIP else "Success"
        text = f"{plan.action.value}: {plan.detail or (plan.reason.value if plan.reason else '')}".rstrip(
            ": "
        )
        self._finish(obj, res, conn.target_id, plan, status, text)

    # -- the shared create / match / update ---------------------------------------------------

    def _mappings(self, kind: ObjectKind) -> Sequence[AttributeMapping]:
        return self.template.user_mappings if kind is ObjectKind.USER else self.template.group_mappings

    async def _provision(
        self, obj: SourceObject, conn: ObjectConnection | None, computed: dict[str, Any], res: OnDemandResult
    ) -> None:
        kind, mappings = obj.kind, self._mappings(obj.kind)
        what = "user" if kind is ObjectKind.USER else "group"
        current: dict[str, Any] | None = None
        try:
            note = ""
            if conn is not None:
                current = await self.target.get(kind, conn.target_id)
                if current is None:  # InvalidAnchor: the account is gone; match or create again
                    self.state.delete_connection(self.job.name, kind, obj.anchor)
                    note = f"the connected account {conn.target_id} no longer exists (InvalidAnchor); "
                    conn = None
                else:
                    res.steps.append(
                        Step(
                            "Match",
                            "matching",
                            "success",
                            f"Matched through the object connection to {what} {conn.target_id}",
                            {"objectConnection": conn.target_id, "results": "1"},
                        )
                    )
            if conn is None:
                values = map_object(obj, mappings, self.ctx, creating=True, computed=computed)
                if values.failed:
                    self._failure(
                        obj,
                        res,
                        None,
                        Reason.EXPRESSION_EVALUATION_FAILED.value,
                        values.failure_reason() or "",
                    )
                    return
                try:
                    queries = matching_queries(values, mappings)
                except MatchingImpossible as exc:
                    res.steps.append(Step("Match", "matching", "skipped", str(exc), {}))
                    self._finish(
                        obj,
                        res,
                        None,
                        Plan(Action.SKIP, Reason.IMPORT_SKIPPED, detail=str(exc)),
                        "Skipped",
                        str(exc),
                    )
                    return
                tried: list[dict[str, str]] = []
                results: list[list[str]] = []
                found: list[dict[str, Any]] = []
                for path, value in queries:
                    found = await self.target.find(kind, path, value)
                    ids = [str(r.get("id")) for r in found]
                    results.append(ids)
                    count = "0" if not ids else "1" if len(ids) == 1 else "many"
                    tried.append(
                        {
                            "attribute": path,
                            "value": value,
                            "query": filter_text(path, value),
                            "results": count,
                        }
                    )
                    if found:
                        break
                match = decide(results)
                details: dict[str, Any] = {"queries": tried}
                if match.outcome is MatchOutcome.DUPLICATE_TARGET_ENTRIES:
                    text = f"{len(match.candidates)} accounts match: {', '.join(match.candidates)}"
                    res.steps.append(Step("Match", "matching", "failure", note + text, details))
                    self._failure(obj, res, None, Reason.DUPLICATE_TARGET_ENTRIES.value, text)
                    return
                if match.outcome is MatchOutcome.CREATE:
                    res.steps.append(
                        Step(
                            "Match",
                            "matching",
                            "success",
                            f"{note}No matching {what} in the target: it will be created",
                            details,
                        )
                    )
                    references = self._references(values) if kind is ObjectKind.USER else {}
                    body = build_resource(kind, values, references=references)
                    created = await self.target.create(kind, body)
                    target_id = str(created["id"])
                    self._connect(obj, target_id)
                    plan = plan_create(values)
                    self._finish(
                        obj,
                        res,
                        target_id,
                        plan,
                        "Success",
                        f"Created the {what} in the target (id {target_id})",
                        extra=self._reference_note(values, references),
                    )
                    return
                assert match.target_id is not None
                res.steps.append(
                    Step(
                        "Match",
                        "matching",
                        "success",
                        f"{note}Matched {what} {match.target_id} in the target",
                        details,
                    )
                )
                current = found[0] if len(found) == 1 else await self.target.get(kind, match.target_id)
                if current is None:
                    self._failure(
                        obj, res, match.target_id, Reason.INVALID_ANCHOR.value, "the matched account vanished"
                    )
                    return
                conn = ObjectConnection(kind, obj.anchor, match.target_id)
            assert conn is not None and current is not None
            values = map_object(obj, mappings, self.ctx, creating=False, computed=computed)
            if values.failed:
                self._failure(
                    obj,
                    res,
                    conn.target_id,
                    Reason.EXPRESSION_EVALUATION_FAILED.value,
                    values.failure_reason() or "",
                )
                return
            references = self._references(values) if kind is ObjectKind.USER else {}
            plan = plan_update(current, values, mappings, references=references)
            if plan.operations:
                await self.target.patch(kind, conn.target_id, _ops(plan))
            self._connect(obj, conn.target_id)
            if plan.action is Action.SKIP:
                text = f"Skipped: nothing to change ({plan.reason.value if plan.reason else 'Skip'})"
                self._finish(obj, res, conn.target_id, plan, "Skipped", text)
            else:
                self._finish(
                    obj,
                    res,
                    conn.target_id,
                    plan,
                    "Success",
                    f"Updated {len(plan.modified)} attribute(s) of {what} {conn.target_id}",
                    extra=self._reference_note(values, references),
                )
        except TargetError as exc:
            self._failure(obj, res, conn.target_id if conn else None, exc.code, str(exc))

    def _references(self, values: MappedValues) -> dict[str, list[str]]:
        """Manager references whose manager already has an account (1.3 step 5)."""
        out: dict[str, list[str]] = {}
        for path, anchors in values.references.items():
            if not _is_manager(path) or not anchors:
                continue
            manager = self.state.connection(self.job.name, ObjectKind.USER, anchors[0])
            if manager is not None:
                out[path] = [manager.target_id]
        return out

    def _reference_note(self, values: MappedValues, references: Mapping[str, list[str]]) -> dict[str, str]:
        for path, anchors in values.references.items():
            if _is_manager(path) and anchors and path not in references:
                return {"manager": f"{anchors[0]} has no account in the target yet: linked by a later cycle"}
        return {}

    # -- groups --------------------------------------------------------------------------------

    async def _group(self, obj: SourceObject) -> OnDemandResult:
        anchors = user_members(obj)
        if len(anchors) > MAX_GROUP_MEMBERS:
            raise TooManyMembers(
                f"group {_display(obj)!r} has {len(anchors)} members; provisioning on demand takes a "
                f"group with at most {MAX_GROUP_MEMBERS} members (use 'provisor sync')"
            )
        res = OnDemandResult(ObjectKind.GROUP, obj.anchor, _display(obj), cycle=self.cycle)
        res.steps.append(self._import_step(obj))
        decision = self.assignments.group(obj)
        scope = self.job.scope
        filters = evaluate(scope.group_filters, obj.attributes)
        details = {
            "Assigned to application": _text(
                scope.mode is ScopeMode.ALL or obj.anchor in self.assignments.group_roles
            ),
            "Scope sync all": _text(scope.mode is ScopeMode.ALL),
            "Scoping filter evaluation passed": _text(filters.in_scope),
            "Scoping filters": filters.explain(),
            "Members": str(len(anchors)),
            "ScopeEvaluationResult": decision.verdict.value,
        }
        conn = self.state.connection(self.job.name, ObjectKind.GROUP, obj.anchor)
        if not decision.in_scope:
            detail = decision.detail or decision.verdict.value
            res.steps.append(
                Step(
                    "Scope evaluation", "scoping", "skipped", f"The group is out of scope: {detail}", details
                )
            )
            self._finish(
                obj,
                res,
                conn.target_id if conn else None,
                Plan(Action.SKIP, Reason.OUT_OF_SCOPE, detail=detail),
                "Skipped",
                f"Skipped: {detail}",
            )
            return res
        res.steps.append(Step("Scope evaluation", "scoping", "success", "The group is in scope", details))
        sources = self.directory.users(anchors)
        for anchor in anchors:
            member = sources.get(anchor)
            if member is None:
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
                res.members.append(gone)
                continue
            res.members.append(await self._user(member))
        await self._provision(obj, conn, {}, res)
        conn = self.state.connection(self.job.name, ObjectKind.GROUP, obj.anchor)
        if conn is not None and res.result != "Failure":
            await self._memberships(obj, conn, res)
        return res

    async def _memberships(self, group: SourceObject, conn: ObjectConnection, res: OnDemandResult) -> None:
        name = self.job.name
        wanted: dict[str, str] = {}
        for anchor in user_members(group):
            member = self.state.connection(name, ObjectKind.USER, anchor)
            if member is not None and member.active:
                wanted[anchor] = member.target_id
        have = self.state.members(name, group.anchor)
        add, remove = plan_members(have, wanted)
        try:
            if add:
                await self.target.add_members(conn.target_id, [wanted[a] for a in add])
                self.state.add_members(name, group.anchor, add)
            if remove:
                ids = [c.target_id for a in remove if (c := self.state.connection(name, ObjectKind.USER, a))]
                await self.target.remove_members(conn.target_id, ids)
                self.state.remove_members(name, group.anchor, remove)
        except TargetError as exc:
            res.steps.append(Step("Memberships", "export", "failure", f"{exc.code}: {exc}", {}))
            res.result = "Failure"
            return
        details = {
            "added": ", ".join(wanted[a] for a in add),
            "removed": ", ".join(remove),
            "members": str(len(wanted)),
        }
        if add or remove:
            res.steps.append(
                Step(
                    "Memberships",
                    "export",
                    "success",
                    f"Added {len(add)} and removed {len(remove)} member(s)",
                    details,
                )
            )
            if res.result == "Skipped":  # the group itself was unchanged but its members were
                res.result, res.action = "Success", Action.UPDATE.value
        else:
            res.steps.append(
                Step("Memberships", "export", "skipped", "Memberships already up to date", details)
            )

    # -- bookkeeping ---------------------------------------------------------------------------

    def _connect(self, obj: SourceObject, target_id: str) -> None:
        previous = self.state.connection(self.job.name, obj.kind, obj.anchor)
        conn = ObjectConnection(obj.kind, obj.anchor, target_id, _display(obj))
        if previous is not None and previous.target_id == target_id:
            conn = replace(previous, display=_display(obj), active=True)
        self.state.save_connection(self.job.name, conn)
        self.state.clear_escrow(self.job.name, obj.kind, obj.anchor)

    def _failure(
        self, obj: SourceObject, res: OnDemandResult, target_id: str | None, code: str, message: str
    ) -> None:
        self._finish(
            obj,
            res,
            target_id,
            Plan(Action.SKIP, None, detail=message),
            "Failure",
            f"{code}: {message}",
            code=code,
        )

    def _finish(
        self,
        obj: SourceObject,
        res: OnDemandResult,
        target_id: str | None,
        plan: Plan,
        status: str,
        description: str,
        *,
        extra: Mapping[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        """The Perform action step, the result and the log record."""
        step_status = {"Success": "success", "Skipped": "skipped", "Failure": "failure"}[status]
        details: dict[str, Any] = {
            m.attribute: f"{m.old if m.old is not None else '(none)'} -> {m.new}" for m in plan.modified
        }
        if plan.reason is not None:
            details["SkipReason" if plan.action is Action.SKIP else "Reason"] = plan.reason.value
        details.update(extra or {})
        res.steps.append(Step("Perform action", "export", step_status, description, details))
        res.result = status
        res.action = plan.action.value
        res.reason = code or (plan.reason.value if plan.reason else "")
        res.target_id = target_id
        res.modified = plan.modified
        self.state.append_log(
            self.job.name,
            LogRecord(
                cycle=self.cycle,
                time=self.clock(),
                kind=obj.kind,
                source_anchor=obj.anchor,
                target_id=target_id,
                display=_display(obj),
                action=plan.action.value,
                status=status,
                reason=res.reason,
                steps=tuple(
                    LogStep(s.type, s.status, f"{s.name}: {s.description}", dict(s.details))
                    for s in res.steps
                ),
                modified=tuple((m.attribute, m.old, m.new) for m in plan.modified),
                error=plan.detail if status == "Failure" else "",
            ),
        )


def _ops(plan: Plan) -> list[TargetOp]:
    return [TargetOp(op.op, op.path, op.value) for op in plan.operations]


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
