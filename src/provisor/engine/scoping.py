"""Attribute scoping filters (entra-behaviour.md 2.3): which source objects a job provisions.

A :class:`ScopingFilter` is a list of clauses combined with **AND**; the filters of one object
mapping (:class:`ScopingFilters`) are combined with **OR**; no filters means every object is in
scope. Each object is evaluated on its own. Pure logic: data in, :class:`ScopeResult` out.

Semantics decided here, beyond the operator table of 2.3:

* A clause on a null or empty value (missing attribute, ``None`` or ``""``) is false, for every
  operator except ``IS NULL`` (true) and ``IS NOT NULL`` (false). So ``NOT EQUALS``, ``!&`` and
  ``NOT REGEX MATCH`` are false on null values too (2.3 "Limits").
* Multi-valued attributes are not supported as scoping attributes (2.3 "Limits"): a clause whose
  attribute value is a list (or an object) is false for every operator, ``IS NULL`` and
  ``IS NOT NULL`` included.
* Attribute names are matched case-insensitively against the source object's Entra attribute
  names; an exact-case key wins when both exist.
* String operators compare ordinally and case-sensitively, like .NET's ``String.Contains``,
  ``EndsWith`` and ``==``. ``&`` is true when the attribute value occurs inside the clause string
  (``department & "Sales,Marketing"`` is true for ``Sales``). Booleans compare as ``"True"`` /
  ``"False"`` (the strings Entra shows, 2.12) and integers as their decimal text.
* ``Greater_Than`` / ``Greater_Than_OR_EQUALS`` compare integers: the clause value must be an
  integer (otherwise a :class:`ScopingError` when the filter is built); a source value that is
  not an integer (an ``int``, or a string of ASCII digits with an optional sign) makes the clause
  false.
* ``REGEX MATCH`` searches (Python :func:`re.search`, like .NET ``Regex.IsMatch``): the pattern
  may match anywhere unless anchored with ``^``/``$``. So the doc's ``([1-9][0-9])`` matches
  ``"42"`` and also ``"1234"``. Patterns use Python's ``re`` dialect; an invalid pattern is a
  :class:`ScopingError` when the filter is built, not at evaluation.
* ``IS TRUE`` / ``IS FALSE`` accept real booleans and the strings ``"true"``/``"false"`` in any
  case; anything else is false for both.
* ``appRoleAssignments``, ``userType``, ``manager`` and ``members`` are rejected as scoping
  attributes (2.3 "Limits"); date attributes cannot be recognised by name and are not checked.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "UNSUPPORTED_ATTRIBUTES",
    "FilterFailure",
    "ScopeResult",
    "ScopingClause",
    "ScopingError",
    "ScopingFilter",
    "ScopingFilters",
    "ScopingOperator",
    "evaluate",
]

#: Attributes Entra refuses as scoping attributes (entra-behaviour.md 2.3 "Limits"), casefolded.
UNSUPPORTED_ATTRIBUTES = frozenset({"approleassignments", "usertype", "manager", "members"})

_INTEGER = re.compile(r"[+-]?[0-9]+")


class ScopingError(ValueError):
    """A scoping filter that cannot be built: unknown operator, missing or invalid value, invalid
    regular expression, unsupported attribute. Raised when the filter is built, never while
    evaluating. Messages never quote the clause value (it may come from the environment).
    ``part`` names the clause part at fault (``"attribute"``, ``"operator"`` or ``"value"``) so a
    loader can point at the right line."""

    def __init__(self, message: str, part: str | None = None) -> None:
        super().__init__(message)
        self.part = part


class ScopingOperator(enum.Enum):
    """The 14 scoping operators; each value is the UI name as entra-behaviour.md 2.3 writes it."""

    CONTAINED_IN = "&"
    NOT_CONTAINED_IN = "!&"
    ENDS_WITH = "ENDS_WITH"
    EQUALS = "EQUALS"
    NOT_EQUALS = "NOT EQUALS"
    GREATER_THAN = "Greater_Than"
    GREATER_THAN_OR_EQUALS = "Greater_Than_OR_EQUALS"
    INCLUDES = "Includes"
    IS_TRUE = "IS TRUE"
    IS_FALSE = "IS FALSE"
    IS_NULL = "IS NULL"
    IS_NOT_NULL = "IS NOT NULL"
    REGEX_MATCH = "REGEX MATCH"
    NOT_REGEX_MATCH = "NOT REGEX MATCH"

    @property
    def is_unary(self) -> bool:
        """True for the operators that take no value (Graph's "Unary" scope operator type)."""
        return self in _UNARY

    @classmethod
    def parse(cls, name: str) -> ScopingOperator:
        """The operator named ``name``: case-insensitive, and blind to spaces, underscores and
        hyphens, so ``"NOT EQUALS"``, ``"not_equals"`` and ``"NotEquals"`` are one operator.

        :raises ScopingError: for an unknown name, listing the valid ones.
        """
        found = _BY_KEY.get(_operator_key(name))
        if found is None:
            names = ", ".join(op.value for op in cls)
            raise ScopingError(f"unknown scoping operator {name!r}; expected one of {names}", "operator")
        return found


def _operator_key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).casefold()


