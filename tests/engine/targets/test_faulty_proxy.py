"""200 creates + patches through a proxy failing 20% of requests end right and without duplicates.

The loop below is what the engine's cycles do (entra-behaviour.md 1.3, 2.8): query-before-create,
then PATCH; a retryable failure is escrowed and the object is tried again next cycle, starting
again from the match query, so a POST whose answer was lost is found rather than re-sent.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from tests.conftest import ENTERPRISE, USER, LiveServer
from tests.engine.targets.faulty_proxy import FaultyProxy

from provisor.engine.targets import PatchOperation, ScimTarget, TargetError

pytestmark = pytest.mark.slow

COUNT = 200
#: The client's whole-request timeout: what ends the proxy's held answers ("delay"), and room for
#: the answers that pass on a busy 2-CPU machine (0.3 s timed most of them out there: no converging).
TIMEOUT = 2.0
#: A held answer is let go after this long should the client never give up (a liveness bound).
HOLD = 60.0


def desired(i: int) -> tuple[dict[str, Any], list[PatchOperation]]:
    body = {
        "schemas": [USER, ENTERPRISE],
        "externalId": f"ext-{i}",
        "userName": f"fp{i}@contoso.com",
        "active": True,
        "displayName": f"Person {i}",
    }
    ops = [
        PatchOperation("replace", "displayName", f"Person {i} (updated)"),
        PatchOperation("replace", f"{ENTERPRISE}:employeeNumber", str(1000 + i)),
        PatchOperation("replace", "active", i % 3 != 0),
    ]
    return body, ops


async def converge(target: ScimTarget, proxy: FaultyProxy, max_cycles: int = 15) -> tuple[int, Counter[str]]:
    ids: dict[int, str] = {}
    pending = set(range(COUNT))
    escrows: Counter[str] = Counter()

    async def one(i: int) -> None:
        body, ops = desired(i)
        if i not in ids:
            found = await target.find("user", "userName", body["userName"])
            assert len(found) <= 1, f"duplicate target entries for {body['userName']}"
            ids[i] = found[0]["id"] if found else (await target.create("user", body))["id"]
        await target.patch("user", ids[i], ops)
        pending.discard(i)

    cycles = 0
    while pending and cycles < max_cycles:
        cycles += 1
        results = await asyncio.gather(*(one(i) for i in sorted(pending)), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                assert isinstance(result, TargetError) and result.retryable, repr(result)
                escrows[result.code] += 1
        await proxy.quiesce()  # the gap between cycles: nothing left in flight
    assert not pending, f"{len(pending)} objects never converged"
    return cycles, escrows


def test_200_objects_through_20_percent_faults(live: LiveServer) -> None:
    _, token = live.new_tenant()
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    async def main() -> tuple[FaultyProxy, Any, int, Counter[str]]:
        upstream = live.root
        async with FaultyProxy(upstream, fault_rate=0.2, seed=20240601, delay=HOLD, retry_after="2") as proxy:
            base = proxy.url + "/scim/v2"
            async with ScimTarget(
                base, token, timeout=TIMEOUT, max_retries=4, concurrency=8, sleep=fake_sleep
            ) as target:
                cycles, escrows = await converge(target, proxy)
                return proxy, target.stats, cycles, escrows

    proxy, stats, cycles, escrows = asyncio.run(main())

    # every kind of fault happened, and clients saw them
    injected = proxy.faults_injected()
    assert set(injected) == {"429", "500", "delay", "drop"}, injected
    total = len(proxy.log)
    assert 0.12 < sum(injected.values()) / total < 0.28
    assert stats.retries["TooManyRequests"] >= 1 and 2.0 in delays  # Retry-After honoured
    assert stats.count("POST", "Timeout") + stats.count("POST", "WebExceptionProtocolError") >= 1

    # no POST ever reached the server twice for one object: 200 created, zero uniqueness clashes
    upstream_posts = Counter(r.upstream_status for r in proxy.log if r.method == "POST" and r.upstream_status)
    assert upstream_posts == {201: COUNT}, upstream_posts
    assert cycles >= 2 or not escrows

    # and the server holds exactly the desired objects
    with httpx.Client(base_url=live.base, headers={"Authorization": f"Bearer {token}"}) as client:
        listed = client.get("/Users", params={"count": 1000}).json()
    users = {u["userName"]: u for u in listed["Resources"]}
    assert listed["totalResults"] == COUNT and len(users) == COUNT
    for i in range(COUNT):
        body, _ = desired(i)
        user = users[body["userName"]]
        assert user["displayName"] == f"Person {i} (updated)"
        assert user[ENTERPRISE]["employeeNumber"] == str(1000 + i)
        assert user["active"] is (i % 3 != 0)
        assert user["externalId"] == f"ext-{i}"


def test_proxy_passes_through_without_faults(live: LiveServer) -> None:
    _, token = live.new_tenant()

    async def main() -> list[Any]:
        async with FaultyProxy(live.root, fault_rate=0.0) as proxy:
            async with ScimTarget(proxy.url + "/scim/v2", token) as target:
                await target.test_connection()
                made = await target.create(
                    "user", {"schemas": [USER], "userName": "pt@x.org", "active": True}
                )
                return [made, await target.get("user", made["id"]), proxy.log]

    made, fetched, log = asyncio.run(main())
    assert fetched == made
    assert [(r.method, r.fault, r.upstream_status) for r in log] == [
        ("GET", None, 200),
        ("GET", None, 200),
        ("POST", None, 201),
        ("GET", None, 200),
    ]
