"""Matching a source object to a target object (entra-behaviour.md 2.4, 1.3 steps 1, 2 and 6).

Matching attributes are tried one at a time in precedence order, one attribute per query; the
first query with a result decides. Zero results for every query -> create; one -> matched
(the target id becomes the object connection's anchor); more than one -> DuplicateTargetEntries,
no action. An object with no value for any matching attribute cannot be matched: ImportSkipped.

    >>> decide([[], ["2819c223"]])
    Match(outcome=<MatchOutcome.MATCHED: 'Matched'>, target_id='2819c223', candidates=('2819c223',))
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provisor.engine.mapping.attributes import MappedValues
from provisor.engine.templates.model import AttributeMapping

__all__ = ["Match", "MatchOutcome", "MatchingImpossible", "decide", "filter_text", "matching_queries"]


class MatchingImpossible(Exception):
    """No matching attribute has a value (2.4): Entra logs ``ImportSkipped``."""

    reason = "ImportSkipped"


class MatchOutcome(enum.StrEnum):
    """What the match queries decided (1.3)."""

    CREATE = "Create"
    MATCHED = "Matched"
    DUPLICATE_TARGET_ENTRIES = "DuplicateTargetEntries"


@dataclass(frozen=True, slots=True)
class Match:
    """The decision; ``target_id`` is set when matched, ``candidates`` lists the ids found."""

    outcome: MatchOutcome
    target_id: str | None = None
    candidates: tuple[str, ...] = ()


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str | int | float):
        text = str(value)
        return text if text else None
    return None


def matching_queries(
    values: MappedValues | Mapping[str, Any], mappings: Sequence[AttributeMapping]
) -> list[tuple[str, str]]:
    """``(target path, value)`` per matching attribute, by precedence (2.4), skipping those
    without a (single, textual) value. Raises :class:`MatchingImpossible` when none is left."""
    flat = values.values if isinstance(values, MappedValues) else values
    matching = sorted(
        (m for m in mappings if m.matching_precedence is not None),
        key=lambda m: (m.matching_precedence, m.target),
    )
    queries = [(m.target, text) for m in matching if (text := _text(flat.get(m.target))) is not None]
    if not queries:
        names = ", ".join(m.target for m in matching) or "none configured"
        raise MatchingImpossible(f"no value for any matching attribute ({names})")
    return queries


def decide(results_per_query: Sequence[Sequence[str]]) -> Match:
    """The match decision from the ids each query returned, in query order (1.3 steps 2, 6).

    Stops at the first query with a result, so the caller may run queries lazily and pass only
    those it ran. Duplicate ids within one answer count once.
    """
    for ids in results_per_query:
        found = tuple(dict.fromkeys(ids))
        if len(found) == 1:
            return Match(MatchOutcome.MATCHED, found[0], found)
        if len(found) > 1:
            return Match(MatchOutcome.DUPLICATE_TARGET_ENTRIES, None, tuple(sorted(found)))
    return Match(MatchOutcome.CREATE)


def filter_text(attribute: str, value: str) -> str:
    """The SCIM filter of one match query: ``userName eq "alice@contoso.com"`` (1.3 step 1),
    with ``\\`` and ``"`` escaped (RFC 7644 3.4.2.2, JSON string rules). Boolean-looking values
    stay strings, as Entra sends them."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{attribute} eq "{escaped}"'
