"""From a decision to target operations, in Entra's log vocabulary (entra-behaviour.md 1.4-1.6,
2.6, 2.7, 2.12, 2.15).

Pure functions: a target resource as GET returned it plus what the mappings computed go in;
:class:`Plan` comes out with the log's Action, an optional reason, the PATCH operations and the
Modified Properties (2.12). Outputs are sorted, so logs are stable. :class:`PatchOperation`
paths are the RFC-valid forms of 1.4 (``emails[type eq "work"].value``, ``name.givenName``,
``<URN>:employeeNumber``); the target client renders them in the job's PATCH dialect.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from provisor.engine.mapping.attributes import MappedValues
from provisor.engine.mapping.errors import ExpressionError
from provisor.engine.mapping.functions.roles import roles_patch_op
from provisor.engine.mapping.parser import parse_expression
from provisor.engine.mapping.target_paths import as_bool, parse_target_path, read_path
from provisor.engine.templates.model import AttributeMapping, is_reference_target

__all__ = [
    "Action",
    "DeprovisionEvent",
    "ModifiedProperty",
    "PatchOperation",
    "Plan",
    "Reason",
    "member_operations",
    "plan_create",
    "plan_deprovision",
    "plan_disable",
    "plan_members",
    "plan_update",
    "same_value",
    "skip",
    "staged",
]


class Action(enum.StrEnum):
    """The provisioning log's Action column (2.12); ``Skip`` is Entra's "Other"/Skipped."""

    CREATE = "Create"
    UPDATE = "Update"
    DISABLE = "Disable"
    DELETE = "Delete"
    SKIP = "Skip"
    STAGED_DELETE = "StagedDelete"


class Reason(enum.StrEnum):
    """Why an object was skipped or acted on (2.2, 2.4, 2.6, 2.12, 1.3, 1.4)."""

    REDUNDANT_EXPORT = "RedundantExport"
    NOT_EFFECTIVELY_ENTITLED = "NotEffectivelyEntitled"
    IMPORT_SKIPPED = "ImportSkipped"
    DUPLICATE_TARGET_ENTRIES = "DuplicateTargetEntries"
    OUT_OF_SCOPE = "OutOfScope"
    INVALID_ANCHOR = "InvalidAnchor"
    #: Provisor's name: Entra's code for a failed mapping expression is not documented (2.8).
    EXPRESSION_EVALUATION_FAILED = "ExpressionEvaluationFailed"
    #: The accidental-deletion threshold was reached (2.7).
    TOO_MANY_DELETES = "TooManyDeletes"


@dataclass(frozen=True, slots=True)
class PatchOperation:
    """One PATCH operation with RFC 7644 3.5.2 semantics: a lowercase ``op`` (``add`` where the
    target had no value, ``replace`` for a change, 1.4), an RFC path, a real value (booleans as
    bool). Same shape as ``provisor.engine.targets.patch.PatchOperation``, which renders the
    Entra dialect (capitalised ops, ``"False"`` strings)."""

    op: Literal["add", "replace", "remove"]
    path: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class ModifiedProperty:
    """A Modified Properties row (2.12): values as the log shows them (strings, ``[Redact]``)."""

    attribute: str
    old: str | None
    new: str | None


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do with one object, as the provisioning log records it."""

    action: Action
    reason: Reason | None = None
    operations: tuple[PatchOperation, ...] = ()
    modified: tuple[ModifiedProperty, ...] = ()
    detail: str = ""


def skip(reason: Reason, detail: str = "") -> Plan:
    """A Skip with its reason (e.g. ImportSkipped, DuplicateTargetEntries, OutOfScope)."""
    return Plan(Action.SKIP, reason, detail=detail)


