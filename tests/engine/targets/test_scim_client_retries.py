"""Retries, timeouts, concurrency and stats of ScimTarget (entra-behaviour.md 1.8, 4.3)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from provisor.engine.targets import (
    ProtocolError,
    ScimTarget,
    ServerError,
    TimeoutError_,
    TooManyRequests,
)

BASE = "https://app.example/scim/v2"
LIST = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0, "Resources": []}
USER = {"id": "u1", "userName": "a"}


class Top(random.Random):
    """Jitter that always picks the upper bound, to see the exponential envelope."""

    def uniform(self, a: float, b: float) -> float:
        return b


def script(*steps: Any) -> Callable[[httpx.Request], Any]:
    """Answer each request with the next step: a Response, or an exception to raise."""
    it: Iterator[Any] = iter(steps)

    def handler(request: httpx.Request) -> httpx.Response:
        step = next(it)
        if isinstance(step, Exception):
            raise step
        return step

    return handler


def run(handler: Callable[[httpx.Request], Any], action: Callable[[ScimTarget], Any], **options: Any):
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    async def main() -> tuple[Any, Any]:
        target = ScimTarget(BASE, "tok", transport=httpx.MockTransport(handler), sleep=fake_sleep, **options)
        try:
            try:
                result: Any = await action(target)
            except Exception as exc:  # returned for inspection
                result = exc
            return result, target.stats
        finally:
            await target.aclose()

    result, stats = asyncio.run(main())
    return result, delays, stats


def test_429_honours_retry_after_seconds_exactly() -> None:
    handler = script(httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json=USER))
    result, delays, stats = run(handler, lambda t: t.get("user", "u1"))
    assert result == USER
    assert delays == [7.0]
    assert stats.count("GET", 429) == 1 and stats.count("GET", 200) == 1
    assert stats.retries == {"TooManyRequests": 1} and stats.retry_delay == 7.0


def test_429_honours_retry_after_http_date() -> None:
    now = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)
    date = format_datetime(datetime(2025, 3, 1, 8, 0, 42, tzinfo=UTC), usegmt=True)
    handler = script(httpx.Response(429, headers={"Retry-After": date}), httpx.Response(200, json=USER))
    result, delays, _ = run(handler, lambda t: t.get("user", "u1"), clock=now.timestamp)
    assert result == USER and delays == [42.0]


def test_retry_after_is_capped() -> None:
    handler = script(httpx.Response(429, headers={"Retry-After": "86400"}), httpx.Response(200, json=LIST))
    _, delays, _ = run(handler, lambda t: t.find("user", "userName", "a"))
    assert delays == [300.0]


def test_429_is_retried_even_for_post_it_was_not_processed() -> None:
    handler = script(httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(201, json={"id": "n"}))
    result, delays, stats = run(handler, lambda t: t.create("user", {"userName": "a"}))
    assert result == {"id": "n"} and delays == [2.0]
    assert stats.count("POST", 201) == 1


def test_persistent_429_raises_too_many_requests_with_the_hint() -> None:
    handler = script(*[httpx.Response(429, headers={"Retry-After": "3"})] * 3)
    result, delays, stats = run(handler, lambda t: t.get("user", "u1"), max_retries=2)
    assert isinstance(result, TooManyRequests)
    assert result.retryable and result.retry_after == 3.0 and result.code == "TooManyRequests"
    assert delays == [3.0, 3.0] and stats.count("GET", 429) == 3


def test_5xx_backoff_grows_exponentially_to_the_cap() -> None:
    handler = script(*[httpx.Response(503)] * 9)
    result, delays, stats = run(handler, lambda t: t.get("user", "u1"), max_retries=8, rng=Top())
    assert isinstance(result, ServerError) and result.code == "InternalServerError" and result.retryable
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert stats.count("GET", 503) == 9 and stats.total_retries == 8


def test_jitter_stays_within_bounds() -> None:
    handler = script(*[httpx.Response(500)] * 6)
    result, delays, _ = run(handler, lambda t: t.get("user", "u1"), rng=random.Random(1))
    assert isinstance(result, ServerError)
    assert len(delays) == 5
    assert all(0 <= d <= 0.5 * 2**n for n, d in enumerate(delays))
    assert len(set(delays)) == 5  # jittered, not constant


def test_5xx_then_success_for_idempotent_patch_and_delete() -> None:
    handler = script(httpx.Response(502), httpx.Response(204))
    result, delays, _ = run(handler, lambda t: t.delete("user", "u1"), rng=Top())
    assert result is True and delays == [0.5]


def test_post_after_5xx_is_not_retried_outcome_unknown() -> None:
    handler = script(httpx.Response(500, json={"detail": "db hiccup"}), httpx.Response(201, json={"id": "x"}))
    result, delays, stats = run(handler, lambda t: t.create("user", {"userName": "a"}))
    assert isinstance(result, ServerError)
    assert result.retryable and result.outcome_unknown and "db hiccup" in str(result)
    assert delays == [] and stats.count("POST", 500) == 1 and stats.total_requests == 1


def test_post_after_read_timeout_is_not_retried() -> None:
    handler = script(httpx.ReadTimeout("slow"), httpx.Response(201, json={"id": "x"}))
    result, delays, stats = run(handler, lambda t: t.create("user", {"userName": "a"}))
    assert isinstance(result, TimeoutError_)
    assert result.code == "Timeout" and result.retryable and result.outcome_unknown
    assert "query-before-create" in str(result)
    assert delays == [] and stats.count("POST", "Timeout") == 1


def test_post_after_dropped_connection_is_not_retried() -> None:
    handler = script(httpx.RemoteProtocolError("Server disconnected"), httpx.Response(201, json={"id": "x"}))
    result, delays, _ = run(handler, lambda t: t.create("user", {}))
    assert isinstance(result, ProtocolError) and result.outcome_unknown
    assert result.code == "WebExceptionProtocolError" and delays == []


def test_post_is_retried_when_it_surely_never_reached_the_target() -> None:
    handler = script(
        httpx.ConnectError("refused"), httpx.ConnectTimeout("syn"), httpx.Response(201, json={"id": "x"})
    )
    result, delays, stats = run(handler, lambda t: t.create("user", {}), rng=Top())
    assert result == {"id": "x"} and delays == [0.5, 1.0]
    assert stats.retries == {"WebExceptionProtocolError": 1, "Timeout": 1}


def test_get_after_read_timeout_and_reset_is_retried() -> None:
    handler = script(httpx.ReadTimeout("slow"), httpx.ReadError("reset"), httpx.Response(200, json=USER))
    result, delays, _ = run(handler, lambda t: t.get("user", "u1"), rng=Top())
    assert result == USER and delays == [0.5, 1.0]


def test_connection_errors_exhaust_into_protocol_error() -> None:
    handler = script(*[httpx.ConnectError("refused")] * 3)
    result, delays, _ = run(handler, lambda t: t.get("user", "u1"), max_retries=2)
    assert isinstance(result, ProtocolError) and result.retryable and not result.outcome_unknown
    assert len(delays) == 2


def test_delete_retried_after_timeout_then_404_is_already_gone() -> None:
    handler = script(httpx.ReadTimeout("slow"), httpx.Response(404))
    result, _, _ = run(handler, lambda t: t.delete("user", "u1"))
    assert result is False


def test_whole_request_timeout_with_a_slow_target() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(1.0)
        return httpx.Response(201, json={"id": "late"})

    result, delays, _ = run(slow, lambda t: t.create("user", {}), timeout=0.05)
    assert isinstance(result, TimeoutError_) and result.outcome_unknown and delays == []


def test_concurrency_is_bounded() -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json=USER)

    async def many(target: ScimTarget) -> list[Any]:
        return await asyncio.gather(*(target.get("user", f"u{i}") for i in range(20)))

    result, _, stats = run(handler, many, concurrency=3)
    assert len(result) == 20 and peak == 3
    assert stats.count("GET", 200) == 20


@pytest.mark.parametrize("bad", [{"concurrency": 0}, {"member_batch": 0}, {"timeout": 0}])
def test_bad_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ScimTarget(BASE, "tok", **bad)
