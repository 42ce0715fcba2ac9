"""What can go wrong talking to a SCIM target, named with Entra's log error codes (entra-behaviour.md 1.8).

Every failure of :class:`~provisor.engine.targets.scim_client.ScimTarget` is a :class:`TargetError`
carrying the error ``code`` Entra's provisioning logs show, the HTTP ``status`` (if any), whether the
engine may retry it in a later cycle (``retryable``, 1.8 "retried in 40 minutes" / 2.8 escrows) and
whether it quarantines the job at once (``quarantine``, 2.9: credentials and SCIM compliance problems).

``outcome_unknown`` marks a non-idempotent request (a POST) that may have reached the target: the
engine must re-run query-before-create (1.3) rather than POST again. Messages never hold the token.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "Conflict",
    "InvalidCredentials",
    "MultipleEntries",
    "NotFoundError",
    "ProtocolError",
    "RequestRejected",
    "ScimComplianceError",
    "ServerError",
    "ServiceIncompatible",
    "TargetError",
    "TimeoutError_",
    "TooManyRequests",
    "error_for_status",
]


class TargetError(Exception):
    """A failed request to the target; ``str()`` is a message a person can act on."""

    default_code: ClassVar[str] = "InternalError"
    default_retryable: ClassVar[bool] = False
    quarantine: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
        detail: str | None = None,
        retry_after: float | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.status = status
        self.retryable = self.default_retryable if retryable is None else retryable
        self.detail = detail
        self.retry_after = retry_after
        self.outcome_unknown = outcome_unknown

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, message={self.message!r})"


class InvalidCredentials(TargetError):
    """401/403: the Secret Token is wrong, expired or lacks rights; quarantines the job (2.9)."""

    default_code = "Unauthorized"
    quarantine = True


class NotFoundError(TargetError):
    """404 on a resource the engine holds an id for: Entra logs ``InvalidAnchor`` (1.4)."""

    default_code = "InvalidAnchor"


class ServiceIncompatible(TargetError):
    """The answer is not the SCIM Entra expects: unparseable body, wrong shape, missing ``id`` (1.8)."""

    default_code = "SystemForCrossDomainIdentityManagementServiceIncompatible"


class ScimComplianceError(ServiceIncompatible):
    """404 on a query instead of 200 + empty ListResponse: a quarantine reason (1.2 step 4, Q14)."""

    quarantine = True


class MultipleEntries(ServiceIncompatible):
    """A query returned what was excluded (members despite ``excludedAttributes=members``, 1.6, Q10)."""

    default_code = "SystemForCrossDomainIdentityManagementMultipleEntriesInResponse"


class Conflict(TargetError):
    """409 (or 400 ``scimType: uniqueness``): a uniqueness clash the admin must fix (1.8)."""

    default_code = "EntryConflict"


class RequestRejected(TargetError):
    """Any other 4xx: 400, 405 ``MethodNotAllowed``, 422 ``UnprocessableEntity`` ... (1.8)."""

    default_code = "UnprocessableEntity"


class TooManyRequests(TargetError):
    """429: "automatically retried" (1.8, 4.3); ``retry_after`` holds the target's hint in seconds."""

    default_code = "TooManyRequests"
    default_retryable = True


class ServerError(TargetError):
    """5xx: retried in a later cycle (1.8)."""

    default_code = "InternalServerError"
    default_retryable = True


class TimeoutError_(TargetError):
    """The target did not answer within the timeout (1.8 ``Timeout``)."""

    default_code = "Timeout"
    default_retryable = True


class ProtocolError(TargetError):
    """Connection refused, reset or closed mid-answer (1.8 ``WebExceptionProtocolError``)."""

    default_code = "WebExceptionProtocolError"
    default_retryable = True


_REJECTED_CODES = {
    400: "BadRequest",
    405: "MethodNotAllowed",
    422: "UnprocessableEntity",
    501: "NotImplemented",
}


def error_for_status(
    status: int,
    context: str,
    *,
    detail: str | None = None,
    scim_type: str | None = None,
    query: bool = False,
    retry_after: float | None = None,
) -> TargetError:
    """The error for a non-success HTTP ``status`` (1.8's catalogue).

    ``context`` names the request (``"POST /Users"``); ``detail`` is the SCIM Error ``detail`` the
    target sent, appended to the message. ``query`` marks a filter query, whose 404 is a compliance
    problem rather than a missing resource (1.2 step 4).
    """
    suffix = f": {detail}" if detail else ""
    message = f"{context} failed with HTTP {status}{suffix}"
    if status == 401:
        return InvalidCredentials(message, code="Unauthorized", status=status, detail=detail)
    if status == 403:
        return InvalidCredentials(message, code="InsufficientRights", status=status, detail=detail)
    if status == 404 and query:
        return ScimComplianceError(
            f"{context} answered 404 instead of 200 with an empty ListResponse{suffix}",
            status=status,
            detail=detail,
        )
    if status == 404:
        return NotFoundError(message, status=status, detail=detail)
    if status == 409 or (status == 400 and scim_type == "uniqueness"):
        return Conflict(message, status=status, detail=detail)
    if status == 429:
        return TooManyRequests(message, retry_after=retry_after, status=status, detail=detail)
    if status == 501:
        return RequestRejected(message, code="NotImplemented", status=status, detail=detail)
    if status >= 500:
        return ServerError(message, retry_after=retry_after, status=status, detail=detail)
    return RequestRejected(
        message, code=_REJECTED_CODES.get(status, "UnprocessableEntity"), status=status, detail=detail
    )
