"""The protocol core's exception hierarchy (RFC 7644 section 3.12).

Every error a client can cause is a :class:`ScimError` carrying the HTTP status and, where the RFC
defines one, the ``scimType``. Only ``server/errors.py`` turns these into responses.

    ScimError
     +-- BadRequest (400)            invalidFilter, invalidSyntax, invalidPath, invalidValue,
     |                               mutability, noTarget, tooMany, invalidVers, sensitive
     +-- Unauthorized (401)
     +-- Forbidden (403)
     +-- NotFound (404)
     +-- MethodNotAllowed (405)
     +-- Conflict (409)              uniqueness
     +-- PreconditionFailed (412)
     +-- PayloadTooLarge (413)
     +-- TooManyRequests (429)
     +-- HeadersTooLarge (431)
     +-- NotImplementedByServer (501)
"""

from __future__ import annotations


class ScimError(Exception):
    """A client-visible SCIM error: HTTP ``status``, optional ``scim_type``, and a ``detail`` that
    a person can act on."""

    status: int = 400
    default_scim_type: str | None = None

    def __init__(self, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.scim_type = scim_type if scim_type is not None else self.default_scim_type

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r}, scim_type={self.scim_type!r})"


class BadRequest(ScimError):
    """400: the request is malformed or violates the schema."""

    status = 400


class InvalidFilter(BadRequest):
    """400 invalidFilter: a filter that cannot be parsed or names an unknown attribute."""

    default_scim_type = "invalidFilter"

    def __init__(self, detail: str, position: int | None = None) -> None:
        if position is not None:
            detail = f"{detail} (at position {position})"
        super().__init__(detail)
        self.position = position


class InvalidPath(BadRequest):
    """400 invalidPath: a PATCH path that cannot be parsed or names an unknown attribute."""

    default_scim_type = "invalidPath"

    def __init__(self, detail: str, position: int | None = None) -> None:
        if position is not None:
            detail = f"{detail} (at position {position})"
        super().__init__(detail)
        self.position = position


class InvalidSyntax(BadRequest):
    """400 invalidSyntax: the body is not valid JSON or not the message the endpoint expects."""

    default_scim_type = "invalidSyntax"


class InvalidCursor(BadRequest):
    """400 invalidCursor (RFC 9865 section 2.1): a cursor this server did not issue for this query."""

    default_scim_type = "invalidCursor"


class InvalidCount(BadRequest):
    """400 invalidCount (RFC 9865 section 2.1): a count a cursor-paged query cannot take."""

    default_scim_type = "invalidCount"


class InvalidValue(BadRequest):
    """400 invalidValue: a value of the wrong type, a missing required value, a value not allowed."""

    default_scim_type = "invalidValue"


class Mutability(BadRequest):
    """400 mutability: an attempt to change an immutable or read-only attribute."""

    default_scim_type = "mutability"


class NoTarget(BadRequest):
    """400 noTarget: a PATCH path filter that matched nothing where a match is required."""

    default_scim_type = "noTarget"


class TooMany(BadRequest):
    """400 tooMany: the request asks for more than the server will return or do."""

    default_scim_type = "tooMany"


class Unauthorized(ScimError):
    """401: no or an unknown, revoked or expired Secret Token. ``invalid_token``: a token was
    presented and is not (or no longer) valid, which the answer's ``WWW-Authenticate`` says with
    ``error="invalid_token"`` (RFC 6750 section 3.1); without it, no usable credentials came."""

    status = 401

    def __init__(self, detail: str, *, invalid_token: bool = False) -> None:
        super().__init__(detail)
        self.invalid_token = invalid_token


class NotFound(ScimError):
    """404: the resource does not exist in this tenant."""

    status = 404


class Forbidden(ScimError):
    """403: a request the endpoint refuses to answer as asked (RFC 7644 section 4: a filter on a
    discovery endpoint, so that no client takes its conditions for applied)."""

    status = 403


class MethodNotAllowed(ScimError):
    """405: the endpoint exists but not for this HTTP method; ``allowed`` are the ones it has (the
    response's ``Allow`` header, RFC 9110 section 15.5.6)."""

    status = 405

    def __init__(self, detail: str, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(detail)
        self.allowed = allowed


class Conflict(ScimError):
    """409 uniqueness: a value that must be unique is taken."""

    status = 409
    default_scim_type = "uniqueness"


class PreconditionFailed(ScimError):
    """412: If-Match named a version that is not the current one (RFC 7644 section 3.14)."""

    status = 412


class PayloadTooLarge(ScimError):
    """413: the request body is larger than the server accepts."""

    status = 413


class TooManyRequests(ScimError):
    """429: the tenant has used up its rate limit (RFC 6585 section 4); ``retry_after`` is how many
    whole seconds until the request would be taken (the response's ``Retry-After`` header)."""

    status = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ServiceUnavailable(ScimError):
    """503: the server cannot take the request now (its database is busy with another writer);
    nothing was changed, and ``retry_after`` seconds later it may (the ``Retry-After`` header)."""

    status = 503

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class InsufficientStorage(ScimError):
    """507 (RFC 4918 section 11.5): the server has no room to store the change; nothing was."""

    status = 507


class RequestTimeout(ScimError):
    """408 (RFC 9110 section 15.5.9): the client did not send its request in time (its head, or
    the next part of its body); the server closes the connection."""

    status = 408


class HeadersTooLarge(ScimError):
    """431: the request line and headers are larger than the server accepts."""

    status = 431


class UriTooLong(ScimError):
    """414 (RFC 9110 section 15.5.15): the request target is longer than the server reads."""

    status = 414


class VersionNotSupported(ScimError):
    """505 (RFC 9110 section 15.6.6): the request's HTTP version is none the server speaks."""

    status = 505


class NotImplementedByServer(ScimError):
    """501: a SCIM feature this server does not implement (e.g. /Me)."""

    status = 501
