"""PATCH operations applied to a stored resource dict (RFC 7644 sections 3.5.2.1-3.5.2.3).

The resource dict has canonical attribute names with extension attributes nested under their
URN (the store contract, ``provisor.store.base``). :func:`apply_patch` works on a deep copy, so a
request whose n-th operation fails leaves the caller's dict untouched: all operations apply, or none,
and the result shares no mutable object with the input.

Every operation ends by validating the whole top-level attribute it touched with
:func:`provisor.scim.resources.validate_attribute_value`, so patched values obey the same rules as
a POST; the request ends with the ``required``, ``immutable`` and allowed-roles checks.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from provisor.scim.compat import CompatSettings
from provisor.scim.compat import patch_ops as quirks
from provisor.scim.errors import InvalidValue, Mutability, NoTarget, ScimError, TooMany
from provisor.scim.filter.ast import Filter, PatchPath
from provisor.scim.filter.evaluate import is_element, matches_element
from provisor.scim.patch.request import (
    PatchOperation,
    expand_operation,
    normalise_operation_value,
    prefix_operation,
    target_attribute,
)
from provisor.scim.resources import (
    RequiredMissing,
    check_required,
    check_roles,
    keep_immutable,
    validate_attribute_value,
)
from provisor.scim.schema.model import Attribute, AttributeType, ResourceType
from provisor.scim.schema.model import Mutability as Mut


def apply_patch(
    rt: ResourceType,
    data: Mapping[str, Any],
    ops: Sequence[PatchOperation],
    compat: CompatSettings,
    *,
    allowed_roles: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Apply ``ops`` in order to a copy of ``data`` and return it (RFC 7644 section 3.5.2).

    Atomic: the input is never mutated. Raises a :class:`~provisor.scim.errors.ScimError` naming the
    failing operation; ``mutability`` for readOnly targets and changed immutable values,
    ``noTarget`` for an unmatched filter (unless ``unmatched_filter_creates``), ``invalidValue``
    for a bad value, ``mutability`` for a required attribute removed or unassigned (a PATCH
    cannot remove ``userName``; RFC 7644 section 3.5.2.2).
    Group ``members`` are not part of the dict: separate them first with
    :func:`provisor.scim.patch.split_member_operations` (a ``members`` operation here is a
    programming error and raises ValueError).
    """
    result: dict[str, Any] = {k: v if type(v) in _ATOMIC else _fresh(v) for k, v in data.items()}
    work = PatchWork()
    for index, op in enumerate(ops):
        try:  # operation_context(index), inlined: a generator-based context manager costs ~1 us
            for one in expand_operation(op, rt, compat):
                assert one.path is not None
                if is_member_path(rt, one.path):
                    raise ValueError("group members are not in the dict: use split_member_operations")
                work.spend(apply_operation(rt, result, one, compat))
        except ScimError as exc:
            prefix_operation(exc, op.place(index))
            raise
    try:
        check_required(rt, result)
    except RequiredMissing as exc:
        if exc.removed(data, result):
            # RFC 7644 section 3.5.2.2: a required attribute removed or unassigned is "mutability"
            # (one replaced by a blank string stays invalidValue: a value, and not a valid one)
            raise Mutability(f"{exc.detail}: a PATCH cannot remove it (RFC 7644 section 3.5.2.2)") from None
        raise
    keep_immutable(rt, data, result)
    check_roles(result, allowed_roles, held=data)
    return result


#: The most values of multi-valued attributes one PATCH may go through (each operation filters,
#: rewrites and validates the whole attribute it targets, so 1,000 operations on an attribute of
#: 5,000 values is 5 million steps, tens of seconds of the server's one event loop). Entra's and
#: Okta's PATCHes take a few hundred at most. A group's members are a relation that member
#: operations change in O(k), not counted, but for the shapes only the whole list can take
#: (``apply_member_operations``), whose budget grows with the group (:data:`MEMBER_PASSES`).
MAX_PATCH_WORK = 100_000

