"""Derived columns and rows: what ``resources``/``emails`` hold besides the JSON document."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from provisor.scim.schema.model import ENTERPRISE_USER
from provisor.store.base import GroupRef, Member, StoredResource
from provisor.store.sql.values import dumps, fold, from_micros, loads

#: The extensions of a resource type whose removal began (``extension_purge``), whose values stored
#: documents may hold until the purge reaches them: each URN, the URN as a key in JSON text
#: (``"<URN>":``; a quote inside a JSON string is escaped, so that text is always a key), and when
#: its removal began (microseconds).
Withdrawn = tuple[tuple[str, str, int], ...]


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
    manager = None
    if resource_type == "User":
        enterprise = data.get(ENTERPRISE_USER)
        manager = enterprise.get("manager") if isinstance(enterprise, dict) else None
        manager = manager.get("value") if isinstance(manager, dict) else None
    return {
        "user_name": user_name,
        "user_name_key": fold(user_name) if user_name is not None else None,
        "external_id": external_id if isinstance(external_id, str) else None,
        "display_name": display_name,
        "display_name_key": fold(display_name) if display_name is not None else None,
        "manager_key": manager if isinstance(manager, str) else None,
    }


def email_rows(resource_type: str, data: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    """(value_key, type_key) for every element of a User's ``emails``."""
    if resource_type != "User":
        return []
    items = data.get("emails")
    if not isinstance(items, list):
        return []
    return [(_text(e.get("value")), _text(e.get("type"))) for e in items if isinstance(e, dict)]


def group_items(value: Any) -> list[list[Any]]:
    """The ``groups`` column (``lookups.groups_column``): JSON text or a decoded list of
    ``[pk, id, displayName, nested]``, NULL or ``[]`` for none, as that list ordered by group pk
    (creation order). ``nested`` (0 or 1) tells whether the group is itself in a group: then the
    resource is in groups indirectly too (:class:`Ancestry`)."""
    if value is None or value == "[]":
        return []
    items: list[list[Any]] = loads(value) if isinstance(value, str | bytes) else value
    if len(items) > 1:
        items.sort()  # by pk: pks are unique, so the later elements are never compared
    return items


#: A member's direct groups as read (:func:`direct_groups`): its groups already, or the decoded
#: column to walk up from (:meth:`Ancestry.member_groups`).
DirectGroups = tuple[GroupRef, ...] | list[list[Any]]


def direct_groups(value: Any) -> DirectGroups:
    """The ``groups`` column as the member's groups when none of its groups is itself in a group
    (the usual case, final here: the decoded column is dropped at once), else as the decoded
    column (:func:`group_items`), whose nested groups :class:`Ancestry` walks up from."""
    items = group_items(value)
    refs = []
    for item in items:  # a plain loop: this runs for every User read that shows groups
        if item[3]:
            return items
        refs.append(GroupRef(item[1], item[2]))
    return tuple(refs)


class Ancestry:
    """The memberships of groups in groups above some groups (rows of ``lookups.ancestry``:
    group pk, the group it is a member of: pk, id, displayName), to walk each member's way up.

    Held once per read, not once per member: the members of a page share their groups' ancestors,
    so the rows are as many as the groups above them (a thousand Users in a group nested in 999
    others are 999 rows here, where a closure per member was a million), and each group reached
    only indirectly is one shared :class:`GroupRef`.
    """

    __slots__ = ("_above", "_refs")

    def __init__(self, rows: Iterable[Any]) -> None:
        self._above: dict[int, list[int]] = {}
        self._refs: dict[int, GroupRef] = {}
        for member, group_pk, group_id, display in rows:
            self._above.setdefault(member, []).append(group_pk)
            if group_pk not in self._refs:
                self._refs[group_pk] = GroupRef(group_id, display, "indirect")

    def member_groups(self, items: list[list[Any]]) -> tuple[GroupRef, ...]:
        """A member's groups from its direct ones (:func:`group_items`): one entry per group,
        ``direct`` when it is in it directly (whatever other ways lead there) and ``indirect``
        otherwise, ordered by group pk as direct ones are. A cycle of groups is walked once."""
        seen = {item[0] for item in items}
        stack = [item[0] for item in items if item[3]]
        above = self._above
        while stack:
            for group_pk in above.get(stack.pop(), ()):
                if group_pk not in seen:
                    seen.add(group_pk)
                    stack.append(group_pk)
        if len(seen) == len(items):
            return tuple(GroupRef(item[1], item[2]) for item in items)
        direct = {item[0]: GroupRef(item[1], item[2]) for item in items}
        refs = self._refs
        return tuple(direct.get(pk) or refs[pk] for pk in sorted(seen))


def withdrawn_key(urn: str) -> str:
    """``urn`` as a key in a document's JSON text (see :data:`Withdrawn`)."""
    return dumps(urn) + ":"


def shown_as(row: Any, withdrawn: Withdrawn = ()) -> tuple[int, int]:
    """The version and lastModified (microseconds) a row of ``lookups.COLUMNS`` is shown with: as
    stored, unless its document holds values of an extension being removed (``withdrawn``).

    Leaving those values out changes the representation, so such a row is shown as the next
    version, last modified when the removal began (or later): the version and date the purge gives
    the document when it takes the values out (``extension_purge``), which changes nothing shown.
    A client holding the ETag of the document with the values sees the change at once; a write to
    the document meanwhile starts from that next version."""
    since = [mark for _, key, mark in withdrawn if key in row[2]]
    if not since:
        return row[5], row[4]
    return row[5] + 1, max(row[4], *since)


def stored(
    row: Any,
    resource_type: str,
    members: tuple[Member, ...] | None = None,
    groups: tuple[GroupRef, ...] | None = None,
    withdrawn: Withdrawn = (),
) -> StoredResource:
    """A row of ``lookups.COLUMNS`` (pk, id, data, created, last_modified, version) as a
    StoredResource: ``data`` is the canonical document's JSON text, handed over undecoded.
    ``groups``: a User's groups when they were read (``group_items``, ``Ancestry``).

    A document holding values of an extension being removed (``withdrawn``) is handed over
    without them, as it will be stored once the purge reaches it, with the version and date it
    will then have (:func:`shown_as`): no read shows them meanwhile (``render_json`` splices the
    text it gets) and an update starts from what a read shows."""
    text, version, last_modified = row[2], row[5], row[4]
    data = None  # decoded from the document's text when first asked for
    if withdrawn:  # none, but while a removal runs
        version, last_modified = shown_as(row, withdrawn)
        if version != row[5]:  # it holds some
            data = loads(text)
            for urn, _, _ in withdrawn:
                data.pop(urn, None)
            text = dumps(data)
    return StoredResource(
        row[1],
        resource_type,
        data,
        from_micros(row[3]),
        from_micros(last_modified),
        version,
        members,
        groups,
        document_json=text,
    )
