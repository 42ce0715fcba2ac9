"""Per-tenant rate limits (server/ratelimit.py): token buckets, 429 with Retry-After, off by default."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.conftest import USER, LiveServer, assert_scim_error, create_user, make_user

from provisor.scim.errors import TooManyRequests
from provisor.server.ratelimit import SWEEP_SECONDS, RateLimit, RateLimiter
from provisor.server.tenancy import context_for
from provisor.store.base import Query, Tenant


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_starts_full_empties_and_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    limit = RateLimit(per_second=2.0, burst=3)
    for _ in range(3):
        limiter.take("t", limit)
    with pytest.raises(TooManyRequests) as refused:
        limiter.take("t", limit)
    assert refused.value.status == 429 and refused.value.retry_after == 1
    assert "2 requests a second" in refused.value.detail
    clock.now += 0.5  # one token back
    limiter.take("t", limit)
    with pytest.raises(TooManyRequests):
        limiter.take("t", limit)
    clock.now += 60  # never more than the burst
    for _ in range(3):
        limiter.take("t", limit)
    with pytest.raises(TooManyRequests):
        limiter.take("t", limit)


def test_buckets_are_per_tenant_and_a_refusal_takes_nothing() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    limit = RateLimit(per_second=1.0, burst=2)
    limiter.take("a", limit, cost=2)
    limiter.take("b", limit, cost=2)  # another tenant's bucket is full still
    clock.now += 1.0
    with pytest.raises(TooManyRequests) as refused:
        limiter.take("a", limit, cost=2)  # one token back, two wanted
    assert refused.value.retry_after == 1
    limiter.take("a", limit)  # the refusal took none: the one token is there


def test_a_cost_above_the_burst_waits_for_a_full_bucket_and_leaves_a_debt() -> None:
    """A cost above the burst is admitted by a full bucket and charged in full: the debt is
    waited out by the tenant's next requests, so a Bulk buys no more writes a second (the
    review: with the charge capped at the burst, 1 a second and burst 5 let 2,000 Bulk writes
    through in 10.5 s)."""
    clock = Clock()
    limiter = RateLimiter(clock)
    limit = RateLimit(per_second=0.5, burst=4)
    limiter.take("t", limit, cost=100)  # a full bucket admits it: 4 - 100 = -96 tokens
    with pytest.raises(TooManyRequests) as refused:
        limiter.take("t", limit)
    assert refused.value.retry_after == 194  # (1 + 96) tokens at 0.5 a second
    clock.now += 193
    with pytest.raises(TooManyRequests):
        limiter.take("t", limit)
    clock.now += 1
    limiter.take("t", limit)
    with pytest.raises(TooManyRequests) as refused:
        limiter.take("t", limit, cost=100)  # the next large one waits for a full bucket again
    assert refused.value.retry_after == 8


def test_buckets_that_have_refilled_are_dropped_and_a_dropped_one_starts_full() -> None:
    """A bucket full again is the same as none: those of tenants gone quiet, deleted or no longer
    limited go at the next sweep; one still refilling (a debt, a recent request) stays."""
    clock = Clock()
    limiter = RateLimiter(clock)
    quick, slow = RateLimit(per_second=10.0, burst=10), RateLimit(per_second=0.01, burst=2)
    for i in range(100):
        limiter.take(f"gone-{i}", quick, cost=10)  # emptied; full again a second later
    limiter.take("slow", slow, cost=2)  # full again after 200 s
    assert len(limiter) == 101
    clock.now += SWEEP_SECONDS
    limiter.take("busy", quick)
    assert len(limiter) == 2  # "slow" is refilling still, "busy" just took
    with pytest.raises(TooManyRequests):
        limiter.take("slow", slow)  # kept: its emptiness is remembered
    limiter.take("brief", quick, cost=10)  # full again a second later
    clock.now += SWEEP_SECONDS - 1
    limiter.take("busy", quick)
    assert len(limiter) == 3  # the sweep is at most once a SWEEP_SECONDS: none since
    clock.now += 200
    limiter.take("busy", quick)
    assert len(limiter) == 1  # "slow" and "brief" refilled meanwhile
    limiter.take("gone-0", quick, cost=10)  # a dropped bucket comes back full


def _tenant(settings: dict[str, Any]) -> Tenant:
    from datetime import UTC, datetime

    return Tenant("id", "name", settings, datetime.now(UTC))


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, None),
        ({"rate_limit": 10}, RateLimit(10.0, 10)),
        ({"rate_limit": 0.5}, RateLimit(0.5, 1)),
        ({"rate_limit": 2.5, "rate_burst": 20}, RateLimit(2.5, 20)),
        ({"rate_limit": 10, "rate_burst": 0}, RateLimit(10.0, 10)),
        ({"rate_limit": 10, "rate_burst": "x"}, RateLimit(10.0, 10)),
        ({"rate_limit": 0}, None),
        ({"rate_limit": -1}, None),
        ({"rate_limit": True}, None),
        ({"rate_limit": "10"}, None),
        ({"rate_limit": float("inf")}, None),
        ({"rate_limit": float("nan")}, None),
    ],
)
def test_rate_settings_compile_or_fall_back_to_no_limit(settings: dict[str, Any], expected: Any) -> None:
    """Hand-edited or odd settings never fail a request: a limit that is not a positive number is
    no limit, a burst that is not a positive integer is one second's worth."""
    assert context_for(_tenant(settings), 1000).rate_limit == expected


