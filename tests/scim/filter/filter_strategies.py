"""Test helpers for the filter tests: an AST -> text renderer and hypothesis strategies.

Not a test module (no ``test_`` prefix); the filter tests import it from their own directory.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from hypothesis import strategies as st

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
from provisor.scim.schema.model import ENTERPRISE_USER, USER, ResourceType, Schema, default_registry

USER_RT = default_registry().resource_type("User")
GROUP_RT = default_registry().resource_type("Group")
assert USER_RT is not None and GROUP_RT is not None

Case = Callable[[str], str]


def render_literal(value: Literal) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value)


def render_path(path: AttrPath, case: Case = str, *, inner: bool = False, core_urn: bool = False) -> str:
    if inner:  # inside attr[...]: a sub-attribute, or "value" for a simple attribute's values
        return case(path.sub or "value")
    base = case(path.attr)
    if path.urn is not None:
        base = f"{path.urn}:{base}"
    elif core_urn:
        base = f"{USER}:{base}"
    return f"{base}.{case(path.sub)}" if path.sub else base


def render(
    f: Filter, *, minimal: bool = False, case: Case = str, inner: bool = False, core_urn: bool = False
) -> str:
    """Render ``f`` as filter text. ``minimal`` uses the fewest parentheses the precedence allows
    (not > and > or); otherwise every nested logical expression is parenthesised, which keeps the
    exact tree shape through a re-parse."""

    def go(node: Filter, inside: bool) -> str:
        if isinstance(node, Compare):
            return (
                f"{render_path(node.path, case, inner=inside, core_urn=core_urn)} {case(node.op.value)} "
                + (render_literal(node.value))
            )
        if isinstance(node, Present):
            return f"{render_path(node.path, case, inner=inside, core_urn=core_urn)} {case('pr')}"
        if isinstance(node, Not):
            return f"{case('not')} ({go(node.expr, inside)})"
        if isinstance(node, ValuePath):
            return f"{render_path(node.path, case, core_urn=core_urn)}[{go(node.filter, True)}]"
        if isinstance(node, And | Or):
            word = case("and" if isinstance(node, And) else "or")
            parts = []
            for child in (node.left, node.right):
                text = go(child, inside)
                needs = isinstance(child, And | Or) and (
                    not minimal or (isinstance(node, And) and isinstance(child, Or))
                )
                parts.append(f"({text})" if needs else text)
            return f" {word} ".join(parts)
        raise TypeError(node)

    return go(f, inner)


def flatten(f: Filter) -> object:
    """A shape-insensitive normal form: same-operator chains become tuples (and/or are associative)."""
    if isinstance(f, And | Or):
        kind = type(f)
        terms: list[object] = []
        stack: list[Filter] = [f]
        while stack:
            node = stack.pop()
            if type(node) is kind:
                assert isinstance(node, And | Or)
                stack.extend((node.right, node.left))
            else:
                terms.append(flatten(node))
        return (kind.__name__, tuple(terms))
    if isinstance(f, Not):
        return ("Not", flatten(f.expr))
    if isinstance(f, ValuePath):
        return ("ValuePath", f.path, flatten(f.filter))
    return f


# -- strategies ------------------------------------------------------------------------------------

ORDER_OPS = [CompareOp.GT, CompareOp.GE, CompareOp.LT, CompareOp.LE]
ALL_OPS = list(CompareOp)

#: Text a filter literal may hold: no lone surrogate, no U+0000 (the parser refuses both).
safe_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12
)
datetimes = st.datetimes().map(lambda d: d.isoformat(timespec="seconds") + "Z")

#: (path, type) of single-valued string attributes of User
STRING_PATHS = [
    AttrPath(None, "userName"),
    AttrPath(None, "displayName"),
    AttrPath(None, "title"),
    AttrPath(None, "externalId"),
    AttrPath(None, "id"),
    AttrPath(None, "name", "familyName"),
    AttrPath(None, "name", "givenName"),
    AttrPath(ENTERPRISE_USER, "department"),
    AttrPath(ENTERPRISE_USER, "manager", "value"),
    AttrPath(None, "emails", "value"),
    AttrPath(None, "emails", "type"),
    AttrPath(None, "phoneNumbers", "value"),
]
BOOL_PATHS = [AttrPath(None, "active"), AttrPath(None, "emails", "primary")]
DATE_PATHS = [AttrPath(None, "meta", "created"), AttrPath(None, "meta", "lastModified")]
PRESENT_PATHS = [*STRING_PATHS, *BOOL_PATHS, *DATE_PATHS, AttrPath(None, "emails"), AttrPath(None, "name")]


def compare_for(paths: list[AttrPath], text: st.SearchStrategy[str]) -> st.SearchStrategy[Filter]:
    string_cmp = st.builds(Compare, st.sampled_from(paths), st.sampled_from(ALL_OPS), text)
    null_cmp = st.builds(
        Compare, st.sampled_from(paths), st.sampled_from([CompareOp.EQ, CompareOp.NE]), st.none()
    )
    return string_cmp | null_cmp


def atoms(text: st.SearchStrategy[str] = safe_text) -> st.SearchStrategy[Filter]:
    return st.one_of(
        compare_for(STRING_PATHS, text),
        st.builds(
            Compare,
            st.sampled_from(BOOL_PATHS),
            st.sampled_from([CompareOp.EQ, CompareOp.NE]),
            st.booleans() | st.none(),
        ),
        st.builds(
            Compare,
            st.sampled_from(DATE_PATHS),
            st.sampled_from([CompareOp.EQ, CompareOp.NE, *ORDER_OPS]),
            datetimes,
        ),
        st.builds(Present, st.sampled_from(PRESENT_PATHS)),
    )


def email_inner(text: st.SearchStrategy[str]) -> st.SearchStrategy[Filter]:
    sub = st.sampled_from(["value", "type", "display"]).map(lambda s: AttrPath(None, "emails", s))
    leaf = st.one_of(
        st.builds(Compare, sub, st.sampled_from(ALL_OPS), text),
        st.builds(
            Compare,
            st.just(AttrPath(None, "emails", "primary")),
            st.sampled_from([CompareOp.EQ, CompareOp.NE]),
            st.booleans(),
        ),
        st.builds(Present, sub),
    )
    return st.recursive(leaf, logical, max_leaves=4)


def logical(children: st.SearchStrategy[Filter]) -> st.SearchStrategy[Filter]:
    return st.one_of(
        st.builds(And, children, children), st.builds(Or, children, children), st.builds(Not, children)
    )


def filters(text: st.SearchStrategy[str] = safe_text, max_leaves: int = 10) -> st.SearchStrategy[Filter]:
    """Canonical User filter ASTs (what the parser produces), values drawn from ``text``."""
    value_path = st.builds(ValuePath, st.just(AttrPath(None, "emails")), email_inner(text))
    return st.recursive(atoms(text) | value_path, logical, max_leaves=max_leaves)


CASES: list[Case] = [str, str.upper, str.swapcase, lambda s: s[:1].upper() + s[1:]]


def _device_rt() -> ResourceType:
    """A made-up resource type with the attribute types User and Group lack (integer, decimal)."""
    schema = Schema.from_json(
        {
            "id": "urn:example:params:scim:schemas:core:2.0:Device",
            "name": "Device",
            "attributes": [
                {"name": "serial", "type": "string", "caseExact": True},
                {"name": "label", "type": "string"},
                {"name": "cores", "type": "integer"},
                {"name": "weight", "type": "decimal"},
                {"name": "ports", "type": "integer", "multiValued": True},
                {"name": "tags", "type": "string", "multiValued": True},
                {"name": "seen", "type": "dateTime", "multiValued": True},
                {
                    "name": "parts",
                    "type": "complex",
                    "multiValued": True,
                    "subAttributes": [
                        {"name": "value", "type": "string", "caseExact": True},
                        {"name": "count", "type": "integer"},
                        {"name": "spare", "type": "boolean"},
                    ],
                },
            ],
        }
    )
    return ResourceType("Device", "/Devices", "Device", schema)


DEVICE_RT = _device_rt()
