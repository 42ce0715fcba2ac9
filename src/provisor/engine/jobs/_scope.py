"""The job file's ``scope`` section: assignments and scoping filters (entra-behaviour.md 2.2, 2.3).

```yaml
scope:
  mode: assigned                  # or: all
  assignments:
    - {group: Engineering, role: User}
    - {user: ada@example.com}     # role defaults to "Default Access"
  skip_default_access: true       # default: true for the clarizen-one template, else false
  filters:
    users:                        # outer list = OR of filters, inner list = AND of clauses
      - - {attribute: department, operator: EQUALS, value: Engineering}
        - {attribute: jobTitle, operator: IS NOT NULL}
    groups: []
```
"""

from __future__ import annotations

import difflib

import yaml

from provisor.engine.jobs._reader import Reader, Section, normalise, shown
from provisor.engine.jobs.model import DEFAULT_ACCESS_ROLE, Assignment, ScopeConfig, ScopeMode
from provisor.engine.scoping import (
    ScopingClause,
    ScopingError,
    ScopingFilter,
    ScopingFilters,
    ScopingOperator,
)

__all__ = ["read_scope"]

SCOPE_KEYS = ("mode", "assignments", "skip_default_access", "filters")
ASSIGNMENT_KEYS = ("user", "group", "role")
FILTER_KEYS = ("users", "groups")
CLAUSE_KEYS = ("attribute", "operator", "value")


def read_scope(reader: Reader, section: Section | None, *, template: str | None) -> ScopeConfig:
    """The scope; ``skip_default_access`` defaults to true for the ``clarizen-one`` template,
    whose tutorial still excludes Default Access users (entra-behaviour.md 2.2 conflict note)."""
    default_skip = template == "clarizen-one"
    if section is None:
        return ScopeConfig(skip_default_access=default_skip)
    mode = ScopeMode(section.choice("mode", [m.value for m in ScopeMode], ScopeMode.ASSIGNED.value))
    if mode is ScopeMode.ALL and section.has("assignments"):
        section.fail(
            "assignments",
            "scope.assignments only applies when scope.mode is assigned (remove them for mode: all)",
        )
    assignments = tuple(
        _assignment(reader, node, f"scope.assignments[{i}]")
        for i, node in enumerate(section.items("assignments"))
    )
    filters = section.section("filters", FILTER_KEYS)
    return ScopeConfig(
        mode=mode,
        assignments=assignments,
        skip_default_access=section.boolean("skip_default_access", default_skip),
        user_filters=_filters(reader, filters, "users"),
        group_filters=_filters(reader, filters, "groups"),
    )


def _assignment(reader: Reader, node: yaml.Node, path: str) -> Assignment:
    entry = reader.section(node, path, ASSIGNMENT_KEYS)
    user, group = entry.string("user"), entry.string("group")
    if (user is None) == (group is None):
        reader.fail(node, f"{path} needs exactly one of user or group")
    role = entry.string("role") or DEFAULT_ACCESS_ROLE
    return Assignment(
        role=role.strip(), user=user.strip() if user else None, group=group.strip() if group else None
    )


def _filters(reader: Reader, section: Section | None, key: str) -> ScopingFilters:
    if section is None:
        return ScopingFilters()
    found: list[ScopingFilter] = []
    for i, node in enumerate(section.items(key)):
        path = f"{section.name(key)}[{i}]"
        if not isinstance(node, yaml.SequenceNode):
            reader.fail(node, f"{path} must be a list of clauses (one filter: its clauses are ANDed)")
        clauses = tuple(_clause(reader, c, f"{path}[{j}]") for j, c in enumerate(node.value))
        if not clauses:
            reader.fail(node, f"{path} must have at least one clause")
        found.append(ScopingFilter(clauses))
    return ScopingFilters(tuple(found))


def _clause(reader: Reader, node: yaml.Node, path: str) -> ScopingClause:
    entry = reader.section(node, path, CLAUSE_KEYS)
    attribute = entry.string("attribute", required=True) or ""
    operator = _operator(reader, entry.require("operator"), f"{path}.operator")
    value_node = entry.value_node("value")
    value = None if value_node is None else reader.text(value_node, f"{path}.value")
    try:
        return ScopingClause(attribute.strip(), operator, value)
    except ScopingError as exc:
        at = entry.value_node(exc.part or "") or entry.value_node("operator") or node
        reader.fail(at, f"{path}: {exc}")


def _operator(reader: Reader, node: yaml.Node, path: str) -> ScopingOperator:
    text = reader.text(node, path) or ""
    try:
        return ScopingOperator.parse(text)
    except ScopingError:
        names = {normalise(op.value): op.value for op in ScopingOperator}
        close = difflib.get_close_matches(normalise(text), list(names), n=1, cutoff=0.6)
        hint = f"; did you mean {names[close[0]]!r}?" if close else ""
        valid = ", ".join(op.value for op in ScopingOperator)
        reader.fail(node, f"{path}: unknown scoping operator {shown(node)}{hint} (expected one of {valid})")
