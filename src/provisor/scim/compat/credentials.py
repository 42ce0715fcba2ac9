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

import re

#: The public prefix of every Secret Token (``provisor.server.auth.TOKEN_PREFIX``).
TOKEN_PREFIX = "pvs_"  # noqa: S105 - a public prefix, not a secret
#: A Provisor Secret Token, wherever it appears in a text (a path, an error's detail, a pasted
#: ``Authorization: Bearer ...`` line): the prefix and the URL-safe characters after it.
TOKEN_TEXT = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_\-]+")
#: What a redacted secret reads as.
REDACTED = "[redacted]"


def without_tokens(text: str) -> str:
    """``text`` with every Provisor Secret Token in it redacted (a request path in the access log,
    an error's detail that repeats the path)."""
    return TOKEN_TEXT.sub(REDACTED, text) if TOKEN_PREFIX in text else text


def bearer_token(authorization: str) -> tuple[str, bool] | None:
    """``(token, variant)``: the token of ``Bearer <token>`` (the scheme in any case; variant
    False), of ``Bearer Bearer <token>`` or of a bare ``pvs_...`` token (variant True); None for
    anything else (another scheme, no token, more words). A plain tuple: this runs for every
    request."""
    scheme, _, rest = authorization.strip().partition(" ")
    token = rest.strip()
    if scheme.lower() == "bearer":
        if token and " " not in token:
            return token, False
        again, _, token = token.partition(" ")
        token = token.strip()
        if again.lower() == "bearer" and token and " " not in token:
            return token, True
        return None
    if not rest and scheme.startswith(TOKEN_PREFIX):
        return scheme, True
    return None
