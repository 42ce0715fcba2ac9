"""Derived columns and rows: what ``resources``/``emails`` hold besides the JSON document."""

from __future__ import annotations

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


def group_refs(value: Any) -> tuple[GroupRef, ...]:
    """The ``groups`` column (``lookups.groups_column``): JSON text or a decoded list of
    ``[pk, id, displayName]``, NULL or ``[]`` for none; ordered by group pk (creation order)."""
    if value is None or value == "[]":
        return ()
    items = loads(value) if isinstance(value, str | bytes) else value
    if len(items) > 1:
        items.sort()  # by pk: pks are unique, so the later elements are never compared
    return tuple([GroupRef(item[1], item[2]) for item in items])


def stored(row: Any, resource_type: str, members: tuple[Member, ...] | None = None) -> StoredResource:
    """A row of ``lookups.COLUMNS`` (pk, id, data, created, last_modified, version), optionally
    followed by the ``groups`` column, as a StoredResource: ``data`` is the canonical document's
    JSON text, handed over undecoded."""
    return StoredResource(
        row[1],
        resource_type,
        None,  # decoded from the document's text when first asked for
        from_micros(row[3]),
        from_micros(row[4]),
        row[5],
        members,
        group_refs(row[6]) if len(row) > 6 else None,
        document_json=row[2],
    )