#: How many passes over a group's whole member list one PATCH may make, however large the group
#: (an operation on the list goes through it about twice: it filters, then rewrites it).
MEMBER_PASSES = 8


class PatchWork:
    """What one PATCH has cost so far, in values gone through (:func:`apply_operation`), against
    ``limit`` (:data:`MAX_PATCH_WORK` unless the caller scales it)."""

    __slots__ = ("limit", "operations", "values")

    def __init__(self, limit: int = MAX_PATCH_WORK) -> None:
        self.limit = limit
        self.operations = 0
        self.values = 0

    def spend(self, values: int) -> None:
        """Count one more operation; 400 tooMany once a PATCH of two or more operations has gone
        through more than ``limit`` values (one operation is bounded by the size of what it
        targets, and always runs)."""
        self.operations += 1
        self.values += values
        if self.values > self.limit and self.operations > 1:
            raise TooMany(
                f"the operations go through more than {self.limit:,} values of multi-valued "
                "attributes in all; send them in several requests, or replace the attribute whole"
            )


#: JSON scalars: immutable, so a copy may share them (``copy.deepcopy`` returns them as they are).
_ATOMIC = frozenset({str, int, float, bool, type(None)})


def _fresh(value: Any) -> Any:
    """A deep copy of a JSON value: what ``copy.deepcopy`` gives for the dicts, lists and scalars a
    stored resource is made of, without its memo bookkeeping; any other type goes to ``deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {k: v if type(v) in _ATOMIC else _fresh(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _ATOMIC else _fresh(v) for v in value]
    if kind in _ATOMIC:
        return value
    return copy.deepcopy(value)


def is_member_path(rt: ResourceType, path: PatchPath) -> bool:
    """Whether ``path`` targets a Group's ``members`` (kept as a relation, not in the dict)."""
    return rt.name.lower() == "group" and path.path.urn is None and path.path.attr == "members"


def apply_operation(
    rt: ResourceType, data: dict[str, Any], op: PatchOperation, compat: CompatSettings
) -> int:
    """Apply one operation with a path to ``data`` in place (callers pass a private copy); returns
    the work it took, in values of the attribute gone through (at least 1): each operation
    filters, rewrites and validates the whole attribute it targets."""
    assert op.path is not None
    urn, attribute, sub = target_attribute(rt, op.path)
    where = f"{urn}:{attribute.name}" if urn else attribute.name
    if attribute.mutability is Mut.READ_ONLY or (sub is not None and sub.mutability is Mut.READ_ONLY):
        raise Mutability(f"{op.path.path} is readOnly and cannot be changed (RFC 7643 section 7)")
    container = data if urn is None else data.get(urn)
    current = container.get(attribute.name) if isinstance(container, Mapping) else None
    if op.op != "add" and sub is not None and sub.mutability is Mut.IMMUTABLE and attribute.multi_valued:
        if op.op == "replace" and _repeats(rt, attribute, sub, current, op, compat):
            return 1  # the values it names already hold it: no change (as a PUT may repeat them)
        raise Mutability(
            f"{op.path.path} is immutable: a {op.op} cannot change it (RFC 7644 section 3.5.2); "
            f"remove the value of {attribute.name} and add another instead"
        )
    if urn is None and attribute.name == "roles":
        # Q8 decodes a JSON-encoded role once, where the request is parsed (parse_patch_request);
        # the stored roles were decoded when they were written. Decoding again here, the
        # operation's value or the merged list, would turn a role whose value is itself JSON text
        # into what that text encodes.
        compat = compat.without("roles_json_strings")
    work = len(current) + 1 if type(current) is list else 1
    value = normalise_operation_value(rt, op.path, op.value, compat)
    if op.op != "remove" and value is None:
        if op.op == "replace":
            new = _remove(rt, attribute, current, op.path, None)
        elif compat.on("explicit_nulls"):
            return work  # Q12: "add null" adds nothing
        else:
            raise InvalidValue(f"{where}: an add needs a value, not null (RFC 7644 section 3.5.2.1)")
    elif op.op == "remove":
        new = _remove(rt, attribute, current, op.path, value)
    else:
        new = _write(rt, attribute, current, op.path, value, add=op.op == "add", compat=compat)
        if attribute.multi_valued and (op.path.filter is not None or op.path.path.sub is not None):
            _check_kept_immutables(attribute, current, new, where)
    checked = None if new is None else validate_attribute_value(rt, urn, attribute, new, compat, where=where)
    _store(data, urn, attribute, checked)
    return work + len(new) if type(new) is list else work


