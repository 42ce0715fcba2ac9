"""The frozen filter and path AST (RFC 7644 sections 3.4.2.2 and 3.5.2).

Names in a parsed AST are canonical: resolved case-insensitively against the resource type's
schemas, so ``USERNAME`` becomes ``userName`` and ``urn:...:enterprise:2.0:User:Department``
becomes ``AttrPath(urn=ENTERPRISE_USER, attr="department")``. Consumers never see raw spelling.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: A comparison value: a JSON literal (RFC 7644 section 3.4.2.2 ``compValue``).
Literal = str | bool | int | float | None


class CompareOp(enum.StrEnum):
    EQ = "eq"
    NE = "ne"
    CO = "co"
    SW = "sw"
    EW = "ew"
    GT = "gt"
    GE = "ge"
    LT = "lt"
    LE = "le"


@dataclass(frozen=True, slots=True)
class AttrPath:
    """``[urn:]attr[.sub]``: ``urn`` is the extension schema (None for core and common attributes)."""

    urn: str | None
    attr: str
    sub: str | None = None

    def __str__(self) -> str:
        base = f"{self.urn}:{self.attr}" if self.urn else self.attr
        return f"{base}.{self.sub}" if self.sub else base


@dataclass(frozen=True, slots=True)
class Compare:
    """``path op value``. Inside a :class:`ValuePath` the path carries the parent attribute."""

    path: AttrPath
    op: CompareOp
    value: Literal


@dataclass(frozen=True, slots=True)
class Present:
    """``path pr``."""

    path: AttrPath


@dataclass(frozen=True, slots=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True, slots=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True, slots=True)
class Not:
    expr: Filter


@dataclass(frozen=True, slots=True)
class ValuePath:
    """``attr[filter]``: true when one value of the multi-valued ``path`` satisfies ``filter``.

    ``path.sub`` is None; every path inside ``filter`` has the same ``urn``/``attr`` and names the
    sub-attribute in ``sub`` (RFC 7644 section 3.4.2.2 ``valuePath``).
    """

    path: AttrPath
    filter: Filter


Filter = Compare | Present | And | Or | Not | ValuePath


@dataclass(frozen=True, slots=True)
class PatchPath:
    """A PATCH ``path`` (RFC 7644 section 3.5.2): ``attr[.sub]`` or ``attr[filter][.sub]``.

    ``path.sub`` is the sub-attribute (after the filter when there is one); ``filter`` selects
    values of a multi-valued attribute.
    """

    path: AttrPath
    filter: Filter | None = None
