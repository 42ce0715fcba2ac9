"""The Secret Token in an ``Authorization`` header, and the forms of it that IdPs' set-up screens
lead admins to send (``bearer_scheme_variants``).

RFC 6750 section 2.1 asks for ``Authorization: Bearer <token>``. Okta's SCIM connection puts the
``Bearer`` in front of what the admin enters, so an admin who follows a guide written for a custom
header (where the admin types ``Bearer <token>`` itself) sends ``Bearer Bearer <token>``; and a
custom header field filled with the token alone sends no scheme at all. Both name the token
without doubt when it has Provisor's token prefix, so with the switch on they are read as that
token; the tenant the token names decides whether its switch is on (:func:`bearer_token` only
reports that a variant was used).
"""

from __future__ import annotations

from typing import NamedTuple

#: The public prefix of every Secret Token (``provisor.server.auth.TOKEN_PREFIX``).
TOKEN_PREFIX = "pvs_"  # noqa: S105 - a public prefix, not a secret


class BearerToken(NamedTuple):
    """The token an ``Authorization`` header carries, and whether it came in a variant form."""

    token: str
    variant: bool


def bearer_token(authorization: str) -> BearerToken | None:
    """The token of ``Bearer <token>`` (the scheme in any case), of ``Bearer Bearer <token>``, or
    of a bare ``pvs_...`` token; None for anything else (another scheme, no token)."""
    parts = authorization.split()
    if len(parts) == 2 and parts[0].lower() == "bearer":
        return BearerToken(parts[1], False)
    if len(parts) == 3 and parts[0].lower() == "bearer" and parts[1].lower() == "bearer":
        return BearerToken(parts[2], True)
    if len(parts) == 1 and parts[0].startswith(TOKEN_PREFIX):
        return BearerToken(parts[0], True)
    return None
