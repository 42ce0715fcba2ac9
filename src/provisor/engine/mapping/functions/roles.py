"""App-role functions (entra-behaviour.md sections 1.4, 3.3): AppRoleAssignmentsComplex,
AssertiveAppRoleAssignmentsComplex, SingleAppRoleAssignment.

The source attribute ``appRoleAssignments`` is a list of ``{"id", "value", "displayName"}``
objects (``value`` is the role's name; a bare string is read as a role value). The two Complex
functions give the same SCIM ``roles`` array; they differ only in how the engine PATCHes it
(Add, never removing, vs Replace, removing unassigned roles - section 1.4): see
:func:`roles_patch_op`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from provisor.engine.mapping.ast import Call, Expr
from provisor.engine.mapping.context import EvalContext
from provisor.engine.mapping.errors import FunctionError
from provisor.engine.mapping.functions.multivalued import elements
from provisor.engine.mapping.functions.spec import FunctionSpec, eager
from provisor.engine.mapping.values import Value

__all__ = ["ROLE_TYPE", "SPECS", "assignments", "roles_patch_op"]

#: The ``type`` of every role Entra sends (section 1.4, POST shape).
ROLE_TYPE = "WindowsAzureActiveDirectoryRole"


def assignments(value: Value) -> list[tuple[str, str]]:
    """(role value, display name) per assignment, source order, duplicates removed."""
    out: list[tuple[str, str]] = []
    for item in elements(value):
        if isinstance(item, str):
            role, display = item, item
        elif isinstance(item, Mapping):
            raw_value = item.get("value")
            if raw_value is None or raw_value == "":
                continue
            role = str(raw_value)
            display = str(item.get("displayName") or role)
        else:
            raise FunctionError("appRoleAssignments must hold role objects {id, value, displayName}")
        if all(role != seen for seen, _ in out):
            out.append((role, display))
    return out


def _complex(args: Sequence[Value], ctx: EvalContext) -> Value:
    roles: list[Value] = []
    for role, display in assignments(args[0]):
        entry: dict[str, Any] = {"primary": False, "type": ROLE_TYPE, "value": role, "display": display}
        roles.append(entry)
    return roles


def _single(args: Sequence[Value], ctx: EvalContext) -> Value:
    values = sorted(role for role, _ in assignments(args[0]))
    return values[0] if values else None


def roles_patch_op(expr: Expr) -> Literal["add", "replace"] | None:
    """How the engine PATCHes ``roles`` fed by ``expr`` (section 1.4): ``"add"`` for
    AppRoleAssignmentsComplex, ``"replace"`` for AssertiveAppRoleAssignmentsComplex, else None."""
    if isinstance(expr, Call):
        if expr.name == "AppRoleAssignmentsComplex":
            return "add"
        if expr.name == "AssertiveAppRoleAssignmentsComplex":
            return "replace"
    return None


SPECS: list[FunctionSpec] = [
    eager("AppRoleAssignmentsComplex([appRoleAssignments])", 1, 1, _complex),
    eager("AssertiveAppRoleAssignmentsComplex([appRoleAssignments])", 1, 1, _complex),
    eager("SingleAppRoleAssignment([appRoleAssignments])", 1, 1, _single),
]
