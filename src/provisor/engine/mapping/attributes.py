"""Attribute mapping: a source object -> the values Entra would export (entra-behaviour.md 3.1).

:func:`map_object` evaluates an object's attribute mappings (Direct, Constant, Expression, None)
into :class:`MappedValues`; :func:`build_resource` turns those into the SCIM POST body of 1.3.

Rules applied here:

* null is never provisioned (2.15): a null, empty or IgnoreFlowIfNullOrEmpty value leaves the
  attribute out, so an update never clears a target value;
* "Default value if null" is used only when creating (3.1); a None mapping writes its default
  only where the target is empty: at creation, or later via ``fill_if_empty`` (plan time);
* "Only during creation" mappings are skipped on update (3.1);
* Reference targets (manager, group members) keep the *source* anchors in ``references``: they
  are resolved to target ids after the object exists (1.3 step 5, 2.5 step 6);
* an expression that fails makes the object fail (``errors``), to be escrowed (2.8);
* ``log`` is the provisioning-log view (2.12): strings, ``[Redact]`` for redacted values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from provisor.engine.jobs.model import ApplyMapping, MappingType
from provisor.engine.mapping.context import EvalContext
from provisor.engine.mapping.errors import ExpressionError, ExpressionEvaluationError, FunctionError
from provisor.engine.mapping.evaluate import evaluate, lookup_attribute
from provisor.engine.mapping.functions.roles import ROLE_TYPE
from provisor.engine.mapping.target_paths import as_bool, parse_target_path, write_path
from provisor.engine.mapping.values import (
    IGNORE_FLOW,
    Redacted,
    Value,
    export_value,
    is_null_or_empty,
    log_value,
    to_bool,
)
from provisor.engine.model import ObjectKind, SourceObject
from provisor.engine.templates.model import ENTERPRISE_URN, AttributeMapping

__all__ = [
    "CORE_GROUP",
    "CORE_USER",
    "ENTRA_GROUP",
    "MappedValues",
    "build_resource",
    "map_object",
]

CORE_USER: Final = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP: Final = "urn:ietf:params:scim:schemas:core:2.0:Group"
#: The second schema of Entra's group create body (1.6).
ENTRA_GROUP: Final = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
_DEFAULT_SCHEMAS: Final = {ObjectKind.USER: (CORE_USER,), ObjectKind.GROUP: (CORE_GROUP, ENTRA_GROUP)}
_RESOURCE_TYPE: Final = {ObjectKind.USER: "User", ObjectKind.GROUP: "Group"}


@dataclass(frozen=True, slots=True)
class MappedValues:
    """What one object's mappings produced, keyed by target path (in mapping order).

    ``values``: what to export (redaction removed, booleans as bool, dates as Entra strings).
    ``references``: target path -> source anchors (manager, members), resolved later.
    ``fill_if_empty``: None-type mappings' defaults, written only where the target is empty.
    ``log``: the provisioning-log view of every computed value. ``redacted``: paths under Redact.
    ``errors``: target path -> why its mapping failed; any error fails the object.
    """

    values: Mapping[str, Any] = field(default_factory=dict)
    references: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fill_if_empty: Mapping[str, Any] = field(default_factory=dict)
    log: Mapping[str, Any] = field(default_factory=dict)
    redacted: frozenset[str] = frozenset()
    errors: Mapping[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """An attribute could not be computed: the object is not exported (escrowed, 2.8)."""
        return bool(self.errors)

    def failure_reason(self) -> str | None:
        """One line per failed attribute, sorted, for the log's Troubleshooting tab (2.12)."""
        if not self.errors:
            return None
        return "; ".join(f"{path}: {why}" for path, why in sorted(self.errors.items()))


class _Collector:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.references: dict[str, tuple[str, ...]] = {}
        self.fill: dict[str, Any] = {}
        self.log: dict[str, Any] = {}
        self.redacted: set[str] = set()
        self.errors: dict[str, str] = {}

    def result(self) -> MappedValues:
        return MappedValues(
            self.values, self.references, self.fill, self.log, frozenset(self.redacted), self.errors
        )


def _compute(mapping: AttributeMapping, source: Mapping[str, Any], ctx: EvalContext) -> Value:
    if mapping.kind is MappingType.DIRECT:
        assert mapping.source is not None
        return lookup_attribute(source, mapping.source)
    if mapping.kind is MappingType.CONSTANT:
        return mapping.constant
    if mapping.kind is MappingType.EXPRESSION:
        assert mapping.expression is not None
        return evaluate(mapping.expression, source, ctx)
    return None


def _coerce(mapping: AttributeMapping, value: Value) -> Value:
    """Boolean targets get a bool (``"False"`` -> False, 1.3: ``active`` as a boolean)."""
    if parse_target_path(mapping.target).boolean:
        inner = value.value if isinstance(value, Redacted) else value
        flag = to_bool(inner)
        return Redacted(flag) if isinstance(value, Redacted) else flag
    return value