_BY_KEY = {_operator_key(op.value): op for op in ScopingOperator}
_UNARY = frozenset(
    {
        ScopingOperator.IS_TRUE,
        ScopingOperator.IS_FALSE,
        ScopingOperator.IS_NULL,
        ScopingOperator.IS_NOT_NULL,
    }
)
_INTEGER_OPERATORS = frozenset({ScopingOperator.GREATER_THAN, ScopingOperator.GREATER_THAN_OR_EQUALS})
_REGEX_OPERATORS = frozenset({ScopingOperator.REGEX_MATCH, ScopingOperator.NOT_REGEX_MATCH})


@dataclass(frozen=True, slots=True)
class ScopingClause:
    """One condition: ``attribute operator value`` (Graph ``filterClause{sourceOperandName,
    operatorName, targetOperand}``, entra-behaviour.md 2.3). ``value`` is ``None`` exactly for the
    unary operators (IS TRUE, IS FALSE, IS NULL, IS NOT NULL).

    :raises ScopingError: on a missing or surplus value, a non-integer value for the integer
        operators, an invalid regular expression, or an unsupported scoping attribute.
    """

    attribute: str
    operator: ScopingOperator
    value: str | None = None
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        op = self.operator
        if not self.attribute.strip():
            raise ScopingError("a scoping clause needs an attribute name", "attribute")
        if self.attribute.casefold() in UNSUPPORTED_ATTRIBUTES:
            raise ScopingError(
                f"{self.attribute!r} cannot be used as a scoping attribute (entra-behaviour.md 2.3)",
                "attribute",
            )
        if op.is_unary:
            if self.value is not None:
                raise ScopingError(f"{op.value} takes no value", "value")
            return
        if self.value is None:
            raise ScopingError(f"{op.value} needs a value", "value")
        if op in _INTEGER_OPERATORS and _INTEGER.fullmatch(self.value.strip()) is None:
            raise ScopingError(f"{op.value} needs an integer value", "value")
        if op in _REGEX_OPERATORS:
            try:
                pattern = re.compile(self.value)
            except re.error as exc:
                raise ScopingError(f"invalid regular expression for {op.value}: {exc}", "value") from None
            object.__setattr__(self, "_pattern", pattern)

    def __str__(self) -> str:
        if self.value is None:
            return f"{self.attribute} {self.operator.value}"
        return f"{self.attribute} {self.operator.value} {self.value!r}"

    def matches(self, source: Mapping[str, Any]) -> bool:
        """Whether ``source`` (an object's Entra attributes by name) satisfies this clause."""
        return _test(self, _lookup(source, self.attribute))


@dataclass(frozen=True, slots=True)
class ScopingFilter:
    """Clauses combined with AND (entra-behaviour.md 2.3); at least one clause."""

    clauses: tuple[ScopingClause, ...]

    def __post_init__(self) -> None:
        if not self.clauses:
            raise ScopingError("a scoping filter needs at least one clause")


@dataclass(frozen=True, slots=True)
class ScopingFilters:
    """Filters combined with OR (entra-behaviour.md 2.3); no filters = every object in scope."""

    filters: tuple[ScopingFilter, ...] = ()


