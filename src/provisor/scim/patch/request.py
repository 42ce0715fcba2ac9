"""The PatchOp request message (RFC 7644 section 3.5.2) parsed into normalised operations.

Parsing checks the message structure, resolves every ``path`` to a canonical
:class:`~provisor.scim.filter.ast.PatchPath`, expands path-less ``add``/``replace`` values into one
operation per attribute and normalises values with the switchable Entra/Okta tolerances of
:mod:`provisor.scim.compat.patch_ops`. Applying the operations is :mod:`provisor.scim.patch.apply`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from provisor.scim.compat import CompatSettings
from provisor.scim.compat import patch_ops as quirks
from provisor.scim.errors import InvalidPath, InvalidSyntax, InvalidValue, NoTarget, ScimError, TooMany
from provisor.scim.filter.ast import AttrPath, Compare, CompareOp, PatchPath
from provisor.scim.filter.lexer import ScanError, decode_string
from provisor.scim.filter.parser import parse_patch_path
from provisor.scim.resources.plans import plan_for, remember
from provisor.scim.schema.model import ENTERPRISE_USER, Attribute, ResourceType

#: The message schema a PATCH body must declare (RFC 7644 section 3.5.2).
PATCH_OP_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
#: Most operations accepted in one request (RFC 7644 section 3.12, ``tooMany``).
MAX_OPERATIONS = 1000

OpName = Literal["add", "replace", "remove"]


@dataclass(frozen=True, slots=True)
class PatchOperation:
    """One parsed, normalised PATCH operation (RFC 7644 section 3.5.2).

    ``path`` is None only for a path-less ``add``/``replace`` built by hand; operations from
    :func:`parse_patch_request` always carry a path (path-less values are expanded per attribute).
    ``value`` is the JSON value, normalised by the enabled quirks; None for ``remove`` without value.
    """

    op: OpName
    path: PatchPath | None
    value: Any = None
    #: The 1-based place in its request of the operation this one was parsed from (one sent
    #: operation may become several, or none), which error messages name; 0 when built by hand.
    number: int = field(default=0, compare=False)

    def place(self, index: int) -> int:
        """The 0-based place of this operation in its request: ``index``, where it stands in the
        list being applied, for an operation built by hand."""
        return self.number - 1 if self.number else index


def parse_patch_request(body: Any, rt: ResourceType, compat: CompatSettings) -> tuple[PatchOperation, ...]:
    """Parse a PatchOp message (RFC 7644 section 3.5.2) for resource type ``rt``.

    ``schemas`` must be exactly ``[PATCH_OP_URN]`` (URN compared case-insensitively) and
    ``Operations`` (key matched case-insensitively) a non-empty list of at most
    :data:`MAX_OPERATIONS` objects. Raises ``invalidSyntax`` for structural faults, ``invalidPath``
    for bad paths, ``invalidValue`` for bad values, ``noTarget`` for a ``remove`` without path
    (RFC 7644 section 3.5.2.2) and ``tooMany`` past the limit. Messages name the operation (1-based).
    """
    if not isinstance(body, Mapping):
        raise InvalidSyntax("a PATCH body must be a JSON object (a PatchOp message, RFC 7644 section 3.5.2)")
    fields = _fields(body)
    schemas = fields.get("schemas")
    if not (
        isinstance(schemas, list)
        and len(schemas) == 1
        and isinstance(schemas[0], str)
        and schemas[0].lower() == PATCH_OP_URN.lower()
    ):
        raise InvalidSyntax(f'a PATCH body must have "schemas": ["{PATCH_OP_URN}"]')
    raw_ops = fields.get("operations")
    if not isinstance(raw_ops, list) or not raw_ops:
        raise InvalidSyntax('a PATCH body needs a non-empty "Operations" list (RFC 7644 section 3.5.2)')
    if len(raw_ops) > MAX_OPERATIONS:
        raise TooMany(f"a PATCH request may hold at most {MAX_OPERATIONS} operations, not {len(raw_ops)}")
    out: list[PatchOperation] = []
    for index, raw in enumerate(raw_ops):
        try:  # operation_context(index), inlined: a generator-based context manager costs ~1 us
            out.extend(
                PatchOperation(o.op, o.path, o.value, index + 1) for o in _parse_operation(raw, rt, compat)
            )
        except ScimError as exc:
            prefix_operation(exc, index)
            raise
    return tuple(out)


@contextmanager
def operation_context(index: int) -> Iterator[None]:
    """Prefix a :class:`ScimError` raised inside with the 1-based number of the operation."""
    try:
        yield
    except ScimError as exc:
        prefix_operation(exc, index)
        raise


def prefix_operation(exc: ScimError, index: int) -> None:
    """Prefix the detail of ``exc`` with the 1-based number of the operation (``operation_context``)."""
    exc.detail = f"operation {index + 1}: {exc.detail}"
    exc.args = (exc.detail,)


def _fields(obj: Mapping[Any, Any]) -> dict[str, Any]:
    """Keys lower-cased: the message's member names match case-insensitively ("Operations")."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise InvalidSyntax("a PATCH message has a non-string key")
        low = key.lower()
        if low in out:
            raise InvalidSyntax(f'"{key}" is given twice, in two cases (member names are case-insensitive)')
        out[low] = value
    return out


