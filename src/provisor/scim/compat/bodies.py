"""Resource-body normalisers: what Entra ID and Okta put in POST/PUT bodies and PATCH values that a
strict RFC 7643 reading rejects (entra-behaviour.md sections 1.3, 1.4, 1.6 and 1.9).

Each function is one named quirk of :data:`provisor.scim.compat.QUIRKS`, gated by
``compat.on("<name>")``. With the switch off a function leaves its input alone (or answers "not
tolerated"), so the generic validator in :mod:`provisor.scim.resources` gives the RFC error. The
functions never mutate their input and raise only :class:`~provisor.scim.errors.ScimError`
subclasses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from provisor.scim.compat import CompatSettings
from provisor.scim.errors import InvalidValue
from provisor.scim.filter.lexer import is_text
from provisor.scim.schema.model import Attribute, default_registry

#: The non-standard schema URI Entra adds to a Group's ``schemas`` (entra-behaviour.md 1.6, Q9).
ADSCIM_GROUP_SCHEMA = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"

_BOOLEAN_STRINGS = {"true": True, "false": False}
#: Longest JSON-encoded role string we try to decode (Q8); anything longer stays a plain string.
_MAX_ROLE_JSON = 4096


def coerce_string_boolean(value: Any, compat: CompatSettings) -> Any:
    """Q2/Q16 ``string_booleans``: ``"True"``/``"false"`` (any case) become ``True``/``False``.

    Entra sends ``active`` (and ``primary`` in some PATCH shapes) as a string by default
    (entra-behaviour.md 1.3, 1.5). Anything else is returned unchanged for the type check to judge.
    """
    if isinstance(value, str) and compat.on("string_booleans"):
        found = _BOOLEAN_STRINGS.get(value.lower())
        if found is not None:
            return found
    return value


def is_ignored_schema_uri(urn: str, compat: CompatSettings) -> bool:
    """Q9 ``adscim_group_schema``: the ADSCIM Group URI in ``schemas`` is accepted and ignored."""
    return compat.on("adscim_group_schema") and urn.lower() == ADSCIM_GROUP_SCHEMA.lower()


def undeclared_extension_allowed(compat: CompatSettings) -> bool:
    """Q7 ``undeclared_extension_schemas``: extension attributes whose URN is missing from ``schemas``.

    Entra never lists custom extension URNs in ``schemas`` (entra-behaviour.md 1.3); RFC 7643
    section 3 requires every schema whose attributes are present to be listed.
    """
    return compat.on("undeclared_extension_schemas")


def unknown_attributes_ignored(compat: CompatSettings) -> bool:
    """1.3 ``unknown_attributes_ignored``: attributes no schema declares are dropped, not rejected."""
    return compat.on("unknown_attributes_ignored")


def free_type_label(attribute: Attribute, compat: CompatSettings) -> bool:
    """``free_type_labels``: may a writable ``type`` sub-attribute (of ``emails``, ``phoneNumbers``,
    ``ims``, ``photos``, ``addresses``) hold a label outside its canonicalValues?

    RFC 7643 section 7 calls canonical values "suggested" and lets a service provider ignore them;
    IdPs whose mappings an admin edits send labels such as ``main`` or ``office``, and one odd label
    would fail the whole create. The ``type`` of ``members`` (immutable) and of ``groups``
    (readOnly) says what a reference points at, and is never free.
    """
    return attribute.name == "type" and compat.on("free_type_labels") and attribute in _free_labels()


@cache
def _free_labels() -> frozenset[Attribute]:
    """The ``type`` sub-attributes whose labels are free (definitions compare by value): only the
    core User schema's, not every writable ``type`` an extension declares, whose canonicalValues
    its declaration asks to have checked."""
    user = default_registry().resource_type("User")
    assert user is not None
    found = (user.schema.attribute(n) for n in ("emails", "phoneNumbers", "ims", "photos", "addresses"))
    return frozenset(sub for a in found if a is not None and (sub := a.sub("type")) is not None)


def default_active(
    data: dict[str, Any], current: Mapping[str, Any] | None, compat: CompatSettings
) -> dict[str, Any]:
    """``active_by_default``: a User created without ``active`` is active, and a PUT without it
    keeps the value the User has (``data`` is a parsed User; a new dict when changed).

    RFC 7643 section 4.1.1 gives ``active`` no default, so a User made by a client that leaves it
    out is neither active nor inactive; Okta's import reads it and its conformance test expects
    it, and a PUT that omits it would otherwise clear it (peers.md: a PUT without ``active`` that
    suspended users).
    """
    if "active" in data or not compat.on("active_by_default"):
        return data
    if current is None:
        return {**data, "active": True}
    if "active" in current:
        return {**data, "active": current["active"]}
    return data


def nested_nulls_ignored(compat: CompatSettings) -> bool:
    """Q12 ``explicit_nulls``: a ``null`` among a multi-valued attribute's values is no value.

    An attribute or sub-attribute whose value is ``null`` is unassigned in any mode (RFC 7643
    section 2.5: ``"name": {"givenName": null}`` of Entra's older create sample, a member's
    ``"$ref": null``); a null in place of one of several values (``"emails": [null]``) is none of
    the RFC's forms, and a strict reading refuses it.
    """
    return compat.on("explicit_nulls")


def normalise_manager(value: Any, compat: CompatSettings) -> Any:
    """Q5 ``manager_bare_string``: the enterprise ``manager`` as Entra sends it, made RFC-shaped.

    - a bare id string ``"<id>"`` becomes ``{"value": "<id>"}`` (entra-behaviour.md 1.3, 1.4);
    - the old-docs array ``[{"$ref": ..., "value": "<id>"}]`` becomes its first element;
    - ``""``, ``[]`` and ``{"value": ""}`` become ``None`` (unassigned: the manager was cleared).

    RFC 7643 section 4.3 defines ``manager`` as a single-valued complex attribute: with the switch
    off the value is returned unchanged and only the object form passes validation.
    """
    if not compat.on("manager_bare_string"):
        return value
    if isinstance(value, list | tuple):
        if not value:
            return None
        value = value[0]
    if isinstance(value, str):
        return {"value": value} if value else None
    if isinstance(value, Mapping):
        inner = next((v for k, v in value.items() if isinstance(k, str) and k.lower() == "value"), None)
        if inner == "":
            return None
    return value


def decode_role(element: Any, compat: CompatSettings) -> Any:
    """Q8 ``roles_json_strings``: a ``roles`` element as Entra's app-role mappings send it.

    - ``{"value": "{\\"id\\":\\"…\\",\\"value\\":\\"Admin\\",\\"displayName\\":\\"Admin\\"}"}``:
      the JSON-encoded string is decoded; ``value`` becomes the inner ``value``, ``display`` the
      inner ``displayName`` (or ``display``), and ``type`` and ``primary`` the inner ones, each
      unless the element already has one (entra-behaviour.md 1.4, roles). One level only: an inner
      ``value`` that is itself JSON text is stored as that text.
    - POST role objects carry ``displayName`` instead of the RFC's ``display``: it is renamed.

    With the switch off the element is returned unchanged (a JSON string is then a plain string).
    """
    if not compat.on("roles_json_strings") or not isinstance(element, Mapping):
        return element
    out = {k: v for k, v in element.items()}
    keys = {k.lower(): k for k in out if isinstance(k, str)}
    if "displayname" in keys and "display" not in keys:
        out["display"] = out.pop(keys["displayname"])
        keys["display"] = "display"
    value_key = keys.get("value")
    raw = out.get(value_key) if value_key is not None else None
    if not (isinstance(raw, str) and raw.lstrip().startswith("{") and len(raw) <= _MAX_ROLE_JSON):
        return out
    try:
        inner = json.loads(raw)
    except (ValueError, RecursionError):
        return out
    if not isinstance(inner, dict):
        return out
    inner_value = inner.get("value")
    if not isinstance(inner_value, str):
        raise InvalidValue("roles value is a JSON-encoded role without a string 'value'")
    inner_display = inner.get("displayName", inner.get("display"))
    if not is_text(inner_value) or (isinstance(inner_display, str) and not is_text(inner_display)):
        raise InvalidValue("roles value is a JSON-encoded role holding half a surrogate pair (\\u escape)")
    assert value_key is not None
    out[value_key] = inner_value
    if "display" not in keys and isinstance(inner_display, str):
        out["display"] = inner_display
    for name in ("type", "primary"):  # validated with the element, as if it had sent them itself
        if name not in keys and name in inner:
            out[name] = inner[name]
    return out


def member_display_name(element: Any, compat: CompatSettings) -> Any:
    """``member_display_name``: a group member's ``displayName`` is its ``display``.

    Microsoft's SCIM reference Postman collection adds members as ``{"displayName": "new User",
    "value": "<id>"}`` and expects the name back as ``display``. An explicit ``display`` wins.
    """
    if not compat.on("member_display_name") or not isinstance(element, Mapping):
        return element
    keys = {k.lower(): k for k in element if isinstance(k, str)}
    if "displayname" not in keys:
        return element
    out = {k: v for k, v in element.items() if k != keys["displayname"]}
    if "display" not in keys:
        out["display"] = element[keys["displayname"]]
    return out