def _log_text(value: Any) -> str | None:
    """A value as the log shows it (2.12): ``"True"``/``"False"``, JSON for objects."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping) and set(value) <= {"value", "$ref", "displayName"} and "value" in value:
        return _log_text(value["value"])
    return json.dumps(value, sort_keys=True, default=str)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _canonical(item: Any) -> str:
    return json.dumps(item, sort_keys=True, default=str)


def same_value(current: Any, desired: Any) -> bool:
    """Entra's comparison (1.4): strings case-sensitively; booleans after normalising
    ``"True"``/``"False"``; numbers by their text; multi-valued values as unordered collections."""
    if isinstance(current, bool) or isinstance(desired, bool):
        a, b = as_bool(current), as_bool(desired)
        return a is not None and a == b
    if isinstance(current, list) and isinstance(desired, list):
        return sorted(map(_canonical, current)) == sorted(map(_canonical, desired))
    if isinstance(current, int | float) and isinstance(desired, str):
        return _log_text(current) == desired
    if isinstance(current, str) and isinstance(desired, int | float):
        return current == _log_text(desired)
    return bool(current == desired)


def _roles_op(mapping: AttributeMapping | None) -> Literal["add", "replace"] | None:
    if mapping is None or mapping.expression is None:
        return None
    try:
        return roles_patch_op(parse_expression(mapping.expression))
    except ExpressionError:
        return None


def _reference_id(value: Any) -> Any:
    """The id a manager value carries: ``{"value": id}`` or a bare string (1.4)."""
    return value.get("value") if isinstance(value, Mapping) else value


def _sorted_plan(ops: list[PatchOperation], modified: list[ModifiedProperty]) -> Plan:
    if not ops:
        return skip(Reason.REDUNDANT_EXPORT)
    return Plan(
        Action.UPDATE,
        operations=tuple(sorted(ops, key=lambda o: (o.path, o.op))),
        modified=tuple(sorted(modified, key=lambda m: m.attribute)),
    )


def plan_update(
    current: Mapping[str, Any],
    values: MappedValues,
    mappings: Sequence[AttributeMapping],
    *,
    references: Mapping[str, Sequence[str]] | None = None,
) -> Plan:
    """The PATCH for a matched or connected object (1.4): only what differs.

    ``Add`` where the target has no value, ``Replace`` where it differs. Nothing differs ->
    Skip with RedundantExport. Attributes whose source is null are absent from ``values`` and
    so never cleared (2.15). ``references`` are resolved *target* ids of reference attributes:
    the manager is compared by id (``{"value": id}`` or a bare string) and written as
    ``{"value": id}``; group members are not
    handled here (:func:`plan_members`). ``values.fill_if_empty`` (None mappings' defaults) is
    written only where the target is empty (3.1). Roles fed by AppRoleAssignmentsComplex are
    added, never removed; by AssertiveAppRoleAssignmentsComplex replaced as a whole (1.4).
    """
    by_target = {m.target: m for m in mappings}
    ops: list[PatchOperation] = []
    modified: list[ModifiedProperty] = []

    def change(path: str, have: Any, want: Any, op_value: Any = None) -> None:
        op: Literal["add", "replace"] = "add" if _empty(have) else "replace"
        ops.append(PatchOperation(op, path, want if op_value is None else op_value))
        if path in values.redacted:
            modified.append(ModifiedProperty(path, "[Redact]", "[Redact]"))
        else:
            modified.append(ModifiedProperty(path, _log_text(have), _log_text(want)))

    for path, want in values.values.items():
        if is_reference_target(path):
            continue
        have = read_path(current, parse_target_path(path))
        roles = _roles_op(by_target.get(path)) if isinstance(want, list) else None
        if roles == "add" and isinstance(have, list):
            present = {_canonical(item) for item in have}
            missing = [item for item in want if _canonical(item) not in present]
            if missing:
                ops.append(PatchOperation("add", path, missing))
                modified.append(ModifiedProperty(path, _log_text(have), _log_text(want)))
            continue
        if not same_value(have, want):
            change(path, have, want)
    for path, default in values.fill_if_empty.items():
        have = read_path(current, parse_target_path(path))
        if _empty(have):
            change(path, have, default)
    for path, ids in (references or {}).items():
        target = parse_target_path(path)
        if not ids or target.attribute.casefold() != "manager":
            continue
        have = _reference_id(read_path(current, target))
        if have != ids[0]:
            change(path, have, ids[0], {"value": ids[0]})
    return _sorted_plan(ops, modified)


def plan_create(values: MappedValues) -> Plan:
    """A Create (1.3 step 3); every exported attribute is a Modified Property (old: none).
    A failed mapping makes the object fail instead (2.8, escrowed)."""
    if values.failed:
        return skip(Reason.EXPRESSION_EVALUATION_FAILED, values.failure_reason() or "")
    rows = [ModifiedProperty(path, None, _log_text(shown)) for path, shown in values.log.items()]
    return Plan(Action.CREATE, modified=tuple(sorted(rows, key=lambda m: m.attribute)))


def plan_disable(current: Mapping[str, Any] | None = None) -> Plan:
    """Disable: ``replace active false`` (1.5; the client writes ``"Replace"``/``"False"`` in
    Entra's default dialect). A target already inactive -> Skip with RedundantExport."""
    have = None if current is None else read_path(current, parse_target_path("active"))
    if as_bool(have) is False:
        return skip(Reason.REDUNDANT_EXPORT)
    return Plan(
        Action.DISABLE,
        operations=(PatchOperation("replace", "active", False),),
        modified=(ModifiedProperty("active", _log_text(as_bool(have)), "False"),),
    )


class DeprovisionEvent(enum.StrEnum):
    """Why a managed object leaves (2.6, 1.5)."""

    OUT_OF_SCOPE = "OutOfScope"  # unassigned, or fails a scoping filter
    NOT_EFFECTIVELY_ENTITLED = "NotEffectivelyEntitled"  # only Default Access left (2.2)
    SOFT_DELETED = "SoftDeleted"  # recycle bin, or accountEnabled false
    HARD_DELETED = "HardDeleted"


_DEPROVISION_REASONS = {
    DeprovisionEvent.OUT_OF_SCOPE: Reason.OUT_OF_SCOPE,
    DeprovisionEvent.NOT_EFFECTIVELY_ENTITLED: Reason.NOT_EFFECTIVELY_ENTITLED,
}


def plan_deprovision(
    event: DeprovisionEvent,
    *,
    soft_delete_mapped: bool,
    skip_out_of_scope_deletions: bool = False,
    delete_enabled: bool = True,
    current: Mapping[str, Any] | None = None,
) -> Plan:
    """The deprovisioning matrix of 2.6: a hard delete deletes when the Delete target action is
    on; any other event disables when ``IsSoftDeleted`` is mapped (to ``active``) unless
    ``SkipOutOfScopeDeletions`` is set, and is otherwise left alone (logged as Skip)."""
    if event is DeprovisionEvent.HARD_DELETED:
        if delete_enabled:
            return Plan(Action.DELETE)
        return skip(Reason.OUT_OF_SCOPE, "the Delete target action is off")
    reason = _DEPROVISION_REASONS.get(event)
    if skip_out_of_scope_deletions:
        return skip(Reason.OUT_OF_SCOPE, "SkipOutOfScopeDeletions is set: the account is left untouched")
    if not soft_delete_mapped:
        return skip(Reason.OUT_OF_SCOPE, "IsSoftDeleted is not mapped: the account is left untouched")
    plan = plan_disable(current)
    if plan.action is Action.SKIP:
        return plan
    return Plan(plan.action, reason, plan.operations, plan.modified)


def staged(plan: Plan) -> Plan:
    """A Disable or Delete held back by accidental-deletion prevention (2.7): StagedDelete."""
    if plan.action not in (Action.DISABLE, Action.DELETE):
        return plan
    return Plan(Action.STAGED_DELETE, Reason.TOO_MANY_DELETES, plan.operations, plan.modified, plan.detail)


def plan_members(
    current_member_ids: Iterable[str], desired_member_ids: Iterable[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Group membership diff in target ids (1.6): ``(to_add, to_remove)``, each sorted."""
    have, want = set(current_member_ids), set(desired_member_ids)
    return tuple(sorted(want - have)), tuple(sorted(have - want))


def member_operations(to_add: Sequence[str], to_remove: Sequence[str]) -> tuple[PatchOperation, ...]:
    """Entra's membership PATCH (1.6): one ``add`` and one ``remove``, each with many members
    (the gallery checklist's "many memberships in one PATCH"); the client renders ``remove`` as
    ``members[value eq "<id>"]`` operations for the flag and RFC dialects."""
    ops: list[PatchOperation] = []
    if to_add:
        ops.append(PatchOperation("add", "members", [{"value": i} for i in to_add]))
    if to_remove:
        ops.append(PatchOperation("remove", "members", [{"value": i} for i in to_remove]))
    return tuple(ops)
