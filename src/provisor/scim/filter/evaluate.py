"""In-memory evaluation of a parsed filter against a resource's JSON form (RFC 7644 section 3.4.2.2).

Semantics, per operator and attribute type (RFC 7643 section 2.3):

* Strings (``string``, ``reference``, ``binary``) compare case-insensitively unless the attribute
  is ``caseExact`` (RFC 7643 section 2.3.1). Folding is :meth:`str.lower` (not ``casefold``), the
  same as SQL ``LOWER()``, so the SQL visitor and this evaluator agree. ``gt``/``ge``/``lt``/``le``
  compare the folded strings lexicographically.
* ``dateTime`` values compare as instants (a value without an offset is UTC); ``co``/``sw``/``ew``
  on a dateTime never match (the parser refuses them, as it refuses them on ``binary``). Numbers
  compare numerically; booleans only with ``eq``/``ne``.
* Values the server builds from its base URL when rendering (``meta.location``, member and group
  ``$ref``) are read off the representation like any other; the parser only lets ``pr`` reach
  them, rewritten to an equivalent test the SQL store can decide too.
* A multi-valued attribute (or a sub-attribute of one, ``emails.value``) satisfies a comparison
  when ANY of its values does, ``ne`` included (RFC 7644 section 3.4.2.2, "Filters": "the filter
  matches if any of the values of the specified attribute match the specified criterion").
* An absent or null attribute satisfies ``ne "x"`` and ``eq null`` and nothing else but ``not``;
  ``ne null`` holds when it has a value.
* ``pr``: present, not null, not ``""``, not an empty list, and (complex) with a sub-attribute present.
* A value of an unexpected type (``"True"`` stored for a boolean, ``"42"`` for an integer) is
  coerced when that is unambiguous; otherwise it equals nothing (so ``ne`` holds) and orders nowhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from provisor.scim.filter.ast import (
    And,
    AttrPath,
    Compare,
    CompareOp,
    Filter,
    Literal,
    Not,
    Or,
    Present,
    ValuePath,
)
from provisor.scim.filter.lexer import parse_number, to_datetime
from provisor.scim.filter.parser import lookup_attribute
from provisor.scim.schema.model import Attribute, AttributeType, ResourceType

__all__ = ["fold", "is_present", "matches", "matches_element"]

_NUMERIC = frozenset({AttributeType.INTEGER, AttributeType.DECIMAL})
_SUBSTRING = frozenset({CompareOp.CO, CompareOp.SW, CompareOp.EW})
_MISSING: list[Any] = []

#: How case-insensitive string comparison folds case (see the module docstring).
fold: Callable[[str], str] = str.lower


def matches(f: Filter, resource: Mapping[str, Any], rt: ResourceType) -> bool:
    """Whether ``resource`` (its full JSON representation) satisfies ``f``.

    Core and common attributes are read at the top level, extension attributes under their schema URN.
    """
    return _eval(f, _ResourceReader(resource), rt)


def matches_element(f: Filter, element: Any, rt: ResourceType) -> bool:
    """Whether one element of a multi-valued attribute satisfies the inner filter ``f`` of a
    :class:`ValuePath` or :class:`PatchPath` (RFC 7644 sections 3.4.2.2 and 3.5.2): of a complex
    attribute, an object whose keys ``path.sub`` names; of a simple one, the value itself, which
    the inner filter names ``value`` (parsed as the attribute's path with no sub-attribute)."""
    return _eval(f, _ElementReader(element), rt)


def is_element(element: Any, attribute: Attribute | None) -> bool:
    """Whether ``element`` is a value a valuePath on ``attribute`` tests: an object for a complex
    attribute, a simple value for a simple one."""
    if attribute is not None and attribute.type is not AttributeType.COMPLEX:
        return not isinstance(element, Mapping | list | tuple)
    return isinstance(element, Mapping)


def is_present(value: Any) -> bool:
    """The ``pr`` test on one raw value (RFC 7644 section 3.4.2.2): not null, ``""``, ``[]`` or ``{}``."""
    if value is None:
        return False
    if isinstance(value, str):
        return value != ""
    if isinstance(value, Mapping):
        return any(is_present(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(is_present(v) for v in value)
    return True


def _get(container: Any, key: str) -> Any:
    """``container[key]``, falling back to a case-insensitive key match (RFC 7643 section 2.1)."""
    if not isinstance(container, Mapping):
        return None
    if key in container:
        return container[key]
    low = key.lower()
    for k, v in container.items():
        if isinstance(k, str) and k.lower() == low:
            return v
    return None


def _flatten(value: Any) -> list[Any]:
    if value is None:
        return _MISSING
    if isinstance(value, list | tuple):
        return [v for v in value if v is not None]
    return [value]


class _ResourceReader:
    """Reads ``[urn:]attr[.sub]`` off a resource; ``multi.sub`` gives every element's ``sub``."""

    __slots__ = ("resource",)

    def __init__(self, resource: Mapping[str, Any]) -> None:
        self.resource = resource

    def __call__(self, path: AttrPath) -> list[Any]:
        host = self.resource if path.urn is None else _get(self.resource, path.urn)
        value = _get(host, path.attr)
        if path.sub is None:
            return _flatten(value)
        if isinstance(value, list | tuple):
            return [s for e in value if (s := _get(e, path.sub)) is not None]
        return _flatten(_get(value, path.sub))

    def elements(self, path: AttrPath) -> list[Any]:
        host = self.resource if path.urn is None else _get(self.resource, path.urn)
        return _flatten(_get(host, path.attr))


class _ElementReader:
    """Reads ``path.sub`` off one element of a multi-valued complex attribute; the element itself
    for no ``path.sub`` (a simple attribute's value)."""

    __slots__ = ("element",)

    def __init__(self, element: Any) -> None:
        self.element = element

    def __call__(self, path: AttrPath) -> list[Any]:
        if path.sub is None:
            return _flatten(self.element)
        return _flatten(_get(self.element, path.sub))


def _eval(f: Filter, read: _ResourceReader | _ElementReader, rt: ResourceType) -> bool:
    if isinstance(f, Compare):
        return _compare(f, read(f.path), _definition(f.path, rt))
    if isinstance(f, And):
        return _eval(f.left, read, rt) and _eval(f.right, read, rt)
    if isinstance(f, Or):
        return _eval(f.left, read, rt) or _eval(f.right, read, rt)
    if isinstance(f, Not):
        return not _eval(f.expr, read, rt)
    if isinstance(f, Present):
        return any(is_present(v) for v in read(f.path))
    if isinstance(f, ValuePath):
        if not isinstance(read, _ResourceReader):
            return False  # a valuePath never nests inside another (RFC 7644 errata 4690)
        top = _definition(f.path, rt)
        return any(
            is_element(e, top) and _eval(f.filter, _ElementReader(e), rt) for e in read.elements(f.path)
        )
    raise TypeError(f"not a filter node: {f!r}")


def _definition(path: AttrPath, rt: ResourceType) -> Attribute | None:
    found = lookup_attribute(rt, path.urn, path.attr)
    if found is None:
        return None
    top = found[1]
    return top if path.sub is None else top.sub(path.sub)


def _compare(node: Compare, values: list[Any], attr: Attribute | None) -> bool:
    op, lit = node.op, node.value
    if lit is None:  # the parser allows null only with eq / ne
        present = any(is_present(v) for v in values)
        return present if op is CompareOp.NE else not present
    if not values:
        return op is CompareOp.NE
    test = _tester(op, lit, attr)
    return any(test(v) for v in values)


def _tester(op: CompareOp, lit: Literal, attr: Attribute | None) -> Callable[[Any], bool]:
    """A predicate for one resource value, specialised for the attribute's type."""
    t = attr.type if attr is not None else _literal_type(lit)
    if t is AttributeType.BOOLEAN:
        return _ordered(op, lit, _as_bool)
    if t in _NUMERIC and not isinstance(lit, str):
        return _ordered(op, lit, _as_number)
    if t is AttributeType.DATETIME:
        if op in _SUBSTRING:
            return lambda v: False
        instant = to_datetime(lit)
        if instant is not None:
            return _ordered(op, instant, to_datetime)
    case_exact = attr.case_exact if attr is not None else False
    norm: Callable[[str], str] = (lambda s: s) if case_exact else fold
    target = norm(str(lit)) if not isinstance(lit, bool) else ("true" if lit else "false")

    def as_text(v: Any) -> str | None:
        if isinstance(v, str):
            return norm(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return str(v)
        return None

    if op is CompareOp.CO:
        return lambda v: (s := as_text(v)) is not None and target in s
    if op is CompareOp.SW:
        return lambda v: (s := as_text(v)) is not None and s.startswith(target)
    if op is CompareOp.EW:
        return lambda v: (s := as_text(v)) is not None and s.endswith(target)
    return _ordered(op, target, as_text)


def _literal_type(lit: Literal) -> AttributeType:
    if isinstance(lit, bool):
        return AttributeType.BOOLEAN
    if isinstance(lit, int | float):
        return AttributeType.DECIMAL
    return AttributeType.STRING


def _ordered(op: CompareOp, target: Any, coerce: Callable[[Any], Any]) -> Callable[[Any], bool]:
    """eq/ne/gt/ge/lt/le of a coerced resource value against ``target``; an uncoercible value only
    satisfies ``ne``."""

    def test(v: Any) -> bool:
        c = coerce(v)
        if c is None:
            return op is CompareOp.NE
        try:
            if op is CompareOp.EQ:
                return bool(c == target)
            if op is CompareOp.NE:
                return bool(c != target)
            if op is CompareOp.GT:
                return bool(c > target)
            if op is CompareOp.GE:
                return bool(c >= target)
            if op is CompareOp.LT:
                return bool(c < target)
            if op is CompareOp.LE:
                return bool(c <= target)
        except TypeError:
            return op is CompareOp.NE
        return False  # co/sw/ew never reach here for these types (the parser refuses them)

    return test


def _as_bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):  # Entra quirk Q2: "True"/"False"
        return v.lower() == "true"
    return None


def _as_number(v: Any) -> int | float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return v
    if isinstance(v, str):
        return parse_number(v.strip())
    return None