def _repeats(
    rt: ResourceType,
    attribute: Attribute,
    sub: Attribute,
    current: Any,
    op: PatchOperation,
    compat: CompatSettings,
) -> bool:
    """Whether a replace of the immutable ``sub`` of a multi-valued ``attribute`` gives every
    value it targets (those its filter matches, or all of them) the value they already hold: it
    modifies nothing, which RFC 7644 section 3.5.2 forbids, so it is no change rather than a
    ``mutability`` error (RFC 7644 section 3.5.1 lets a PUT repeat an immutable value the same
    way). A replace that targets no value would create one, and is still refused."""
    assert op.path is not None
    elements = _elements(current)
    targets = (
        [elements[i] for i in sorted(_matched(rt, attribute, elements, op.path.filter))]
        if op.path.filter is not None
        else [e for e in elements if is_element(e, attribute)]
    )
    if not targets or op.value is None:
        return False
    value = normalise_operation_value(rt, op.path, op.value, compat)
    return all(
        isinstance(e, Mapping) and (was := _sub_value(e, sub.name)) is not _ABSENT and _same(sub, was, value)
        for e in targets
    )


def _value_key(attribute: Attribute, value: Any) -> Hashable:
    """What makes two values of a multi-valued ``attribute`` the same value: their sub-attributes
    (names in any case; strings folded unless the sub-attribute is caseExact; ``primary: false``
    as no ``primary``), or the value itself (folded unless the attribute is caseExact). Types are
    part of it: true is not 1."""
    if isinstance(value, Mapping):
        parts = []
        for name, item in value.items():
            if item is None:
                continue
            low = name.lower() if isinstance(name, str) else repr(name)
            if item is False and low == "primary":
                continue  # RFC 7643 section 2.4: a value without "primary" is not primary, the same
            sub = attribute.sub(name) if isinstance(name, str) else None
            parts.append((low, _scalar_key(item, sub is not None and sub.case_exact)))
        return ("object", frozenset(parts))
    return ("value", _scalar_key(value, attribute.case_exact))


def _scalar_key(value: Any, case_exact: bool) -> Hashable:
    if isinstance(value, str):
        return ("str", value if case_exact else value.lower())
    if isinstance(value, bool | int | float):
        return (type(value).__name__, value)
    return ("json", repr(value))


def _check_kept_immutables(attribute: Attribute, current: Any, new: Any, where: str) -> None:
    """Values of a multi-valued ``attribute`` keep their set immutable sub-attributes (RFC 7643
    section 2.2: set once; RFC 7644 section 3.5.2: ``mutability``).

    For a write that targets existing values (a sub-attribute path or a valuePath filter), which
    keeps them in place and appends any value it creates: an immutable sub-attribute that had a
    value may be repeated, not changed or nulled; one a value lacks may be set.
    """
    immutable = [s for s in attribute.sub_attributes if s.mutability is Mut.IMMUTABLE]
    if not immutable:
        return
    for before, after in zip(_elements(current), _elements(new), strict=False):
        if not isinstance(before, Mapping) or not isinstance(after, Mapping):
            continue
        for sub in immutable:
            was, now = _sub_value(before, sub.name), _sub_value(after, sub.name)
            if was is None or was is _ABSENT or now is _ABSENT:
                continue
            if now is None or not _same(sub, was, now):
                raise Mutability(
                    f"{where}.{sub.name} is immutable and cannot be changed once set (RFC 7643 section 2.2); "
                    f"remove the value of {attribute.name} and add another instead"
                )