def test_a_tenant_over_its_limit_gets_429_and_nothing_changes(live: LiveServer) -> None:
    _, token = live.new_tenant({"rate_limit": 0.01, "rate_burst": 3})
    _, other = live.new_tenant({"rate_limit": 0.01, "rate_burst": 3})
    with live.client(token) as client, live.client(other) as neighbour:
        made = create_user(client, "limited@x.com")
        assert client.get(f"/Users/{made['id']}").status_code == 200
        assert client.get("/ServiceProviderConfig").status_code == 200  # every request counts
        r = client.post("/Users", json=make_user("refused@x.com"))
        assert_scim_error(r, 429)
        assert int(r.headers["retry-after"]) >= 1
        assert "requests a second" in r.json()["detail"]
        assert_scim_error(client.get("/Users"), 429)
        # another tenant has its own bucket; a stranger is refused for its token, not counted
        found = neighbour.get("/Users", params={"filter": 'userName eq "refused@x.com"'}).json()
        assert found["totalResults"] == 0
        with live.client("not-a-token") as stranger:
            assert_scim_error(stranger.get("/Users"), 401)


def test_a_bulk_request_takes_one_token_per_operation(live: LiveServer) -> None:
    tenant_id, token = live.new_tenant({"rate_limit": 0.01, "rate_burst": 4})
    ops = [
        {"method": "POST", "path": "/Users", "bulkId": f"b{i}", "data": make_user(f"bulk{i}@x.com")}
        for i in range(3)
    ]
    bulk = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}
    with live.client(token) as client:
        assert client.post("/Bulk", json=bulk).status_code == 200  # 3 of the 4 tokens
        assert client.get("/ServiceProviderConfig").status_code == 200  # the 4th
        again = {**bulk, "Operations": [{**op, "data": make_user("late@x.com")} for op in ops[:1]]}
        assert_scim_error(client.post("/Bulk", json=again), 429)
    # the three users of the first request, and nothing of the refused one
    assert live.store.search(tenant_id, "User", Query(count=0)).total == 3


