"""THE one place exceptions become HTTP responses (RFC 7644 section 3.12).

Protocol errors (:class:`ScimError`) render as SCIM Error JSON with ``status`` as a string; store
errors are first translated to protocol errors by :func:`to_scim_error`. Anything else is a bug:
it is logged with its traceback server-side and answered with a bare 500 SCIM Error that reveals
nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import orjson
from starlette.responses import Response

from provisor.scim import errors as scim
from provisor.scim.compat.credentials import without_tokens
from provisor.server.http import response_media_type
from provisor.store import base as store

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"

log = logging.getLogger("provisor.server")


#: The most values a client sent that an error's detail or a log line names, and the characters
#: shown of each: they are the client's text, as long and as many as it likes.
SHOWN_VALUES, SHOWN_CHARS = 10, 64


def clipped(values: Iterable[str], *, quoted: bool = False) -> str:
    """``values`` as a detail or a log line may show them: a Secret Token among them redacted,
    each cut at :data:`SHOWN_CHARS` and, ``quoted``, written as a JSON string (a newline in one
    cannot start a line of a log of its own), at most :data:`SHOWN_VALUES` of them."""
    items = list(values)
    shown = []
    for value in items[:SHOWN_VALUES]:
        text = without_tokens(value)
        text = text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}..."
        shown.append(orjson.dumps(text).decode() if quoted else text)
    more = len(items) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def to_scim_error(exc: Exception) -> scim.ScimError | None:
    """Translate a store or protocol exception to a protocol error; None for anything unexpected."""
    if isinstance(exc, scim.ScimError):
        return exc
    if isinstance(exc, store.ResourceNotFound):
        return scim.NotFound(str(exc) or "resource not found")
    if isinstance(exc, store.UniquenessViolation):
        return scim.Conflict(str(exc))
    if isinstance(exc, store.VersionMismatch):
        return scim.PreconditionFailed(
            str(exc) or "the resource has changed (If-Match does not match its version)"
        )
    if isinstance(exc, store.UnknownMember):
        return scim.InvalidValue(
            f"members must be ids of Users or Groups of this tenant; unknown: {clipped(exc.values)}"
        )
    if isinstance(exc, store.StoreBusy):
        return scim.ServiceUnavailable(
            "the database is busy with another writer; nothing was changed: retry in a moment"
        )
    if isinstance(exc, store.StoreUnavailable):
        return scim.ServiceUnavailable(
            "the server cannot use its database right now (its operator is told); nothing was changed",
            retry_after=30,
        )
    if isinstance(exc, store.StoreFull):
        return scim.InsufficientStorage("the server's database has no room left; nothing was changed")
    if isinstance(exc, store.QueryTooComplex):
        return scim.InvalidFilter(str(exc))
    if isinstance(exc, store.SelfMember):
        return scim.InvalidValue(f"a group cannot be a member of itself: {exc.value}")
    if isinstance(exc, store.TenantNotFound | store.TenantDeleting):
        # the request's token named the tenant; a server's token cache may keep a deleted tenant's
        # tokens for a second more, so a request in that second finds it gone: the credentials are
        # what failed, not the request
        return scim.Unauthorized("the Secret Token's tenant has been deleted", invalid_token=True)
    if isinstance(exc, store.StoreError):
        return scim.BadRequest(str(exc))
    return None


def error_body(error: scim.ScimError) -> dict[str, object]:
    """The SCIM Error JSON of ``error``. A Secret Token its detail repeats (a Tenant URL with the
    token pasted onto it, answered 404 naming the path) is redacted: the IdP shows the detail in
    its provisioning logs."""
    body: dict[str, object] = {
        "schemas": [ERROR_SCHEMA],
        "status": str(error.status),
        "detail": without_tokens(error.detail),
    }
    if error.scim_type:
        body["scimType"] = error.scim_type
    return body


def render_error(exc: Exception) -> tuple[int, bytes, dict[str, str]]:
    """Status, SCIM Error JSON and headers for any exception raised while handling a request."""
    error = to_scim_error(exc)
    if error is None:
        log.error("unhandled error", exc_info=exc)
        error = scim.ScimError("internal server error")
        error.status = 500
    headers: dict[str, str] = {}
    if error.status == 401:
        invalid = isinstance(error, scim.Unauthorized) and error.invalid_token
        headers["WWW-Authenticate"] = (
            'Bearer realm="SCIM", error="invalid_token"' if invalid else 'Bearer realm="SCIM"'
        )
    elif isinstance(error, scim.MethodNotAllowed) and error.allowed:
        headers["Allow"] = ", ".join(error.allowed)
    elif isinstance(error, scim.TooManyRequests | scim.ServiceUnavailable):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(exc, store.StoreUnavailable):
        log.error("answered 503: %s: repair or restore the database (provisor doctor says more)", exc)
    elif isinstance(error, scim.ServiceUnavailable):
        log.warning("answered 503: %s", exc)
    elif isinstance(error, scim.InsufficientStorage):
        log.error("answered 507: %s: free disk space (or raise the limit)", exc)
    return error.status, orjson.dumps(error_body(error)), headers


def error_response(exc: Exception, accept: str | None = None) -> Response:
    """:func:`render_error` as a Starlette response (for the routes outside the SCIM app), in the
    media type the request's Accept header negotiates (``http.response_media_type``)."""
    status, body, headers = render_error(exc)
    media = response_media_type(accept).decode("latin-1")
    return Response(body, status_code=status, headers=headers, media_type=media)