_ABSENT = object()


def _sub_value(element: Mapping[str, Any], name: str) -> Any:
    """The value of sub-attribute ``name`` (any case) in ``element``; ``_ABSENT`` without the key."""
    low = name.lower()
    for key, item in element.items():
        if isinstance(key, str) and key.lower() == low:
            return item
    return _ABSENT


def _store(data: dict[str, Any], urn: str | None, attribute: Attribute, value: Any) -> None:
    if urn is None:
        target = data
    else:
        existing = data.get(urn)
        target = dict(existing) if isinstance(existing, Mapping) else {}
        data[urn] = target
    if value is None:
        target.pop(attribute.name, None)
    else:
        target[attribute.name] = value
    if urn is not None and not target:
        del data[urn]


# --- add / replace ------------------------------------------------------------------------------


def _write(
    rt: ResourceType,
    attribute: Attribute,
    current: Any,
    path: PatchPath,
    value: Any,
    *,
    add: bool,
    compat: CompatSettings,
) -> Any:
    """RFC 7644 3.5.2.1 (add) and 3.5.2.3 (replace); a replace of an absent target is an add."""
    sub = path.path.sub
    if path.filter is not None:
        return _write_filtered(rt, attribute, current, path.filter, sub, value, add=add, compat=compat)
    if sub is not None:
        if attribute.multi_valued:
            elements = _elements(current)
            if not elements:
                return [{sub: value}]
            touched = [_set_sub(e, sub, value) for e in elements]
            return _settle_primary(attribute, touched, touched)
        return _set_sub(current if isinstance(current, Mapping) else {}, sub, value)
    if attribute.multi_valued:
        values = value if isinstance(value, list) else [value]
        if not add:
            return _settle_primary(attribute, list(values), list(values))
        merged = list(_elements(current))
        # "If the target location already contains the value specified, no changes SHOULD be
        # made" (RFC 7644 section 3.5.2.1): values compared as filters compare them, strings
        # without regard to case unless caseExact (an email "A@X.COM" of type "WORK" is there)
        held = {_value_key(attribute, v) for v in merged}
        added = []
        for v in values:
            key = _value_key(attribute, v)
            if key not in held:
                held.add(key)
                added.append(v)
        return _settle_primary(attribute, merged + added, added)
    complex_ = attribute.type is AttributeType.COMPLEX
    if complex_ and isinstance(current, Mapping) and isinstance(value, Mapping):
        # Both verbs merge: "Sub-attributes that are not specified in the value parameter are left
        # unchanged" (RFC 7644 section 3.5.2.3; section 3.5.2.1 for add).
        return _merge(current, value)
    return value


def _write_filtered(
    rt: ResourceType,
    attribute: Attribute,
    current: Any,
    f: Filter,
    sub: str | None,
    value: Any,
    *,
    add: bool,
    compat: CompatSettings,
) -> Any:
    """A valuePath target: set ``sub`` of, merge into (add) or replace the matched values."""
    if attribute.type is not AttributeType.COMPLEX:
        return _write_filtered_simple(rt, attribute, current, f, value)
    if sub is None:
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not isinstance(value, Mapping):
            raise InvalidValue(f"{attribute.name}[...] needs an object value: the sub-attributes to set")
    elements = _elements(current)
    matched = _matched(rt, attribute, elements, f)
    if not matched:
        created = quirks.element_from_filter(f) if compat.on("unmatched_filter_creates") else None
        if created is None:
            raise NoTarget(f"the filter on {attribute.name} matches no value (RFC 7644 section 3.5.2.3)")
        _check_agrees(attribute, created, {sub: value} if sub is not None else value)
        new = _set_sub(created, sub, value) if sub is not None else _merge(created, value)
        return _rebuild(attribute, [*elements, new], [new])
    out: list[Any] = []
    touched: list[Any] = []
    for i, element in enumerate(elements):
        if i not in matched:
            out.append(element)
            continue
        if sub is not None:
            new = _set_sub(element, sub, value)
        elif add:
            new = _merge(element, value)
        else:
            new = dict(value)
        out.append(new)
        touched.append(new)
    return _rebuild(attribute, out, touched)