def _anchors(value: Value) -> tuple[str, ...]:
    inner = export_value(value)
    items = inner if isinstance(inner, list) else [inner]
    anchors = (str(a.get("value")) if isinstance(a, Mapping) else str(a) for a in items if a is not None)
    return tuple(a for a in dict.fromkeys(anchors) if a)


def map_object(
    obj: SourceObject,
    mappings: Sequence[AttributeMapping],
    ctx: EvalContext,
    *,
    creating: bool,
    computed: Mapping[str, Any] | None = None,
) -> MappedValues:
    """Evaluate ``mappings`` for ``obj`` (section 3.1); ``creating`` selects create-time rules.

    ``computed`` holds attributes the engine computes rather than reads, such as
    ``IsSoftDeleted`` (2.6); they shadow source attributes of the same name.
    """
    source: Mapping[str, Any] = {**obj.attributes, **(computed or {})}
    out = _Collector()
    for mapping in mappings:
        target = mapping.target
        if mapping.apply is ApplyMapping.ONLY_DURING_CREATION and not creating:
            continue
        try:
            value = _compute(mapping, source, ctx)
        except ExpressionError as exc:
            out.errors[target] = f"invalid expression: {exc.message} (position {exc.position})"
            continue
        except ExpressionEvaluationError as exc:
            out.errors[target] = f"expression failed: {exc}"
            continue
        if value is IGNORE_FLOW:  # IgnoreFlowIfNullOrEmpty: leave the attribute out (3.3)
            continue
        if is_null_or_empty(value) and mapping.default_value is not None:
            if mapping.kind is MappingType.NONE and not creating:
                out.fill[target] = mapping.default_value
                out.log[target] = mapping.default_value
                continue
            if creating:
                value = mapping.default_value
        if is_null_or_empty(value):  # provisioning null values is not supported (2.15)
            continue
        if mapping.reference:
            anchors = _anchors(value)
            if anchors:
                out.references[target] = anchors
                out.log[target] = list(anchors) if len(anchors) > 1 else anchors[0]
            continue
        try:
            value = _coerce(mapping, value)
        except FunctionError as exc:
            out.errors[target] = f"not a Boolean value: {exc}"
            continue
        out.values[target] = export_value(value)
        out.log[target] = log_value(value)
        if isinstance(value, Redacted):
            out.redacted.add(target)
    return out.result()


def _resolved(path: str, ids: Sequence[str]) -> Any:
    """A resolved reference as the resource carries it: manager ``{"value": id}`` (1.4, the
    form Entra reads back), members ``[{"value": id}, ...]`` (1.6)."""
    if parse_target_path(path).attribute.casefold() == "manager":
        return {"value": ids[0]}
    return [{"value": i} for i in ids]


def build_resource(
    kind: ObjectKind,
    values: MappedValues | Mapping[str, Any],
    *,
    schemas: Sequence[str] | None = None,
    references: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The SCIM POST body for one object (1.3 users, 1.6 groups).

    ``schemas`` are the base schemas (default: the core schema, plus Entra's ADSCIM group schema
    for groups, 1.6); the enterprise extension is added when one of its attributes is present,
    custom extension URNs never are (1.3 note). Typed multi-valued paths become elements
    carrying the filter attribute; the work email is also ``primary: true`` and a primary role
    carries Entra's role ``type`` (1.3, 1.4). ``references`` are *target* ids of resolved
    reference attributes (manager as ``{"value": id}``). Like Entra, a user body always has
    ``meta.resourceType`` and ``roles`` (``[]`` when unmapped, 1.3 note).
    """
    flat = values.values if isinstance(values, MappedValues) else values
    body: dict[str, Any] = {"schemas": list(schemas if schemas is not None else _DEFAULT_SCHEMAS[kind])}
    for text, value in flat.items():
        path = parse_target_path(text)
        if path.boolean:
            flag = as_bool(value)
            value = value if flag is None else flag
        write_path(body, path, value)
    for text, ids in (references or {}).items():
        if ids:
            write_path(body, parse_target_path(text), _resolved(text, ids))
    for element in body.get("emails") or []:
        if isinstance(element, dict) and str(element.get("type", "")).casefold() == "work":
            element.setdefault("primary", True)
    for element in body.get("roles") or []:
        if isinstance(element, dict) and element.get("primary") is True:
            element.setdefault("type", ROLE_TYPE)
    if kind is ObjectKind.USER:
        body.setdefault("roles", [])
    if ENTERPRISE_URN in body and ENTERPRISE_URN not in body["schemas"]:
        body["schemas"].append(ENTERPRISE_URN)
    body["meta"] = {"resourceType": _RESOURCE_TYPE[kind]}
    return body
