"""Entra's derived source attributes, computed the same way by every connector (docs/sources.md).

Pure functions, no I/O: each connector maps its own format to Entra's attribute names, then calls
:func:`finish_user` / :func:`finish_group` so that ``mailNickname``, ``accountEnabled``,
``IsSoftDeleted`` and ``securityEnabled`` follow one rule whatever the source is.
"""

from __future__ import annotations

import re
from typing import Any

_SPACE = re.compile(r"\s+")


def nickname_from_upn(upn: str) -> str:
    """The local part of a user principal name: ``alice@contoso.com`` -> ``alice``."""
    return upn.split("@", 1)[0]


def nickname_from_display_name(name: str) -> str:
    """A group's mail nickname: its display name lower-cased, white space removed."""
    return _SPACE.sub("", name).lower()


def finish_user(attrs: dict[str, Any]) -> dict[str, Any]:
    """Fill a user's derived attributes in place and return it.

    ``accountEnabled`` defaults to true when the source says nothing (a directory that cannot
    disable accounts); ``IsSoftDeleted`` is its negation (entra-behaviour.md 2.6: a disabled source
    account is soft-deleted); ``mailNickname`` defaults to the UPN's local part.
    """
    enabled = attrs.get("accountEnabled")
    if not isinstance(enabled, bool):
        enabled = True
        attrs["accountEnabled"] = True
    attrs["IsSoftDeleted"] = not enabled
    upn = attrs.get("userPrincipalName")
    if not attrs.get("mailNickname") and isinstance(upn, str) and upn:
        attrs["mailNickname"] = nickname_from_upn(upn)
    return attrs


def finish_group(attrs: dict[str, Any]) -> dict[str, Any]:
    """Fill a group's derived attributes in place: ``mailNickname`` from ``displayName`` unless
    given, ``securityEnabled`` true unless given (scope counts security groups only, 2.2), and
    empty ``members`` / ``memberGroups`` lists when absent."""
    name = attrs.get("displayName")
    if not attrs.get("mailNickname") and isinstance(name, str) and name:
        attrs["mailNickname"] = nickname_from_display_name(name)
    if not isinstance(attrs.get("securityEnabled"), bool):
        attrs["securityEnabled"] = True
    attrs.setdefault("members", [])
    attrs.setdefault("memberGroups", [])
    return attrs