def _write_filtered_simple(
    rt: ResourceType, attribute: Attribute, current: Any, f: Filter, value: Any
) -> Any:
    """``attr[value eq "x"]`` on a simple multi-valued attribute (RFC 7644 section 3.5.2.3): each
    matched value becomes ``value`` (add and replace alike: a simple value has nothing to merge),
    kept in its place and listed once (values compared as an add compares them: strings folded
    unless caseExact). A filter that matches nothing is ``noTarget``: the value
    it describes and the one given may differ, so there is no element to create."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, Mapping | list):
        raise InvalidValue(
            f"{attribute.name}[...] needs one {attribute.type.value} value to put in place of those matched"
        )
    elements = _elements(current)
    matched = _matched(rt, attribute, elements, f)
    if not matched:
        raise NoTarget(f"the filter on {attribute.name} matches no value (RFC 7644 section 3.5.2.3)")
    out: list[Any] = []
    held: set[Hashable] = set()
    for i, element in enumerate(elements):
        new = value if i in matched else element
        key = _value_key(attribute, new)
        if key not in held:
            held.add(key)
            out.append(new)
    return out


def _check_agrees(attribute: Attribute, described: Mapping[str, Any], value: Mapping[Any, Any]) -> None:
    """An element made from an unmatched filter (``unmatched_filter_creates``) must be the element
    the filter describes: a value that gives one of the filter's sub-attributes another value
    (``add members[value eq "a"]`` with ``{"value": "b"}``) would create an element the filter
    does not match, so the operation is refused (400 ``invalidValue``). Strings compare without
    regard to case, as most sub-attributes do (``type``)."""
    for key, item in value.items():
        if not isinstance(key, str) or item is None:
            continue
        for name, wanted in described.items():
            if name.lower() != key.lower() or _agrees(item, wanted):
                continue
            raise InvalidValue(
                f"the filter on {attribute.name} matches no value, and the value given sets "
                f"{name} to {item!r} where the filter asks for {wanted!r}: the element it would "
                "create does not match the filter"
            )


def _agrees(a: Any, b: Any) -> bool:
    """Equal as a filter compares them, leniently: strings without case, and Entra's
    ``"True"``/``"False"`` strings as the booleans they stand for."""
    return bool(_plain(a) == _plain(b))


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.casefold() if isinstance(value, str) else value


def _rebuild(attribute: Attribute, elements: list[Any], touched: list[Any]) -> Any:
    if not attribute.multi_valued:
        return elements[-1] if elements else None
    return _settle_primary(attribute, elements, touched)


def _set_sub(element: Mapping[str, Any], sub: str, value: Any) -> dict[str, Any]:
    """``element`` with sub-attribute ``sub`` (any case) set in place, or removed when ``value`` is null."""
    low = sub.lower()
    out: dict[str, Any] = {}
    placed = value is None
    for key, item in element.items():
        if isinstance(key, str) and key.lower() == low:
            if not placed:
                out[sub] = value
                placed = True
        else:
            out[key] = item
    if not placed:
        out[sub] = value
    return out


def _merge(element: Mapping[str, Any], value: Mapping[str, Any]) -> dict[str, Any]:
    """Sub-attributes of ``value`` replace or add to ``element``'s; ``null`` unassigns (RFC 7643 2.5)."""
    out = dict(element)
    for key, item in value.items():
        out = _set_sub(out, key, item)
    return out


