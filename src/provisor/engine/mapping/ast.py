"""The frozen AST of mapping expressions (entra-behaviour.md section 3.2) and its printer.

Every node carries the 0-based ``position`` of its first character in the source text; positions
do not take part in equality, so ``parse(to_source(tree)) == tree`` although the printed text is
laid out canonically.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "AttributeRef",
    "Call",
    "CompareOp",
    "Comparison",
    "Constant",
    "Expr",
    "NumberLiteral",
    "Omitted",
    "Operand",
    "StringLiteral",
    "to_source",
]


class CompareOp(enum.StrEnum):
    """The comparison operators allowed in IIF conditions (section 3.2); no AND/OR."""

    EQ = "="
    NE = "<>"
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="


@dataclass(frozen=True, slots=True)
class StringLiteral:
    """``"text"``: ``value`` is the unescaped text (``\\"`` and ``\\\\`` escapes, section 3.2)."""

    value: str
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class NumberLiteral:
    """A whole number: decimal (``-7``) or VBA hex (``&HF``, section 3.3 BitAnd example)."""

    value: int
    hex: bool = False
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class AttributeRef:
    """``[name]``: a source attribute, looked up case-insensitively at evaluation."""

    name: str
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Constant:
    """A bare VBA constant such as ``vbTextCompare`` (InStr's compareType, section 3.3)."""

    name: str
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Omitted:
    """An empty argument position, e.g. the gaps in ``Replace([mail], "@contoso.com", , , "", , )``."""

    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Call:
    """``Name(arg1, ...)``: a function call (names are case-sensitive, section 3.2)."""

    name: str
    args: tuple[Expr, ...]
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Comparison:
    """``left op right``: an IIF-style condition (section 3.2); evaluates to a boolean."""

    left: Operand
    op: CompareOp
    right: Operand
    position: int = field(default=0, compare=False)


#: What may stand on either side of a comparison.
Operand = StringLiteral | NumberLiteral | AttributeRef | Constant | Call
#: Any node.
Expr = Operand | Omitted | Comparison


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_source(node: Expr) -> str:
    """Print ``node`` back as expression text in canonical layout (``", "`` between arguments)."""
    if isinstance(node, StringLiteral):
        return _quote(node.value)
    if isinstance(node, NumberLiteral):
        return f"&H{node.value:X}" if node.hex else str(node.value)
    if isinstance(node, AttributeRef):
        return f"[{node.name}]"
    if isinstance(node, Constant):
        return node.name
    if isinstance(node, Omitted):
        return ""
    if isinstance(node, Comparison):
        return f"{to_source(node.left)} {node.op.value} {to_source(node.right)}"
    parts = [to_source(arg) for arg in node.args]
    return f"{node.name}({', '.join(parts)})"