def _parse_operation(raw: Any, rt: ResourceType, compat: CompatSettings) -> list[PatchOperation]:
    if not isinstance(raw, Mapping):
        raise InvalidSyntax("each PATCH operation must be a JSON object with op, path and value")
    fields = _fields(raw)
    op: OpName = quirks.normalise_op_name(fields.get("op"), compat)  # type: ignore[assignment]
    path_text = fields.get("path")
    has_value = fields.get("value") is not None or "value" in fields
    value = fields.get("value")
    if path_text is None:
        if op == "remove":
            raise NoTarget("a remove operation needs a path (RFC 7644 section 3.5.2.2)")
        if not has_value:
            raise InvalidValue(f"an {op} operation needs a value (RFC 7644 section 3.5.2)")
        return expand_pathless(op, value, rt, compat)
    if not isinstance(path_text, str) or not path_text.strip():
        raise InvalidPath('"path" must be a non-empty string (RFC 7644 section 3.5.2)')
    schema = rt.schema_for(path_text.strip())
    if schema is not None:
        return _schema_operation(op, schema.id, rt, value, has_value, compat)
    if op != "remove" and not has_value:
        raise InvalidValue(f"an {op} operation needs a value (RFC 7644 section 3.5.2)")
    if op == "remove" and value is not None and not quirks.remove_value_allowed(compat):
        raise InvalidSyntax(
            "remove takes no value (RFC 7644 section 3.5.2.2); select values with a filter such as "
            'members[value eq "id"] (remove_members_with_value, Q3, is off)'
        )
    path = resolve_path(path_text, rt, compat)
    if path is None:
        return []
    return _write_operations(op, path, value, rt, compat)


def _write_operations(
    op: OpName, path: PatchPath, value: Any, rt: ResourceType, compat: CompatSettings
) -> list[PatchOperation]:
    """The operation with its value normalised; a Q5 manager shorthand (a bare id, the old docs'
    array) as a remove of the manager before the write, since it names the whole manager
    (:func:`provisor.scim.compat.patch_ops.names_whole_manager`) and must not merge into the one
    before it."""
    normalised = normalise_operation_value(rt, path, value, compat)
    if op != "remove" and normalised is not None and path.filter is None:
        urn, attribute, sub = target_attribute(rt, path)
        if sub is None and quirks.names_whole_manager(urn, attribute, value, compat):
            return [PatchOperation("remove", path, None), PatchOperation(op, path, normalised)]
    return [PatchOperation(op, path, normalised)]


def _schema_operation(
    op: OpName, urn: str, rt: ResourceType, value: Any, has_value: bool, compat: CompatSettings
) -> list[PatchOperation]:
    """A path that is a whole schema URN (RFC 7644 3.5.2: ``path`` = the extension's URN).

    add/replace merge the object value into that schema's attributes; remove clears every
    attribute of an extension (the core schema cannot be removed).
    """
    if op == "remove":
        if urn == rt.schema.id:
            raise NoTarget("the core schema cannot be removed; name the attributes to remove")
        ext = rt.extension(urn)
        assert ext is not None
        return [PatchOperation("remove", PatchPath(AttrPath(ext.id, a.name)), None) for a in ext.attributes]
    if not has_value or not isinstance(value, Mapping):
        raise InvalidValue(f"an {op} on the schema {urn} needs an object value")
    return expand_pathless(op, value if urn == rt.schema.id else {urn: value}, rt, compat)


def expand_pathless(op: OpName, value: Any, rt: ResourceType, compat: CompatSettings) -> list[PatchOperation]:
    """A path-less add/replace as one operation per attribute of its value (RFC 7644 3.5.2.1/3.5.2.3).

    Keys follow :func:`provisor.scim.compat.patch_ops.expand_pathless_value` (Q6 dotted and URN keys).
    """
    out: list[PatchOperation] = []
    for text, item in quirks.expand_pathless_value(value, rt, compat):
        path = resolve_path(text, rt, compat)
        if path is not None:
            out.extend(_write_operations(op, path, item, rt, compat))
    return out