def _without(element: Mapping[str, Any], sub: str) -> dict[str, Any]:
    """``element`` without the key ``sub`` in any case (sub-attribute names are case-insensitive)."""
    low = sub.lower()
    return {k: v for k, v in element.items() if not (isinstance(k, str) and k.lower() == low)}


def _settle_primary(attribute: Attribute, elements: list[Any], touched: list[Any]) -> list[Any]:
    """RFC 7643 section 2.4: ``primary: true`` appears at most once. When this operation set it on
    a value, every other value of the attribute loses it (becomes ``primary: false``)."""
    if attribute.sub("primary") is None:
        return elements
    winners = [e for e in touched if isinstance(e, Mapping) and _primary(e)]
    if len(winners) > 1:
        raise InvalidValue(f"{attribute.name}: only one value may be primary (RFC 7643 section 2.4)")
    if not winners:
        return elements
    keep = winners[0]
    return [
        _set_sub(e, "primary", False) if e is not keep and isinstance(e, Mapping) and _primary(e) else e
        for e in elements
    ]


def _primary(element: Mapping[str, Any]) -> bool:
    return any(isinstance(k, str) and k.lower() == "primary" and v is True for k, v in element.items())


# --- remove -------------------------------------------------------------------------------------


def _remove(rt: ResourceType, attribute: Attribute, current: Any, path: PatchPath, value: Any) -> Any:
    """RFC 7644 section 3.5.2.2; removing what is not there is a no-op.

    ``value`` (Q3, ``remove_members_with_value``; rejected at parse time when off) selects the values
    of a multi-valued attribute to remove: those agreeing with every sub-attribute it gives.
    """
    sub = path.path.sub
    if current is None:
        return None
    if path.filter is None and sub is None:
        if value is None:
            return None
        selectors = value if isinstance(value, list) else [value]
        keep = [e for e in _elements(current) if not any(_selects(attribute, s, e) for s in selectors)]
        return _rebuild(attribute, keep, [])
    elements = _elements(current)
    matched = (
        set(range(len(elements))) if path.filter is None else _matched(rt, attribute, elements, path.filter)
    )
    out: list[Any] = []
    for i, element in enumerate(elements):
        if i not in matched:
            out.append(element)
        elif sub is not None:
            rest = _without(element, sub)
            if rest:
                out.append(rest)
    return _rebuild(attribute, out, [])


def _selects(attribute: Attribute, selector: Any, element: Any) -> bool:
    """Whether a Q3 remove value names ``element``: equal values, or agreeing sub-attributes."""
    if not isinstance(selector, Mapping) or not isinstance(element, Mapping):
        if isinstance(element, Mapping) and isinstance(selector, str):
            return _same(attribute.sub("value"), element.get("value"), selector)
        return _same(attribute, selector, element)
    given = {k: v for k, v in selector.items() if v is not None}
    if not given:
        return False
    lowered = {k.lower(): v for k, v in element.items() if isinstance(k, str)}
    for key, item in given.items():
        sub = attribute.sub(key) if isinstance(key, str) else None
        if sub is None and str(key).lower() == "$ref":
            continue  # Entra's "$ref" is never stored; members are selected by value
        if not _same(sub, lowered.get(str(key).lower()), item):
            return False
    return True


def _same(attribute: Attribute | None, a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str) and not (attribute is not None and attribute.case_exact):
        return a.lower() == b.lower()
    return bool(a == b)


# --- shared -------------------------------------------------------------------------------------


def _elements(current: Any) -> list[Any]:
    """The values of an attribute as a list: a single complex value is a one-element list (so
    Entra's ``manager[value eq "id"]`` filters it, Q5)."""
    if current is None:
        return []
    if isinstance(current, list):
        return list(current)
    return [current]


def _matched(rt: ResourceType, attribute: Attribute, elements: list[Any], f: Filter) -> set[int]:
    return {i for i, e in enumerate(elements) if is_element(e, attribute) and matches_element(f, e, rt)}
