"""SCIM 2.0 resources -> Entra source attributes (the table in docs/sources.md, "SCIM source").

RFC 7643 section 4.1 (User), 4.3 (enterprise extension) and 4.2 (Group) on one side, Entra's
source attribute names (entra-behaviour.md sections 2 and 3) on the other. Absent or null values
are left out: Entra never provisions a null (entra-behaviour.md 2.15).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.engine.model import ObjectKind, SourceObject
from provisor.engine.sources._entra import finish_group, finish_user

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

#: Core User attributes copied as they are, SCIM name -> Entra name.
_USER_SIMPLE = (
    ("userName", "userPrincipalName"),
    ("displayName", "displayName"),
    ("title", "jobTitle"),
    ("preferredLanguage", "preferredLanguage"),
    ("userType", "userType"),
    ("externalId", "externalId"),
)
#: Enterprise extension attributes, SCIM name -> Entra name (extension names kept as they are).
_ENTERPRISE_SIMPLE = (
    ("employeeNumber", "employeeId"),
    ("department", "department"),
    ("costCenter", "costCenter"),
    ("division", "division"),
    ("organization", "organization"),
)
#: Work address sub-attributes -> Entra names.
_ADDRESS = (
    ("streetAddress", "streetAddress"),
    ("locality", "city"),
    ("region", "state"),
    ("postalCode", "postalCode"),
    ("country", "country"),
    ("formatted", "physicalDeliveryOfficeName"),
)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _items(value: Any) -> list[Mapping[str, Any]]:
    """A multi-valued complex attribute's elements, ignoring anything that is not an object."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _type_of(item: Mapping[str, Any]) -> str:
    kind = item.get("type")
    return kind.lower() if isinstance(kind, str) else ""


def _pick(items: list[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    return next((item for item in items if _type_of(item) == kind), None)


def _primary(items: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next((item for item in items if item.get("primary") is True), None)


def _mail(emails: list[Mapping[str, Any]]) -> str | None:
    """The primary e-mail, else the ``work`` one, else the first."""
    chosen = _primary(emails) or _pick(emails, "work") or (emails[0] if emails else None)
    return None if chosen is None else _text(chosen.get("value"))


def _phones(phones: list[Mapping[str, Any]], out: dict[str, Any]) -> None:
    """``work`` -> telephoneNumber (else a primary number that is not mobile or fax), ``mobile``
    -> mobile, ``fax`` -> facsimileTelephoneNumber."""
    work = _pick(phones, "work")
    if work is None:
        primary = _primary(phones)
        if primary is not None and _type_of(primary) not in ("mobile", "fax"):
            work = primary
    for item, name in ((work, "telephoneNumber"), (_pick(phones, "mobile"), "mobile")):
        if item is not None and (value := _text(item.get("value"))):
            out[name] = value
    fax = _pick(phones, "fax")
    if fax is not None and (value := _text(fax.get("value"))):
        out["facsimileTelephoneNumber"] = value


def _address(addresses: list[Mapping[str, Any]], out: dict[str, Any]) -> None:
    """The ``work`` address, else the primary one."""
    chosen = _pick(addresses, "work") or _primary(addresses)
    if chosen is None:
        return
    for scim, entra in _ADDRESS:
        if value := _text(chosen.get(scim)):
            out[entra] = value


def user_attributes(resource: Mapping[str, Any], *, nickname_from_external_id: bool = True) -> dict[str, Any]:
    """A SCIM User as Entra source attributes.

    ``mailNickname`` is ``externalId`` when ``nickname_from_external_id`` and one is set (Entra's
    default mapping writes mailNickname to externalId, so a Provisor tenant fed by Entra gives it
    back), else the local part of ``userName``.
    """
    out: dict[str, Any] = {"objectId": str(resource["id"])}
    for scim, entra in _USER_SIMPLE:
        if value := _text(resource.get(scim)):
            out[entra] = value
    name = resource.get("name")
    if isinstance(name, Mapping):
        if value := _text(name.get("givenName")):
            out["givenName"] = value
        if value := _text(name.get("familyName")):
            out["surname"] = value
    if mail := _mail(_items(resource.get("emails"))):
        out["mail"] = mail
    _phones(_items(resource.get("phoneNumbers")), out)
    _address(_items(resource.get("addresses")), out)
    active = resource.get("active")
    if isinstance(active, bool):
        out["accountEnabled"] = active
    elif isinstance(active, str) and active.lower() in ("true", "false"):  # lenient servers
        out["accountEnabled"] = active.lower() == "true"
    enterprise = resource.get(ENTERPRISE)
    if isinstance(enterprise, Mapping):
        for scim, entra in _ENTERPRISE_SIMPLE:
            if value := _text(enterprise.get(scim)):
                out[entra] = value
        manager = enterprise.get("manager")
        if isinstance(manager, Mapping) and (value := _text(manager.get("value"))):
            out["manager"] = value
    if nickname_from_external_id and (external := _text(resource.get("externalId"))):
        out["mailNickname"] = external
    return finish_user(out)


def _member_is_group(member: Mapping[str, Any]) -> bool:
    """RFC 7643 section 4.2: ``type`` is "User" or "Group"; without it, the ``$ref`` path tells."""
    kind = member.get("type")
    if isinstance(kind, str) and kind:
        return kind.lower() == "group"
    ref = member.get("$ref")
    return isinstance(ref, str) and "/groups/" in ref.lower()


def group_attributes(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A SCIM Group as Entra source attributes: ``members`` holds the anchors of direct *user*
    members, ``memberGroups`` those of direct nested groups (scope counts direct user members
    only, entra-behaviour.md 2.2)."""
    out: dict[str, Any] = {"objectId": str(resource["id"])}
    if value := _text(resource.get("displayName")):
        out["displayName"] = value
    if value := _text(resource.get("externalId")):
        out["externalId"] = value
    users: list[str] = []
    groups: list[str] = []
    for member in _items(resource.get("members")):
        value = _text(member.get("value"))
        if value is not None:
            (groups if _member_is_group(member) else users).append(value)
    out["members"] = users
    out["memberGroups"] = groups
    return finish_group(out)


def to_source_object(
    kind: ObjectKind, resource: Mapping[str, Any], *, nickname_from_external_id: bool = True
) -> SourceObject:
    """A SCIM resource as a :class:`SourceObject` anchored on its ``id``."""
    attrs = (
        user_attributes(resource, nickname_from_external_id=nickname_from_external_id)
        if kind is ObjectKind.USER
        else group_attributes(resource)
    )
    return SourceObject(kind=kind, anchor=attrs["objectId"], attributes=attrs)
