"""How long to wait before retrying a request to the target (entra-behaviour.md 1.8, 4.3).

429 answers are "automatically retried" honouring ``Retry-After`` (4.3), given either as seconds or
as an HTTP-date (RFC 9110 section 10.2.3), capped so a hostile or buggy target cannot park a cycle.
5xx answers, connection errors and timeouts use exponential backoff with full jitter: the n-th retry
waits a uniformly random time in ``[0, min(cap, base * 2**n)]``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = ["RetryPolicy", "parse_retry_after"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_retries`` retries after the first attempt; delays in seconds."""

    max_retries: int = 5
    base: float = 0.5
    cap: float = 30.0
    retry_after_cap: float = 300.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base < 0 or self.cap < 0 or self.retry_after_cap < 0:
            raise ValueError("retry settings must not be negative")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """The delay before retry number ``retry`` (0-based): full jitter over the exponential bound."""
        bound = min(self.cap, self.base * 2.0 ** min(retry, 62))
        return rng.uniform(0.0, bound)

    def honour(self, retry_after: float) -> float:
        """A target's ``Retry-After`` in seconds, capped at ``retry_after_cap``."""
        return min(max(retry_after, 0.0), self.retry_after_cap)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now`` (a POSIX timestamp), or ``None`` when absent or invalid.

    ``delay-seconds`` is a non-negative integer; an HTTP-date in the past means "now" (0).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; an obsolete zone-less form is read as such
        return None
    return max(0.0, when.timestamp() - now)