def expand_operation(op: PatchOperation, rt: ResourceType, compat: CompatSettings) -> list[PatchOperation]:
    """``op`` itself, or its expansion when it is path-less (operations built by hand)."""
    if op.path is not None:
        return [op]
    if op.op == "remove":
        raise NoTarget("a remove operation needs a path (RFC 7644 section 3.5.2.2)")
    return expand_pathless(op.op, op.value, rt, compat)


_MANAGER_FILTER = re.compile(r'^\s*manager\s*\[\s*value\s+eq\s+("(?:[^"\\]|\\.)*")\s*\]\s*$', re.IGNORECASE)


def resolve_path(text: str, rt: ResourceType, compat: CompatSettings) -> PatchPath | None:
    """Parse a PATCH path; None when it names an undeclared attribute that is to be ignored (1.3).

    Tolerated forms besides RFC 7644 section 3.5.2's ``PATH``: Q5 ``manager`` without the enterprise
    URN and Entra's ``manager[value eq "id"]`` (a filter on a single-valued attribute), Q2
    ``roles[primary eq "True"]`` (a boolean compared with a string) and Q15 ``urn:...:User.department``.
    """
    paths = plan_for(rt).patch_paths
    known = paths.get(text)
    if known is not None:
        return known  # parse_patch_path(text, rt) succeeded before: it depends on nothing else
    try:
        return remember(paths, text, parse_patch_path(text, rt))
    except InvalidPath as first:
        error = first
    candidates: list[str] = []
    colon = quirks.colon_after_urn(rt, text, compat)
    if colon is not None:
        candidates.append(colon)
    qualified = quirks.bare_extension_path(rt, text, compat) or quirks.unqualified_extension_path(
        rt, text, compat
    )
    if qualified is not None:
        candidates.append(qualified)
    for candidate in [text, *candidates]:
        unquoted = quirks.unquote_boolean_literals(candidate, compat)
        if unquoted is not None:
            candidates.append(unquoted)
    for candidate in candidates:
        try:
            return parse_patch_path(candidate, rt)
        except InvalidPath:
            continue
    manager = _manager_filter(rt, text, compat)
    if manager is not None:
        return manager
    if qualified is None and compat.on("unknown_attributes_ignored") and not quirks.path_head_known(rt, text):
        return None
    raise error


def _manager_filter(rt: ResourceType, text: str, compat: CompatSettings) -> PatchPath | None:
    """Q5: ``[urn:...:enterprise:2.0:User:]manager[value eq "id"]`` (Entra's manager removal, 2023)."""
    if not compat.on("manager_bare_string") or rt.extension(ENTERPRISE_USER) is None:
        return None
    urn, rest = rt.split_urn(text)
    if urn is not None and urn != ENTERPRISE_USER:
        return None
    match = _MANAGER_FILTER.match(rest)
    if match is None:
        return None
    try:
        literal = decode_string(match.group(1), match.start(1))
    except ScanError:  # the full parser reports it, with its position
        return None
    return PatchPath(
        AttrPath(ENTERPRISE_USER, "manager"),
        Compare(AttrPath(ENTERPRISE_USER, "manager", "value"), CompareOp.EQ, literal),
    )


def target_attribute(rt: ResourceType, path: PatchPath) -> tuple[str | None, Attribute, Attribute | None]:
    """(extension URN or None, top-level definition, sub-attribute definition or None) of a path."""
    targets = plan_for(rt).patch_targets
    known = targets.get(path.path)
    if known is not None:
        return known  # resolved before; failures are not remembered and raise below every time
    return remember(targets, path.path, _target_attribute(rt, path))


def _target_attribute(rt: ResourceType, path: PatchPath) -> tuple[str | None, Attribute, Attribute | None]:
    found = rt.attribute(path.path.urn, path.path.attr)
    if found is None:
        raise InvalidPath(f"unknown attribute {path.path}")
    urn, attribute = found
    sub = None
    if path.path.sub is not None:
        sub = attribute.sub(path.path.sub)
        if sub is None:
            raise InvalidPath(f"unknown sub-attribute {path.path}")
    return urn, attribute, sub


def normalise_operation_value(rt: ResourceType, path: PatchPath, value: Any, compat: CompatSettings) -> Any:
    """The operation's value after the value quirks (Q2, Q4, Q5, Q8) for the attribute it targets."""
    if value is None:
        return None
    urn, attribute, sub = target_attribute(rt, path)
    if sub is not None:
        return quirks.normalise_value(rt, urn, sub, value, compat, whole=True)
    if path.filter is not None and attribute.multi_valued:
        if isinstance(value, list):
            return [quirks.normalise_value(rt, urn, attribute, v, compat, whole=False) for v in value]
        return quirks.normalise_value(rt, urn, attribute, value, compat, whole=False)
    return quirks.normalise_value(rt, urn, attribute, value, compat, whole=True)
