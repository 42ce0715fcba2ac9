"""Per-tenant rate limits: a token bucket for each tenant that has a limit (off by default).

A tenant's ``rate_limit`` setting is the requests a second it may send on average, and
``rate_burst`` how many it may send at once after a quiet spell (one second's worth when not
set). Every SCIM request the tenant's token authenticates takes one token from its bucket, a
Bulk request one per operation, all at once (a Bulk of more operations than the burst is
admitted by a full bucket and leaves it in debt, which the tenant's next requests wait out); a
bucket without enough answers 429 ``TooManyRequests`` with the whole seconds until enough tokens
are back in ``Retry-After``, and takes none. A request is refused before it touches anything; a
Bulk request after its body is read (its operations are counted there), a Bulk whose body is no
BulkRequest costing one token.

The buckets live in the server process (each worker has its own), are created on a tenant's first
request and cost a few dozen bytes each. A bucket that has refilled is the same as none, so every
:data:`SWEEP_SECONDS` those go: a tenant deleted, no longer limited or gone quiet leaves nothing.

Entra (entra-behaviour.md 4.3) paces only its gallery apps; against a custom app it sends what it
sends, retries a 429 later and may quarantine a job whose requests fail too often, and Microsoft
asks gallery apps to sustain at least 25 requests a second per tenant. A limit is for a shared
server's fairness between tenants, set well above what one provisioning job sends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from provisor.scim.errors import TooManyRequests


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``per_second`` requests a second on average, up to ``burst`` at once."""

    per_second: float
    burst: int


#: How often the buckets that have refilled are dropped.
SWEEP_SECONDS = 60.0


class _Bucket:
    __slots__ = ("limit", "stamp", "tokens")

    def __init__(self, tokens: float, stamp: float, limit: RateLimit) -> None:
        self.tokens = tokens
        self.stamp = stamp
        #: the limit it was last taken under: when it is full again (``RateLimiter._sweep``)
        self.limit = limit

    def full_at(self) -> float:
        return self.stamp + (self.limit.burst - self.tokens) / self.limit.per_second


class RateLimiter:
    """The token buckets of one server's tenants, on a monotonic clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._sweep_due = clock() + SWEEP_SECONDS

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, tenant_id: str, limit: RateLimit, cost: int = 1) -> None:
        """Take ``cost`` tokens from the tenant's bucket, or raise TooManyRequests and take none.

        A cost above the burst (a Bulk request of more operations than the burst, which would
        otherwise never be taken) waits for a full bucket and is then charged in full: the bucket
        goes into debt, and the tenant's next requests wait until it has refilled past it, so a
        Bulk buys no more writes a second than single requests do.
        """
        now = self._clock()
        if now >= self._sweep_due:
            self._sweep(now)
        cost = max(1, cost)
        bucket = self._buckets.get(tenant_id)
        if bucket is None:
            bucket = self._buckets[tenant_id] = _Bucket(float(limit.burst), now, limit)
        else:
            elapsed = max(0.0, now - bucket.stamp)
            bucket.tokens = min(float(limit.burst), bucket.tokens + elapsed * limit.per_second)
            bucket.stamp = now
            bucket.limit = limit
        needed = min(cost, limit.burst)
        if bucket.tokens >= needed:
            bucket.tokens -= cost  # below zero for a cost above the burst: a debt later requests repay
            return
        wait = math.ceil((needed - bucket.tokens) / limit.per_second)
        raise TooManyRequests(
            f"this tenant may send {limit.per_second:g} requests a second (up to {limit.burst} at once); "
            f"retry in {wait} s",
            retry_after=max(1, wait),
        )

    def _sweep(self, now: float) -> None:
        """Drop the buckets that are full by now: a tenant's next request starts a full one."""
        self._buckets = {t: b for t, b in self._buckets.items() if b.full_at() > now}
        self._sweep_due = now + SWEEP_SECONDS
