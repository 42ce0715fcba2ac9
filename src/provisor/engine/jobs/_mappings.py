"""The job file's ``mappings`` section: attribute mapping overrides (entra-behaviour.md 3.1, 2.4).

```yaml
mappings:
  - target: userName                          # type inferred: Direct (from `source`)
    source: userPrincipalName
    matching_precedence: 1
  - target: title
    constant: Engineer                        # Constant
  - target: displayName
    expression: Join(" ", [givenName], [surname])
    apply: OnlyDuringCreation
  - target: externalId
    type: None                                # leave the target untouched; write the default if empty
    default_value: unknown
  - target: displayName
    object: group
    source: displayName
```

Checks made here: exactly one of source/constant/expression matching the type; the target
primary key ``id`` is never mapped (2.15); expressions are at most 10,000 characters (2.15);
``SelectUniqueValue`` is not combined with a matching precedence (2.4); matching precedences and
target attributes are unique per object type. The expression text itself is compiled by the
mapping engine (``provisor.engine.mapping``), not here.
"""

from __future__ import annotations

import re

import yaml

from provisor.engine.jobs._reader import Reader
from provisor.engine.jobs.model import ApplyMapping, MappingConfig, MappingObject, MappingType

__all__ = ["read_mappings"]

MAPPING_KEYS = (
    "target",
    "type",
    "object",
    "source",
    "constant",
    "expression",
    "default_value",
    "apply",
    "matching_precedence",
)
MAX_EXPRESSION_LENGTH = 10_000
_VALUE_KEYS = {
    MappingType.DIRECT: "source",
    MappingType.CONSTANT: "constant",
    MappingType.EXPRESSION: "expression",
}
_SELECT_UNIQUE_VALUE = re.compile(r"\bSelectUniqueValue\s*\(", re.IGNORECASE)


def read_mappings(reader: Reader, nodes: list[yaml.Node]) -> tuple[MappingConfig, ...]:
    """Every override, in file order, checked individually and against each other."""
    mappings: list[MappingConfig] = []
    targets: dict[tuple[MappingObject, str], int] = {}
    precedences: dict[tuple[MappingObject, int], int] = {}
    for i, node in enumerate(nodes):
        mapping = _mapping(reader, node, f"mappings[{i}]")
        line = node.start_mark.line + 1
        first = targets.setdefault((mapping.object, mapping.target.casefold()), line)
        if first != line:
            reader.fail(
                node,
                f"mappings[{i}] maps {mapping.object.value} attribute {mapping.target!r} again "
                f"(first at line {first})",
            )
        if mapping.matching_precedence is not None:
            key = (mapping.object, mapping.matching_precedence)
            first = precedences.setdefault(key, line)
            if first != line:
                reader.fail(
                    node,
                    f"mappings[{i}] repeats {mapping.object.value} matching_precedence "
                    f"{mapping.matching_precedence} (first at line {first})",
                )
        mappings.append(mapping)
    return tuple(mappings)


def _mapping(reader: Reader, node: yaml.Node, path: str) -> MappingConfig:
    entry = reader.section(node, path, MAPPING_KEYS)
    target = (entry.string("target", required=True) or "").strip()
    if target.casefold() == "id":
        entry.fail(
            "target", f"{path}.target: the target primary key 'id' cannot be mapped (entra-behaviour.md 2.15)"
        )
    present = [key for key in _VALUE_KEYS.values() if entry.has(key)]
    declared = entry.choice("type", [t.value for t in MappingType])
    if declared is None:
        if len(present) != 1:
            reader.fail(node, f"{path} needs exactly one of source, constant or expression (or type: None)")
        kind = next(t for t, key in _VALUE_KEYS.items() if key == present[0])
    else:
        kind = MappingType(declared)
        wanted = _VALUE_KEYS.get(kind)
        if wanted is not None and wanted not in present:
            reader.fail(node, f"{path} has type {kind.value} and needs {wanted}")
        extra = [key for key in present if key != wanted]
        if extra:
            entry.fail(extra[0], f"{path}.{extra[0]} does not apply to a mapping of type {kind.value}")
    expression = entry.string("expression")
    if expression is not None and len(expression) > MAX_EXPRESSION_LENGTH:
        entry.fail(
            "expression",
            f"{path}.expression is {len(expression)} characters; the limit is {MAX_EXPRESSION_LENGTH} "
            "(entra-behaviour.md 2.15)",
        )
    precedence_node = entry.value_node("matching_precedence")
    precedence = entry.integer("matching_precedence", 0, minimum=1) if precedence_node is not None else None
    if precedence is not None and expression is not None and _SELECT_UNIQUE_VALUE.search(expression):
        entry.fail(
            "matching_precedence",
            f"{path}: SelectUniqueValue cannot be used on a matching attribute (entra-behaviour.md 2.4)",
        )
    source = entry.string("source")
    return MappingConfig(
        target=target,
        type=kind,
        object=MappingObject(
            entry.choice("object", [o.value for o in MappingObject], MappingObject.USER.value)
        ),
        source=source.strip() if source is not None else None,
        constant=entry.string("constant", allow_empty=True),
        expression=expression,
        default_value=entry.string("default_value", allow_empty=True),
        apply=ApplyMapping(entry.choice("apply", [a.value for a in ApplyMapping], ApplyMapping.ALWAYS.value)),
        matching_precedence=precedence,
    )
