"""Attribute values checked against their definitions (RFC 7643 sections 2.3-2.5 and 7).

The checker is driven by the compiled :class:`~provisor.scim.schema.Attribute` tree, not by
hand-written models: the same code validates every schema a registry holds. It returns values in
stored form (canonical sub-attribute names, unassigned parts removed) and raises only
:class:`~provisor.scim.errors.InvalidValue`, with a message naming the attribute path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from provisor.scim.compat import CompatSettings, bodies
from provisor.scim.errors import InvalidValue
from provisor.scim.filter.lexer import parse_datetime
from provisor.scim.schema.model import (
    ENTERPRISE_USER,
    INTEGER_RANGE,
    MAX_INTEGER,
    MIN_INTEGER,
    Attribute,
    AttributeType,
    Mutability,
    ResourceType,
)

#: xsd:dateTime (RFC 7643 section 2.3.5): date, "T", time, optional fraction and offset; the
#: years filters and sortBy can compare (0001 to 9999, ``parse_datetime``). Its digits are 0-9
#: (``\d`` is any Unicode digit: "٢٠٢٠" was a year).
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?\Z"
)
_MEMBER_TYPES = {"user": "User", "group": "Group"}
_ENTERPRISE_USER_LOWER = ENTERPRISE_USER.lower()
#: What a JSON array is here, for ``isinstance`` (``list | tuple`` written in place builds a new
#: union object at every call); the compiled checks test the usual type with ``type() is`` first.
_ARRAY: Final = list | tuple


def validate_attribute_value(
    rt: ResourceType, urn: str | None, attribute: Attribute, value: Any, compat: CompatSettings, *, where: str
) -> Any:
    """Validate and normalise one top-level attribute's value (RFC 7643 sections 2.3-2.5).

    ``urn`` is the extension schema the attribute belongs to (None for core and common attributes);
    ``where`` is the name used in error messages. Returns the stored form, or ``None`` when the value
    is unassigned: ``null``, an empty list or object (RFC 7643 section 2.5), a cleared manager (Q5),
    or any value of a ``writeOnly`` attribute such as ``password``, which is checked and then
    dropped, because Provisor never stores or returns it (RFC 7643 section 7, "writeOnly").
    Used by POST/PUT parsing and by PATCH for each attribute it sets.
    """
    if attribute.name == "manager" and urn is not None and urn.lower() == _ENTERPRISE_USER_LOWER:
        value = bodies.normalise_manager(value, compat)
    if value is None:
        return None
    if attribute.multi_valued:
        result: Any = _multi(rt, attribute, value, compat, where)
    elif isinstance(value, _ARRAY):
        raise InvalidValue(f"{where} must be a single value, not a list (RFC 7643 section 2.4)")
    elif attribute.type is AttributeType.COMPLEX:  # _single(attribute, value, compat, where, None)
        result = _complex(attribute, value, compat, where)
    else:
        result = check_simple(attribute, value, compat, where)
    if attribute.mutability is Mutability.WRITE_ONLY:
        return None
    return result


def _multi(rt: ResourceType, attribute: Attribute, value: Any, compat: CompatSettings, where: str) -> Any:
    """A multi-valued attribute: a JSON array, at most one ``primary: true`` (RFC 7643 section 2.4)."""
    if not isinstance(value, _ARRAY):
        raise InvalidValue(f"{where} must be a list (multi-valued attribute, RFC 7643 section 2.4)")
    is_roles = attribute.name == "roles"
    is_members = attribute.name == "members" and rt.name.lower() == "group"
    out: list[Any] = []
    for i, element in enumerate(value):
        # Element i is named f"{where}[{i}]" in messages; the name is built only for a message.
        if is_roles:
            element = bodies.decode_role(element, compat)
        elif is_members:
            _member_value_given(element, _at(where, i))
            element = bodies.member_display_name(element, compat)
        if element is None:
            _nested_null(compat, _at(where, i))
            continue
        if isinstance(element, _ARRAY):
            raise InvalidValue(f"{_at(where, i)} must not be a list (no nested arrays in SCIM)")
        checked = _single(attribute, element, compat, where, i)
        if is_members and checked is not None:
            checked = _member(checked, _at(where, i))
        if checked is not None:
            out.append(checked)
    if not out:
        return None
    primaries = 0
    for e in out:
        if isinstance(e, dict) and e.get("primary") is True:
            primaries += 1
    if primaries > 1:
        raise InvalidValue(
            f"{where} has {primaries} values with primary true; at most one is allowed (RFC 7643 2.4)"
        )
    return out


def _at(where: str, index: int | None) -> str:
    """The message name of a value: ``where``, or its element ``where[index]``."""
    return where if index is None else f"{where}[{index}]"


def _single(attribute: Attribute, value: Any, compat: CompatSettings, where: str, index: int | None) -> Any:
    if attribute.type is AttributeType.COMPLEX:
        return _complex(attribute, value, compat, where, index)
    return check_simple(attribute, value, compat, _at(where, index))


@dataclass(frozen=True, slots=True)
class _ComplexTable:
    """What :func:`_complex` looks up per key, computed once per complex attribute."""

    #: canonical sub-attribute name -> (the definition ``attribute.sub(name)`` gives, the one Python
    #: type for which ``check_simple`` returns a value unchanged, or None: no fast path; for a plain
    #: string sub-attribute with canonicalValues, those lower-cased, else None)
    exact: dict[str, tuple[Attribute, type | None, frozenset[str] | None]]
    required: tuple[Attribute, ...]


_COMPLEX_TABLES: dict[int, tuple[Attribute, _ComplexTable]] = {}
#: Tables of at most this many attributes are kept; past it the cache starts afresh.
_MAX_TABLES = 512


def _complex_table(attribute: Attribute) -> _ComplexTable:
    """The cached table of ``attribute``, by identity (hashing a frozen Attribute walks its tree)."""
    entry = _COMPLEX_TABLES.get(id(attribute))
    if entry is not None and entry[0] is attribute:
        return entry[1]
    exact: dict[str, tuple[Attribute, type | None, frozenset[str] | None]] = {}
    for sub in attribute.sub_attributes:
        found = attribute.sub(sub.name)  # the case-insensitive lookup decides which one a name means
        if found is not None and found.name not in exact:
            exact[found.name] = (found, _fast_type(found), _fast_canonical(found))
    table = _ComplexTable(exact, tuple(s for s in attribute.sub_attributes if s.required))
    if len(_COMPLEX_TABLES) >= _MAX_TABLES:
        _COMPLEX_TABLES.clear()
    _COMPLEX_TABLES[id(attribute)] = (attribute, table)
    return table


def _fast_type(sub: Attribute) -> type | None:
    """The type whose values :func:`_complex` may store as given for sub-attribute ``sub``: the
    values for which its general path (the checks before ``check_simple``, then ``check_simple``)
    returns the value unchanged, but for a ``str`` holding U+0000, which callers test for. None
    when ``sub`` is readOnly or complex (those branches decide), and for integers, which
    ``check_simple`` checks against the range the stores hold."""
    if sub.mutability is Mutability.READ_ONLY or sub.type is AttributeType.COMPLEX:
        return None
    if sub.type is AttributeType.BOOLEAN:
        return bool
    if (sub.type is _STRING or sub.type is _REFERENCE) and not sub.canonical_values:
        return str
    return None


def top_level_fast_type(urn: str | None, attribute: Attribute) -> type | None:
    """The type whose values :func:`validate_attribute_value` returns unchanged for a top-level
    ``attribute`` of extension ``urn`` (None: no such fast path): a single-valued, simple, not
    writeOnly attribute that is not the enterprise manager (Q5), whose ``check_simple`` passes the
    type through (see :func:`_fast_type`; a ``str`` only without U+0000, which callers test for)."""
    if (
        attribute.multi_valued
        or attribute.mutability is Mutability.WRITE_ONLY
        or (attribute.name == "manager" and urn is not None and urn.lower() == _ENTERPRISE_USER_LOWER)
    ):
        return None
    return _fast_type(attribute)


#: A compiled top-level check: ``(value, compat) -> stored form or None`` (``compile_check``).
Check = Callable[[Any, CompatSettings], Any]


def compile_check(rt: ResourceType, urn: str | None, attribute: Attribute, where: str) -> Check:
    """``validate_attribute_value(rt, urn, attribute, value, compat, where=where)`` as a function of
    ``(value, compat)``, specialised once for one top-level attribute of ``rt``: a complex attribute
    (single-valued, or multi-valued like ``emails``) skips the dispatch on its definition and keeps
    its sub-attribute table. The rest (simple types, the enterprise manager (Q5), ``roles`` (Q8), a
    Group's ``members``, writeOnly attributes) is the general function itself. Same results, same
    errors, same order of checks."""

    def general(value: Any, compat: CompatSettings) -> Any:
        return validate_attribute_value(rt, urn, attribute, value, compat, where=where)

    if (
        attribute.type is not AttributeType.COMPLEX
        or attribute.mutability is Mutability.WRITE_ONLY
        or (attribute.name == "manager" and urn is not None and urn.lower() == _ENTERPRISE_USER_LOWER)
        or attribute.name == "roles"
        or (attribute.name == "members" and rt.name.lower() == "group")
    ):
        return general
    table = _complex_table(attribute)
    if not attribute.multi_valued:

        def single(value: Any, compat: CompatSettings) -> Any:
            if value is None:
                return None
            if type(value) is not dict and isinstance(value, _ARRAY):
                raise InvalidValue(f"{where} must be a single value, not a list (RFC 7643 section 2.4)")
            return _complex(attribute, value, compat, where, None, table)

        return single

    def multi(value: Any, compat: CompatSettings) -> Any:  # _multi of a complex attribute
        if value is None:
            return None
        if type(value) is not list and not isinstance(value, _ARRAY):
            raise InvalidValue(f"{where} must be a list (multi-valued attribute, RFC 7643 section 2.4)")
        out: list[Any] = []
        primaries = 0
        for i, element in enumerate(value):
            if element is None:
                _nested_null(compat, _at(where, i))
                continue
            if type(element) is not dict and isinstance(element, _ARRAY):
                raise InvalidValue(f"{_at(where, i)} must not be a list (no nested arrays in SCIM)")
            checked = _complex(attribute, element, compat, where, i, table)
            if checked is not None:
                if checked.get("primary") is True:
                    primaries += 1
                out.append(checked)
        if not out:
            return None
        if primaries > 1:
            raise InvalidValue(
                f"{where} has {primaries} values with primary true; at most one is allowed (RFC 7643 2.4)"
            )
        return out

    return multi


def _fast_canonical(sub: Attribute) -> frozenset[str] | None:
    """For a writable plain-string sub-attribute with canonicalValues, the lower-cased values: a
    ``str`` whose lower-case form is among them passes ``check_simple`` unchanged (not caseExact)."""
    if (
        sub.mutability is Mutability.READ_ONLY
        or not (sub.type is _STRING or sub.type is _REFERENCE)
        or not sub.canonical_values
        or sub.case_exact  # compared as written: the general path (_canonical)
    ):
        return None
    return _lowered(sub.canonical_values)


def _complex(
    attribute: Attribute,
    value: Any,
    compat: CompatSettings,
    where: str,
    index: int | None = None,
    table: _ComplexTable | None = None,
) -> dict[str, Any] | None:
    """A complex value: an object whose keys are its sub-attributes, any case (RFC 7643 2.3.8).

    ``where`` (with ``index``, for an element of a multi-valued attribute) names the value in
    messages; sub-attribute ``s`` is ``f"{where}.{s}"``. ``table`` is ``_complex_table(attribute)``
    when the caller holds it already.
    """
    if type(value) is not dict and not isinstance(value, Mapping):  # a JSON object skips the ABC check
        raise InvalidValue(f"{_at(where, index)} must be an object with sub-attributes of {attribute.name}")
    if table is None:
        table = _complex_table(attribute)
    exact = table.exact
    out: dict[str, Any] = {}
    for key, sub_value in value.items():
        known = exact.get(key)  # a canonical spelling: what attribute.sub(key) would give
        if known is None:
            if not isinstance(key, str):
                raise InvalidValue(f"{_at(where, index)} has a non-string key")
            sub = attribute.sub(key)
            if sub is None:
                if bodies.unknown_attributes_ignored(compat):
                    continue
                raise InvalidValue(f"unknown sub-attribute '{key}' in {_at(where, index)}")
            fast: type | None = _fast_type(sub)
            canonical = _fast_canonical(sub)
        else:
            sub, fast, canonical = known
        name = sub.name
        if name in out:
            raise InvalidValue(f"{_at(where, index)}.{name} is given twice")
        value_type = type(sub_value)
        if (value_type is fast and (fast is not str or "\x00" not in sub_value)) or (
            canonical is not None and value_type is str and sub_value.lower() in canonical
        ):
            # The general path below returns such a value unchanged (see _fast_type, _fast_canonical).
            out[name] = sub_value
            continue
        if sub.mutability is Mutability.READ_ONLY:
            continue  # e.g. manager.displayName: read-only input is ignored (RFC 7643 section 7)
        if sub_value is None:
            continue  # unassigned (RFC 7643 section 2.5): a member's "$ref": null, givenName: null
        here = f"{_at(where, index)}.{name}"
        if sub.type is AttributeType.COMPLEX:
            raise InvalidValue(f"{here}: a sub-attribute cannot be complex (RFC 7643 section 2.3.8)")
        if isinstance(sub_value, list | tuple):
            raise InvalidValue(f"{here} must be a single value, not a list")
        out[name] = check_simple(sub, sub_value, compat, here)
    if not out and (index is None or not table.required):
        # An empty object is unassigned (RFC 7643 section 2.5), as a single value or as an element
        # whose sub-attributes are all optional (emails: [{}]). An element of an attribute with a
        # required sub-attribute falls through: [{}] there lacks it, and leaving it out in silence
        # would let a PUT clear the attribute with a success status.
        return None
    for sub in table.required:
        if sub.name not in out:
            raise InvalidValue(f"{_at(where, index)}.{sub.name} is required")
    return out


def check_simple(attribute: Attribute, value: Any, compat: CompatSettings, where: str) -> Any:
    """A singular, non-complex value of the attribute's data type (RFC 7643 sections 2.3.1-2.3.7)."""
    kind = attribute.type
    value_type = type(value)
    if (
        value_type is str
        and (kind is _STRING or kind is _REFERENCE)
        and not attribute.canonical_values
        and "\x00" not in value
    ):
        return value  # fast path of the string branch below: no NUL, dateTime, binary or canonical check
    if value_type is bool and kind is AttributeType.BOOLEAN:
        return value  # fast path of the boolean branch: coerce_string_boolean leaves a bool alone
    if kind is AttributeType.BOOLEAN:
        value = bodies.coerce_string_boolean(value, compat)
        if not isinstance(value, bool):
            raise InvalidValue(f"{where} must be a boolean (true or false)")
        return value
    if kind is AttributeType.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            # The JSON reader gives a float for an integer past its range too: name the range.
            raise InvalidValue(f"{where} must be an integer, {INTEGER_RANGE}")
        _check_integer_range(value, where)
        return value
    if kind is AttributeType.DECIMAL:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidValue(f"{where} must be a decimal number")
        if isinstance(value, int):
            _check_integer_range(value, where, " (a decimal this large is written with an exponent)")
        return value
    if not isinstance(value, str):
        kind_note = "" if kind is AttributeType.STRING else f" ({kind.value})"
        raise InvalidValue(f"{where} must be a string{kind_note}")
    if "\x00" in value:
        # JSON can carry it (\u0000), but the database's text functions stop at it, so a stored
        # NUL makes filters (ew, co) miss the value; no client means one. Every fast path that
        # stores a str as given (here, _complex, parse.parse_resource) tests for it too.
        raise InvalidValue(f"{where} must not contain the NUL character (U+0000)")
    if kind is AttributeType.DATETIME:
        _check_datetime(value, where)
    elif kind is AttributeType.BINARY and not is_base64(value):
        raise InvalidValue(f"{where} must be base64-encoded binary (RFC 7643 section 2.3.6)")
    if (
        attribute.canonical_values
        and not _canonical(attribute, value)
        and not bodies.free_type_label(attribute, compat)
    ):
        raise InvalidValue(f"{where} must be one of {', '.join(attribute.canonical_values)}, not {value!r}")
    return value


#: Base64 (RFC 4648 section 4) as RFC 7643 section 2.3.6 has binary values written: groups of
#: four, the last padded with "=" to four. Python's decoder also takes excess padding ("QUJD="),
#: which would store other text for the same bytes and so escape an ``eq`` on them.
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def is_base64(text: str) -> bool:
    """Whether ``text`` is base64 with exact padding (see :data:`_BASE64`)."""
    return _BASE64.fullmatch(text) is not None


def _canonical(attribute: Attribute, value: str) -> bool:
    """Whether ``value`` is one of the attribute's canonicalValues: as written when the attribute
    is caseExact (or binary, whose text is bytes: RFC 7643 section 2.3.6), else in any case."""
    if attribute.case_exact or attribute.type is AttributeType.BINARY:
        return value in attribute.canonical_values
    return value.lower() in _lowered(attribute.canonical_values)


def _check_integer_range(value: int, where: str, hint: str = "") -> None:
    """An integer the stores can hold: signed 64-bit, as filters compare (JSON parsers hand over up
    to 2**64 - 1 as an integer, and no bound at all from Python)."""
    if not MIN_INTEGER <= value <= MAX_INTEGER:
        raise InvalidValue(f"{where} is {value}, outside the integers Provisor holds: {INTEGER_RANGE}{hint}")


#: The types whose string values get no format check in :func:`check_simple` (only canonicalValues).
_STRING = AttributeType.STRING
_REFERENCE = AttributeType.REFERENCE
_LOWERED: dict[tuple[str, ...], frozenset[str]] = {}


def _lowered(canonical_values: tuple[str, ...]) -> frozenset[str]:
    """``{c.lower() for c in canonical_values}``, computed once per tuple of canonical values."""
    found = _LOWERED.get(canonical_values)
    if found is None:
        found = frozenset(c.lower() for c in canonical_values)
        if len(_LOWERED) < _MAX_TABLES:
            _LOWERED[canonical_values] = found
    return found


def _check_datetime(value: str, where: str) -> None:
    """xsd:dateTime (RFC 7643 section 2.3.5), e.g. ``2008-01-23T04:56:22Z``; stored as given.

    Only a value filters and ``sortBy`` read as an instant (``parse_datetime``, as the evaluator
    and the store do) is taken: one they could not read would match no ``gt``/``lt`` and sort as
    if absent. So month 13, ``-2024-99-99T99:99:99Z`` and years past 9999 or before 0001 are
    refused, and ``24:00:00`` (the next day's midnight, xsd) is taken."""
    if _DATETIME.match(value) is None or parse_datetime(value) is None:
        example = "2008-01-23T04:56:22Z (years 0001 to 9999)"
        raise InvalidValue(f"{where} must be an xsd:dateTime such as {example}, not {value!r}")


def _nested_null(compat: CompatSettings, where: str) -> None:
    """Q12: a null among a multi-valued attribute's values is no value when tolerated; a strict
    reading refuses it."""
    if not bodies.nested_nulls_ignored(compat):
        raise InvalidValue(f"{where} is null: give the values of a multi-valued attribute, or null for none")


def _member_value_given(element: Any, where: str) -> None:
    """A group member names a User or Group by its ``value`` (RFC 7643 section 4.2): an element
    without one (``{}``, ``{"display": "x"}``, Entra's ``{"$ref": null}`` alone) or with ``null``
    is refused, even where nested nulls are unassigned (Q12). Otherwise such an element is an
    empty member, left out in silence: a PUT or a PATCH replace with ``[{}]`` would empty the group
    with a success status. RFC 7643 section 8.7.1 marks no member sub-attribute ``required``; what
    makes ``value`` necessary is that a member is an id, and no IdP sends a member without one."""
    if not isinstance(element, Mapping):
        return  # null is unassigned (Q12); other non-objects fail the complex check with their own message
    given = [v for k, v in element.items() if isinstance(k, str) and k.lower() == "value"]
    if not given:
        raise InvalidValue(f"{where}.value is required: the id of a User or Group (RFC 7643 section 4.2)")
    if any(v is None for v in given):
        raise InvalidValue(f"{where}.value is required: the id of a User or Group, not null")


def _member(element: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A group member (RFC 7643 section 4.2): ``value`` required; ``type`` User or Group, canonical.

    ``$ref`` is not stored (the server renders it from ``type`` and ``value``); when ``type`` is
    missing it is taken from a ``$ref`` ending in ``/Users/<id>`` or ``/Groups/<id>``.
    """
    value = element.get("value")
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(f"{where}.value is required: the id of a User or Group")
    out: dict[str, Any] = {"value": value}
    kind = element.get("type")
    ref = element.get("$ref")
    if kind is None and isinstance(ref, str):
        segments = ref.rstrip("/").split("/")
        if len(segments) >= 2:
            kind = {"users": "User", "groups": "Group"}.get(segments[-2].lower())
    if kind is not None:
        out["type"] = _MEMBER_TYPES[str(kind).lower()]
    if "display" in element:
        out["display"] = element["display"]
    return out