@dataclass(frozen=True, slots=True)
class FilterFailure:
    """A filter that rejected the object: its 0-based position and the clauses that were false."""

    index: int
    failed_clauses: tuple[ScopingClause, ...]


@dataclass(frozen=True, slots=True)
class ScopeResult:
    """The outcome of the scoping step (entra-behaviour.md 2.11/2.12 "Scope evaluation").

    ``matched_filter`` is the first filter that accepted the object (``None`` when there are no
    filters or none accepted); ``failures`` lists every filter that rejected it (empty when in
    scope), each with all of its false clauses, for the provisioning log.
    """

    in_scope: bool
    matched_filter: int | None = None
    failures: tuple[FilterFailure, ...] = ()

    def explain(self) -> str:
        """A one-line reason for the provisioning log's scoping step."""
        if self.in_scope:
            if self.matched_filter is None:
                return "In scope: no scoping filters"
            return f"In scope: scoping filter {self.matched_filter + 1} matched"
        parts = [
            f"filter {f.index + 1} failed on " + " and ".join(str(c) for c in f.failed_clauses)
            for f in self.failures
        ]
        return "Out of scope: " + "; ".join(parts)


def evaluate(filters: ScopingFilters, source: Mapping[str, Any]) -> ScopeResult:
    """Evaluate ``filters`` on one source object (entra-behaviour.md 2.3): in scope when any
    filter has all its clauses true, or when there are no filters."""
    if not filters.filters:
        return ScopeResult(in_scope=True)
    failures: list[FilterFailure] = []
    for index, scoping_filter in enumerate(filters.filters):
        failed = tuple(c for c in scoping_filter.clauses if not c.matches(source))
        if not failed:
            return ScopeResult(in_scope=True, matched_filter=index)
        failures.append(FilterFailure(index, failed))
    return ScopeResult(in_scope=False, failures=tuple(failures))


def _lookup(source: Mapping[str, Any], attribute: str) -> Any:
    if attribute in source:
        return source[attribute]
    folded = attribute.casefold()
    for key, value in source.items():
        if isinstance(key, str) and key.casefold() == folded:
            return value
    return None


def _as_text(value: Any) -> str | None:
    """The single value as the string the operators compare, or ``None`` if unsupported."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    return None


def _as_int(text: str) -> int | None:
    return int(text) if _INTEGER.fullmatch(text) else None


def _test(clause: ScopingClause, value: Any) -> bool:
    op = clause.operator
    if isinstance(value, list | tuple | dict | set):
        return False  # multi-valued and complex attributes are unsupported (2.3 "Limits")
    is_null = value is None or value == ""
    if op is ScopingOperator.IS_NULL:
        return is_null
    if op is ScopingOperator.IS_NOT_NULL or is_null:
        return not is_null
    if op is ScopingOperator.IS_TRUE or op is ScopingOperator.IS_FALSE:
        wanted = op is ScopingOperator.IS_TRUE
        if isinstance(value, bool):
            return value is wanted
        return isinstance(value, str) and value.casefold() == ("true" if wanted else "false")
    text = _as_text(value)
    expected = clause.value
    if text is None or expected is None:
        return False
    return _compare(op, text, expected, clause._pattern)


def _compare(op: ScopingOperator, text: str, expected: str, pattern: re.Pattern[str] | None) -> bool:
    """A binary operator on a non-null single value (entra-behaviour.md 2.3 operator table)."""
    if op is ScopingOperator.CONTAINED_IN:
        return text in expected
    if op is ScopingOperator.NOT_CONTAINED_IN:
        return text not in expected
    if op is ScopingOperator.ENDS_WITH:
        return text.endswith(expected)
    if op is ScopingOperator.EQUALS:
        return text == expected
    if op is ScopingOperator.NOT_EQUALS:
        return text != expected
    if op is ScopingOperator.INCLUDES:
        return expected in text
    if op in _INTEGER_OPERATORS:
        actual = _as_int(text.strip())
        if actual is None:
            return False
        bound = int(expected.strip())
        return actual > bound if op is ScopingOperator.GREATER_THAN else actual >= bound
    assert pattern is not None  # built in ScopingClause.__post_init__ for both regex operators
    found = pattern.search(text) is not None
    return found if op is ScopingOperator.REGEX_MATCH else not found
