"""A stored resource rendered as its SCIM JSON representation (RFC 7643 section 3.1; RFC 7644 3.14)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from provisor.scim.resources.plans import plan_for
from provisor.scim.schema.model import ResourceType


class Member(Protocol):
    """A group member as the store hands it over (``provisor.store.base.Member`` fits).

    A structural type, because the protocol core must not import the store (architecture.md).
    """

    @property
    def value(self) -> str: ...

    @property
    def type(self) -> str | None: ...

    @property
    def display(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class _DictMember:
    value: str
    type: str | None = None
    display: str | None = None


def etag(version: int) -> str:
    """The weak entity tag of a resource version (RFC 7644 section 3.14, RFC 7232): ``W/"<version>"``."""
    return f'W/"{version}"'


def format_datetime(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` (RFC 7643 section 2.3.5). A naive datetime is taken as UTC."""
    if moment.tzinfo is UTC:
        return moment.isoformat().replace("+00:00", "Z")  # astimezone(UTC) below changes nothing
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_representation(
    rt: ResourceType,
    id: str,
    data: Mapping[str, Any],
    *,
    created: datetime,
    last_modified: datetime,
    version: int,
    location: str,
    members: Sequence[Member] | None = None,
    member_base_url: str | None = None,
) -> dict[str, Any]:
    """The full JSON representation (RFC 7643 section 3.1).

    ``schemas`` (the core URN and each extension with attributes in ``data``), ``id``,
    ``externalId``, ``meta`` (resourceType, created, lastModified, location, version) and the
    attributes, core first, then each extension under its URN. Attributes returned ``never``
    (``password``) are left out even if present in ``data``.

    Group members come from ``members`` when given (an empty sequence renders ``"members": []``,
    which Entra expects after a create, entra-behaviour.md 1.6), else from ``data["members"]``.
    Each is ``{value, $ref, type, display}`` without nulls; ``$ref`` is ``member_base_url`` +
    ``/Users/`` or ``/Groups/`` + value, by the member's type (RFC 7643 section 4.2).
    """
    plan = plan_for(rt)
    out: dict[str, Any] = {"schemas": [rt.schema.id], "id": id}
    if data.get("externalId") is not None:
        out["externalId"] = data["externalId"]
    created_text = format_datetime(created)
    out["meta"] = {
        "resourceType": rt.name,
        "created": created_text,
        # Equal UTC moments format the same (a fresh resource's two timestamps); only UTC, where
        # ``fold`` cannot make equal datetimes convert differently.
        "lastModified": created_text
        if created.tzinfo is UTC and last_modified.tzinfo is UTC and last_modified == created
        else format_datetime(last_modified),
        "location": location,
        "version": etag(version),
    }
    # The core attributes in schema order, without those returned "never" and a Group's members.
    get = data.get
    for name in plan.rendered_core:
        value = get(name)
        if value is not None:
            out[name] = value
    if plan.is_group:
        if members is not None:
            out["members"] = [_member_json(m, member_base_url) for m in members]
        elif isinstance(data.get("members"), list):
            out["members"] = [_member_json(_as_member(m), member_base_url) for m in data["members"]]
    # Each extension: its attributes, in schema order, not returned "never".
    for ext_id, names in plan.rendered_extensions:
        values = data.get(ext_id)
        if not isinstance(values, Mapping):
            continue
        rendered = {name: value for name in names if (value := values.get(name)) is not None}
        if rendered:
            out["schemas"].append(ext_id)
            out[ext_id] = rendered
    return out


def _as_member(raw: Any) -> Member:
    if not isinstance(raw, Mapping):
        return _DictMember(value=str(raw))
    return _DictMember(value=str(raw.get("value")), type=raw.get("type"), display=raw.get("display"))


def _member_json(member: Member, base_url: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"value": member.value}
    if base_url is not None and member.type in ("User", "Group"):
        out["$ref"] = f"{base_url.rstrip('/')}/{member.type}s/{member.value}"
    if member.type is not None:
        out["type"] = member.type
    if member.display is not None:
        out["display"] = member.display
    return out