def test_a_limit_set_on_a_running_server_applies_and_can_be_removed(live: LiveServer) -> None:
    tenant_id, token = live.new_tenant()
    with live.client(token) as client:
        for _ in range(5):
            assert client.get("/ServiceProviderConfig").status_code == 200
        live.store.update_settings(tenant_id, {"rate_limit": 0.01, "rate_burst": 1})
        time.sleep(0.3)  # the token cache (0.2 s in tests) hands over the new settings
        assert client.get("/ServiceProviderConfig").status_code == 200
        assert_scim_error(client.get("/ServiceProviderConfig"), 429)
        live.store.update_settings(tenant_id, {"rate_limit": None, "rate_burst": None})
        time.sleep(0.3)
        for _ in range(5):
            assert client.get("/ServiceProviderConfig").status_code == 200
        assert client.post("/Users", json={"schemas": [USER], "userName": "free@x.com"}).status_code == 201


def _bulk(key: str, user_names: list[str]) -> dict[str, Any]:
    ops = [
        {"method": "POST", "path": "/Users", "bulkId": f"b{i}", "data": make_user(name)}
        for i, name in enumerate(user_names)
    ]
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], key: ops}


@pytest.mark.parametrize("key", ["operations", "OPERATIONS", "oPeRaTiOnS"])
def test_a_bulk_pays_for_its_operations_whatever_the_case_of_their_name(live: LiveServer, key: str) -> None:
    """The processor runs the operations under any spelling of ``Operations``, so the limit
    charges them under any (audit: a lower-case key cost one token for 100 operations)."""
    tenant_id, token = live.new_tenant({"rate_limit": 0.01, "rate_burst": 4})
    with live.client(token) as client:
        r = client.post("/Bulk", json=_bulk(key, [f"{key}{i}@x.com" for i in range(3)]))
        assert r.status_code == 200 and len(r.json()["Operations"]) == 3
        assert client.get("/ServiceProviderConfig").status_code == 200  # the 4th token
        assert_scim_error(client.post("/Bulk", json=_bulk(key, [f"{key}-late@x.com"])), 429)
    assert live.store.search(tenant_id, "User", Query(count=0)).total == 3


def test_a_bulk_larger_than_the_burst_passes_on_a_full_bucket(live: LiveServer) -> None:
    """A whole Bulk is charged once, in full: a full bucket admits it and is in debt after
    (audit: with burst 5, a Bulk of 6 was refused however long the tenant waited)."""
    tenant_id, token = live.new_tenant({"rate_limit": 0.01, "rate_burst": 5})
    with live.client(token) as client:
        r = client.post("/Bulk", json=_bulk("Operations", [f"big{i}@x.com" for i in range(8)]))
        assert r.status_code == 200, r.text
        assert [op["status"] for op in r.json()["Operations"]] == ["201"] * 8
        refused = client.get("/ServiceProviderConfig")
        assert_scim_error(refused, 429)  # the bucket is 3 tokens in debt
        assert int(refused.headers["retry-after"]) == 400  # 4 tokens at 0.01 a second
    assert live.store.search(tenant_id, "User", Query(count=0)).total == 8


def test_a_refused_bulk_takes_nothing_and_a_bad_one_costs_one(live: LiveServer) -> None:
    tenant_id, token = live.new_tenant({"rate_limit": 0.01, "rate_burst": 5})
    with live.client(token) as client:
        assert client.get("/ServiceProviderConfig").status_code == 200  # 4 tokens left
        five = _bulk("Operations", [f"w{i}@x.com" for i in range(5)])
        assert_scim_error(client.post("/Bulk", json=five), 429)
        assert_scim_error(client.post("/Bulk", content=b"not json"), 400)  # one token: 3 left
        assert_scim_error(client.post("/Bulk", json={"schemas": []}), 400)  # one more: 2 left
        r = client.post("/Bulk", json=_bulk("Operations", ["v1@x.com", "v2@x.com"]))
        assert r.status_code == 200, r.text  # the refusal took none of them
        assert_scim_error(client.get("/ServiceProviderConfig"), 429)
    assert live.store.search(tenant_id, "User", Query(count=0)).total == 2
