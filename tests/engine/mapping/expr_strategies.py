"""Hypothesis strategies for mapping expressions (entra-behaviour.md section 3.2)."""

from __future__ import annotations

from hypothesis import strategies as st

from provisor.engine.mapping import (
    CONSTANTS,
    FUNCTIONS,
    AttributeRef,
    Call,
    CompareOp,
    Comparison,
    Constant,
    Expr,
    NumberLiteral,
    Omitted,
    StringLiteral,
)
from provisor.engine.mapping.ast import Operand

ATTRIBUTE_NAMES = [
    "mail",
    "MAIL",
    "givenName",
    "surname",
    "manager",
    "proxyAddresses",
    "accountEnabled",
    "hireDate",
    "appRoleAssignments",
    "IsSoftDeleted",
    "employeeId",
    "missing",
    "extension_1_x",
]
#: A source object with every kind of value, for evaluation properties.
SOURCE = {
    "mail": "Zoë.Ström@contoso.com",
    "givenName": "Zoë",
    "surname": "",
    "manager": {"value": "m-1"},
    "proxyAddresses": ["SMTP:a@x.com", "smtp:b@x.com", "SMTP:a@x.com"],
    "accountEnabled": True,
    "hireDate": "2021-08-18T09:30:00+08:00",
    "appRoleAssignments": [
        {"id": "1", "value": "Admin", "displayName": "Administrator"},
        {"id": "2", "value": "User"},
    ],
    "IsSoftDeleted": False,
    "employeeId": 42,
    "extension_1_x": None,
}

_texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    [
        "",
        "  ",
        "True",
        "False",
        "d",
        "m",
        "yyyy",
        "2012-03-16-07:00",
        "yyyy-MM-dd",
        "vbTextCompare",
        ",",
        " '-",
        "tr-TR",
        "(\\d+)",
        "${1}",
        "@contoso.com",
        "12",
        "&HF",
    ]
)
strings = st.builds(StringLiteral, _texts)
numbers = st.builds(NumberLiteral, st.integers(-(10**12), 10**12)) | st.builds(
    NumberLiteral, st.integers(0, 2**40), st.just(True)
)
attributes = st.builds(AttributeRef, st.sampled_from(ATTRIBUTE_NAMES))
constants = st.builds(Constant, st.sampled_from(sorted(CONSTANTS)))
_NESTABLE = sorted(name for name, spec in FUNCTIONS.items() if not spec.top_level_only)


@st.composite
def _call(draw: st.DrawFn, children: st.SearchStrategy[Operand]) -> Call:
    spec = FUNCTIONS[draw(st.sampled_from(_NESTABLE))]
    upper = spec.min_args + 3 if spec.max_args is None else spec.max_args
    count = draw(st.integers(spec.min_args, upper))
    if spec.check_arity is not None and spec.check_arity(count) is not None:
        count += 1
    comparison = st.builds(Comparison, children, st.sampled_from(list(CompareOp)), children)
    slot: st.SearchStrategy[Expr] = children | comparison
    if count > 1:
        slot = slot | st.just(Omitted())
    return Call(spec.name, tuple(draw(slot) for _ in range(count)))


operands: st.SearchStrategy[Operand] = st.recursive(
    strings | numbers | attributes | constants, lambda children: _call(children), max_leaves=12
)
#: Any expression the parser accepts at the top.
expressions: st.SearchStrategy[Expr] = operands | st.builds(
    Comparison, operands, st.sampled_from(list(CompareOp)), operands
)
