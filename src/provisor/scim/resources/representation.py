"""A stored resource rendered as its SCIM JSON representation (RFC 7643 section 3.1; RFC 7644 3.14)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

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


#: ((year, month, day, hour, minute, second), "YYYY-MM-DDTHH:MM:SS") of the last UTC second that
#: :func:`format_datetime` formatted: the writes and reads of one second share it. One tuple,
#: replaced whole, so that threads never see a second with another second's text.
_LAST_SECOND: tuple[tuple[int, ...], str] = ((), "")


def format_datetime(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` (RFC 7643 section 2.3.5). A naive datetime is taken as UTC."""
    global _LAST_SECOND
    if moment.tzinfo is UTC and type(moment) is datetime:
        # moment.isoformat().replace("+00:00", "Z"), which astimezone(UTC) below would not change,
        # with the text of the second kept: isoformat costs about a microsecond a call
        second = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
        last = _LAST_SECOND
        if last[0] == second:
            text = last[1]
        else:
            text = moment.replace(microsecond=0, tzinfo=None).isoformat()
            _LAST_SECOND = (second, text)
        micros = moment.microsecond
        return f"{text}.{micros:06d}Z" if micros else f"{text}Z"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def document(rt: ResourceType, data: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical document of ``data``: what a store keeps and what a representation shows of it.

    ``externalId``, then the core attributes in schema order, then each extension under its URN
    with its attributes in schema order; without nulls, without attributes returned ``never``,
    without a Group's ``members`` (kept apart, as a relation) and without empty extensions. Equal
    resources have equal canonical documents, key order included, so the JSON text of one
    (:func:`render_json`) can be spliced into a representation as it is.
    """
    plan = plan_for(rt)
    out: dict[str, Any] = {}
    get = data.get
    external_id = get("externalId")
    if external_id is not None:
        out["externalId"] = external_id
    for name in plan.rendered_core:
        value = get(name)
        if value is not None:
            out[name] = value
    for ext_id, names in plan.rendered_extensions:
        values = get(ext_id)
        if values is None or (type(values) is not dict and not isinstance(values, Mapping)):
            continue  # (a dict is a Mapping: the test skips the ABC check)
        rendered: dict[str, Any] = {}
        ext_get = values.get
        for name in names:
            value = ext_get(name)
            if value is not None:
                rendered[name] = value
        if rendered:
            out[ext_id] = rendered
    return out


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
    groups: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The full JSON representation (RFC 7643 section 3.1).

    ``schemas`` (the core URN and each extension with attributes in ``data``), ``id``, the
    :func:`document` of ``data`` (``externalId``, the core attributes, each extension under its
    URN), a Group's ``members`` or a User's ``groups``, and ``meta`` last (resourceType, created,
    lastModified, location, version), the order of RFC 7643 section 8. Attributes returned
    ``never`` (``password``) are left out even if present in ``data``.

    Group members come from ``members`` when given (an empty sequence renders ``"members": []``,
    which Entra expects after a create, entra-behaviour.md 1.6), else from ``data["members"]``.
    Each is ``{value, $ref, type, display}`` without nulls; ``$ref`` is ``member_base_url`` +
    ``/Users/`` or ``/Groups/`` + value, by the member's type (RFC 7643 section 4.2).
    """
    plan = plan_for(rt)
    doc = document(rt, data)
    schemas = [rt.schema.id]
    schemas.extend(ext_id for ext_id, _ in plan.rendered_extensions if ext_id in doc)
    if plan.is_group and members is None and isinstance(data.get("members"), list):
        members = [_as_member(m) for m in data["members"]]
    out: dict[str, Any] = {"schemas": schemas, "id": id}
    out.update(doc)
    out.update(
        _after_document(rt, created, last_modified, version, location, members, member_base_url, groups)
    )
    return out


def render_json(
    rt: ResourceType,
    id: str,
    document_json: str,
    *,
    created: datetime,
    last_modified: datetime,
    version: int,
    location: str,
    members: Sequence[Member] | None = None,
    member_base_url: str | None = None,
    groups: list[dict[str, Any]] | None = None,
) -> bytes:
    """``to_representation`` as JSON, from the JSON text of a canonical :func:`document` as stored.

    The document's text is spliced in as it is: no decoding, no re-encoding. It is exactly
    ``orjson.dumps(to_representation(rt, id, orjson.loads(document_json), ...))`` when
    ``document_json`` is the orjson text of a canonical document (``tests/scim`` holds the one to
    the other). An extension is listed in ``schemas`` when its URN is a key of the document: in
    JSON text ``"<urn>":{`` can only be a key (a quote inside a string is escaped), and only at
    the top level, where the canonical document keeps extensions.
    """
    plan = plan_for(rt)
    schemas = [rt.schema.id]
    for ext_id, needle in plan.extension_keys_json:
        if needle in document_json:
            schemas.append(ext_id)
    tail = _after_document(rt, created, last_modified, version, location, members, member_base_url, groups)
    inner = document_json[1:-1]
    return b"".join(
        (
            b'{"schemas":',
            orjson.dumps(schemas),
            b',"id":',
            orjson.dumps(id),
            b"," if inner else b"",
            inner.encode(),
            b",",
            orjson.dumps(tail)[1:],
        )
    )


def _after_document(
    rt: ResourceType,
    created: datetime,
    last_modified: datetime,
    version: int,
    location: str,
    members: Sequence[Member] | None,
    member_base_url: str | None,
    groups: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """What a representation shows after the document, in order: a Group's ``members``, a User's
    ``groups``, then ``meta``; the one tail of both ``to_representation`` and ``render_json``."""
    tail: dict[str, Any] = {}
    if members is not None and plan_for(rt).is_group:
        tail["members"] = [_member_json(m, member_base_url) for m in members]
    if groups is not None:
        tail["groups"] = groups
    tail["meta"] = _meta(rt, created, last_modified, location, version)
    return tail


def _meta(
    rt: ResourceType, created: datetime, last_modified: datetime, location: str, version: int
) -> dict[str, str]:
    created_text = format_datetime(created)
    return {
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
