"""Escrows: per-object failures retried "with gradually decreasing frequency" (entra-behaviour.md 2.8).

Pure rules; the caller passes the time in. When an object's create, update, disable or delete fails,
the engine stores ``next_escrow(previous, ...)``; at the start of every cycle it retries the escrowed
objects that are :func:`due` (``next_attempt <= cycle start``) and clears the escrow of an object
that then succeeds. Restart with scope ``Escrows`` forgets them all (G-CRIT, 2.10).

The delay before the next retry depends on the error class (1.8, LOGA) and on the attempt number
(``attempts`` after this failure); ``0`` means "the next cycle" (about 40 minutes, 2.5):

=================  ==================================================  ====================
class              codes                                                attempt 1, 2, 3, ...
=================  ==================================================  ====================
``THROTTLED``      ``TooManyRequests`` (429, "retried automatically")  next cycle, always
``TRANSIENT``      5xx, ``Timeout``, ``WebExceptionProtocolError``,     next cycle x 3, 2 h,
                   ``InternalError`` ("retried in 40 minutes")          6 h, 12 h, 24 h ...
``FIX_NEEDED``     everything else: ``EntryConflict``, ``BadRequest``,  next cycle, 6 h, 12 h,
                   ``InvalidAnchor``, missing attributes ...            24 h ...
=================  ==================================================  ====================

A transient error is likely to clear by itself, so it is retried eagerly before backing off; an
error the admin must fix (uniqueness clash, rejected value) gets one quick retry (an ordering
problem, such as a manager created later in the same cycle, clears then) and backs off faster.
Every schedule is capped at one retry a day. A change to the object in the source is processed by
the next incremental cycle whatever its escrow says.

A user whose manager link failed (the reference round, 1.3 step 5) has a *reference* escrow: it is
retried with the user when due, and it ends when the link is made or no longer wanted (no
manager, or one out of scope), not when the user's own update succeeds, so its backoff goes on
counting. A failed group member update is the group's escrow (retried with the group), counted as
a reference failure for quarantine (2.9). An escrowed object settled without a success ends its
escrow too: gone from the source with no account, deleted, disabled, or out of scope with nothing
to deprovision; it is not looked up again.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Final

from provisor.engine.model import ObjectKind
from provisor.engine.state import Escrow

__all__ = ["RetryClass", "backoff", "due", "next_escrow", "retry_class"]


class RetryClass(enum.StrEnum):
    """How an error code is retried (1.8, LOGA)."""

    THROTTLED = "throttled"
    TRANSIENT = "transient"
    FIX_NEEDED = "fix-needed"


_NEXT_CYCLE: Final = timedelta(0)
_SCHEDULES: Final[dict[RetryClass, tuple[timedelta, ...]]] = {
    RetryClass.THROTTLED: (_NEXT_CYCLE,),
    RetryClass.TRANSIENT: (
        _NEXT_CYCLE,
        _NEXT_CYCLE,
        _NEXT_CYCLE,
        timedelta(hours=2),
        timedelta(hours=6),
        timedelta(hours=12),
        timedelta(hours=24),
    ),
    RetryClass.FIX_NEEDED: (_NEXT_CYCLE, timedelta(hours=6), timedelta(hours=12), timedelta(hours=24)),
}

_THROTTLED_CODES: Final = frozenset({"toomanyrequests"})
_TRANSIENT_CODES: Final = frozenset(
    {
        "internalerror",
        "internalservererror",
        "servererror",
        "serviceunavailable",
        "badgateway",
        "gatewaytimeout",
        "timeout",
        "webexceptionprotocolerror",
        "protocolerror",
    }
)


def retry_class(code: str) -> RetryClass:
    """The retry class of an error ``code`` (Entra's log code, or ``HTTP 503`` style status text)."""
    low = code.strip().lower()
    if low in _THROTTLED_CODES or low in ("429", "http 429"):
        return RetryClass.THROTTLED
    if low in _TRANSIENT_CODES:
        return RetryClass.TRANSIENT
    status = low.removeprefix("http").strip()
    if status.isdigit() and 500 <= int(status) <= 599 and status != "501":
        return RetryClass.TRANSIENT
    return RetryClass.FIX_NEEDED


def backoff(code: str, attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure (1-based) with ``code``; 0 means the next cycle."""
    if attempts < 1:
        raise ValueError("attempts starts at 1")
    schedule = _SCHEDULES[retry_class(code)]
    return schedule[min(attempts, len(schedule)) - 1]


def next_escrow(
    previous: Escrow | None,
    *,
    kind: ObjectKind,
    anchor: str,
    code: str,
    message: str,
    now: datetime,
    reference: bool = False,
) -> Escrow:
    """The escrow of an object that failed at ``now``: ``previous`` (its last escrow, if any) plus one
    attempt, the latest error, and the next retry time from :func:`backoff`."""
    if previous is not None and (previous.kind is not kind or previous.anchor != anchor):
        raise ValueError(
            f"escrow of {previous.kind.value} {previous.anchor!r} is not {kind.value} {anchor!r}"
        )
    attempts = 1 if previous is None else previous.attempts + 1
    return Escrow(
        kind=kind,
        anchor=anchor,
        attempts=attempts,
        next_attempt=now + backoff(code, attempts),
        code=code,
        message=message,
        reference=reference,
    )


def due(escrow: Escrow, now: datetime) -> bool:
    """Whether a cycle starting at ``now`` retries ``escrow``."""
    return escrow.next_attempt <= now
