"""PATCH operations and the three dialects they are written in (entra-behaviour.md 1.4, 1.5, 1.6).

The engine plans *what* changes as :class:`PatchOperation` values with RFC semantics (lowercase op
names, real booleans, ``remove`` of members as ``path="members"`` plus the list of members to drop).
:func:`render_patch` writes them the way the chosen dialect does on the wire:

``entra`` (Entra's default, no flag; 1.4 "Default PATCH shapes", Q1-Q4)
    capitalised ``Add``/``Replace``/``Remove``; one operation per attribute, each with a ``path``
    (a path-less value object is split into dotted / full-URN paths); boolean values as the strings
    ``"True"``/``"False"`` (1.5 disable: ``"False"``); members added and removed with
    ``path: "members"`` and ``value: [{"$ref": null, "value": id}, ...]`` (1.6 table, Q3, Q4).
``aadOptscim062020`` (the behaviour flag; 1.4 "With flag", Q6)
    lowercase ops; every ``replace`` of a simple attribute (no value filter, not multi-valued) folded
    into ONE path-less ``replace`` whose value uses dotted and full-URN keys; booleans as booleans;
    one ``remove`` with ``path: members[value eq "id"]`` and no value per member (1.6 "Remove (flag)").
``rfc`` (strict RFC 7644 section 3.5.2)
    lowercase ops, one operation per attribute with a path, booleans as booleans, member removal
    through ``members[value eq "id"]`` filters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from provisor.engine.jobs.model import PatchDialect
from provisor.engine.targets.filters import quote_value

__all__ = [
    "PATCH_OP_SCHEMA",
    "PatchOperation",
    "add_members",
    "remove_members",
    "render_patch",
]

PATCH_OP_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OpName = Literal["add", "replace", "remove"]
_OPS: Final = ("add", "replace", "remove")
_ENTRA_NAMES: Final = {"add": "Add", "replace": "Replace", "remove": "Remove"}


@dataclass(frozen=True, slots=True)
class PatchOperation:
    """One RFC 7644 3.5.2 operation. ``path=None`` (add/replace only) means ``value`` is an object of
    attribute name -> value; ``remove`` needs a path and takes a ``value`` only for members."""

    op: OpName
    path: str | None = None
    value: Any = None

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"PATCH op must be one of {_OPS}, not {self.op!r}")
        if self.path is None and (self.op == "remove" or not isinstance(self.value, dict)):
            raise ValueError(f"a path-less {self.op!r} needs an object value and cannot be a remove")


def add_members(member_ids: Iterable[str]) -> PatchOperation:
    """Add these users (their ids in the target) to a group (1.6 "Add members")."""
    return PatchOperation("add", "members", [{"value": m} for m in member_ids])


def remove_members(member_ids: Iterable[str]) -> PatchOperation:
    """Remove only these members from a group (1.6 "Remove members"; dialects differ, Q3)."""
    return PatchOperation("remove", "members", [{"value": m} for m in member_ids])


def render_patch(operations: Sequence[PatchOperation], dialect: PatchDialect | str) -> dict[str, Any]:
    """The PatchOp request body (RFC 7644 3.5.2) for ``operations`` in ``dialect``."""
    dialect = PatchDialect(dialect)
    if dialect is PatchDialect.ENTRA:
        rendered = [_entra(op) for operation in operations for op in _split(operation)]
    elif dialect is PatchDialect.AAD_OPT_SCIM_062020:
        rendered = _folded(operations)
    else:
        rendered = _rfc(operations)
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": rendered}


def _is_members(operation: PatchOperation) -> bool:
    return operation.path is not None and operation.path.lower() == "members"


def _flatten(value: dict[str, Any]) -> list[tuple[str, Any]]:
    """A path-less value object as (path, value) pairs: ``{"name": {"givenName": x}}`` ->
    ``name.givenName``; ``{"urn:...:User": {"department": x}}`` -> ``urn:...:User:department`` (1.4)."""
    pairs: list[tuple[str, Any]] = []
    for key, item in value.items():
        if key.lower().startswith("urn:") and isinstance(item, dict):
            pairs.extend((f"{key}:{sub}", subvalue) for sub, subvalue in item.items())
        elif isinstance(item, dict) and not key.lower().startswith("urn:"):
            pairs.extend((f"{key}.{sub}", subvalue) for sub, subvalue in item.items())
        else:
            pairs.append((key, item))
    return pairs


def _split(operation: PatchOperation) -> list[PatchOperation]:
    """One operation per attribute, each with a path (a path-less object is flattened)."""
    if operation.path is not None:
        return [operation]
    return [PatchOperation(operation.op, path, item) for path, item in _flatten(operation.value)]


def _member_filter_removes(operation: PatchOperation, op_name: str) -> list[dict[str, Any]]:
    """``remove members`` as one ``members[value eq "id"]`` removal per member (RFC 7644 3.5.2.2)."""
    members = operation.value or []
    if not members:  # no value: remove every member, as the RFC reads it
        return [{"op": op_name, "path": "members"}]
    return [{"op": op_name, "path": f"members[value eq {quote_value(_member_id(m))}]"} for m in members]


def _member_id(member: Any) -> str:
    return str(member["value"] if isinstance(member, dict) else member)


def _entra(operation: PatchOperation) -> dict[str, Any]:
    name = _ENTRA_NAMES[operation.op]
    if _is_members(operation):
        values = [{"$ref": None, "value": _member_id(m)} for m in operation.value or []]
        return {"op": name, "path": "members", "value": values}
    rendered: dict[str, Any] = {"op": name, "path": operation.path}
    if operation.op != "remove" or operation.value is not None:
        value = operation.value
        rendered["value"] = ("True" if value else "False") if isinstance(value, bool) else value
    return rendered


def _lower_one(operation: PatchOperation) -> dict[str, Any]:
    rendered: dict[str, Any] = {"op": operation.op}
    if operation.path is not None:
        rendered["path"] = operation.path
    if operation.op != "remove" or operation.value is not None:
        value = operation.value
        if _is_members(operation):
            value = [{"value": _member_id(m)} for m in value or []]
        rendered["value"] = value
    return rendered


def _rfc(operations: Sequence[PatchOperation]) -> list[dict[str, Any]]:
    """Strict RFC 7644: one operation per attribute, member removal through value filters."""
    out: list[dict[str, Any]] = []
    for operation in operations:
        for op in _split(operation):
            if _is_members(op) and op.op == "remove":
                out.extend(_member_filter_removes(op, "remove"))
            else:
                out.append(_lower_one(op))
    return out


def _foldable(operation: PatchOperation) -> bool:
    """A ``replace`` of a simple attribute: no value filter, not members, not a list (1.4 flag)."""
    return (
        operation.op == "replace"
        and operation.path is not None
        and "[" not in operation.path
        and not _is_members(operation)
        and not isinstance(operation.value, list)
    )


def _folded(operations: Sequence[PatchOperation]) -> list[dict[str, Any]]:
    """The flag dialect: simple replaces folded into one path-less replace where the first was."""
    out: list[dict[str, Any]] = []
    folded: dict[str, Any] | None = None
    for operation in operations:
        for op in _split(operation):
            if _foldable(op):
                if folded is None:
                    folded = {}
                    out.append({"op": "replace", "value": folded})
                folded[str(op.path)] = op.value
            elif _is_members(op) and op.op == "remove":
                out.extend(_member_filter_removes(op, "remove"))
            else:
                out.append(_lower_one(op))
    return out
