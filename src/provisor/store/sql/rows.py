"""Derived columns and rows: what ``resources``/``emails`` hold besides the JSON document."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from provisor.store.base import GroupRef, Member, StoredResource
from provisor.store.sql.values import fold, from_micros, loads


def _text(value: Any) -> str | None:
    """A value as the filter evaluator reads it as text (``as_text``), case-folded."""
    if isinstance(value, str):
        return fold(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def derived(resource_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """The indexed columns computed from a document (lookups Entra makes, entra-behaviour.md 1.3/1.6)."""
    user_name = data.get("userName") if resource_type == "User" else None
    if not isinstance(user_name, str):
        user_name = None
    external_id = data.get("externalId")
    display_name = data.get("displayName")
    display_name = display_name if isinstance(display_name, str) else None
    return {
        "user_name": user_name,
        "user_name_key": fold(user_name) if user_name is not None else None,
        "external_id": external_id if isinstance(external_id, str) else None,
        "display_name": display_name,
        "display_name_key": fold(display_name) if display_name is not None else None,
    }


def email_rows(resource_type: str, data: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    """(value_key, type_key) for every element of a User's ``emails``."""
    if resource_type != "User":
        return []
    items = data.get("emails")
    if not isinstance(items, list):
        return []
    return [(_text(e.get("value")), _text(e.get("type"))) for e in items if isinstance(e, dict)]


def group_refs(value: Any) -> tuple[tuple[GroupRef, ...], bool]:
    """The ``groups`` column (``lookups.groups_column``): JSON text or a decoded list of
    ``[pk, id, displayName, nested]``, NULL or ``[]`` for none, as the direct groups ordered by
    group pk (creation order), and whether any of them is itself in a group (``nested``): then
    the resource is in groups indirectly too (:func:`closure_groups`)."""
    if value is None or value == "[]":
        return (), False
    items = loads(value) if isinstance(value, str | bytes) else value
    if len(items) > 1:
        items.sort()  # by pk: pks are unique, so the later elements are never compared
    nested = False
    refs = []
    for item in items:
        refs.append(GroupRef(item[1], item[2]))
        if item[3]:
            nested = True
    return tuple(refs), nested


def closure_groups(rows: Iterable[Any]) -> dict[int, tuple[GroupRef, ...]]:
    """Rows of ``lookups.closure`` (member pk, group pk, group id, displayName, direct) as each
    member's groups: one entry per group, ``direct`` when the member is in it directly (whatever
    other ways lead there) and ``indirect`` otherwise, ordered by group pk as direct ones are."""
    found: dict[int, dict[int, GroupRef]] = {}
    for member, group_pk, group_id, display, direct in rows:
        groups = found.setdefault(member, {})
        if direct or group_pk not in groups:
            groups[group_pk] = GroupRef(group_id, display, "direct" if direct else "indirect")
    return {member: tuple(g for _, g in sorted(groups.items())) for member, groups in found.items()}


def stored(
    row: Any,
    resource_type: str,
    members: tuple[Member, ...] | None = None,
    groups: tuple[GroupRef, ...] | None = None,
) -> StoredResource:
    """A row of ``lookups.COLUMNS`` (pk, id, data, created, last_modified, version) as a
    StoredResource: ``data`` is the canonical document's JSON text, handed over undecoded.
    ``groups``: a User's groups when they were read (``group_refs``, ``closure_groups``)."""
    return StoredResource(
        row[1],
        resource_type,
        None,  # decoded from the document's text when first asked for
        from_micros(row[3]),
        from_micros(row[4]),
        row[5],
        members,
        groups,
        document_json=row[2],
    )
