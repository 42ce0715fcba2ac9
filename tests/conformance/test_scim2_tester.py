"""scim2-tester's full check suite (`check_server`) against a live server and a fresh, empty tenant.

Every check must end SUCCESS, COMPLIANT or ACCEPTABLE; SKIPPED, DEVIATION, ERROR and CRITICAL fail the test.
The tenant must be empty: the list and search checks look for what they created on the first page only.
"""

from __future__ import annotations

from collections import Counter

import pytest

httpx2 = pytest.importorskip("httpx2", reason="scim2-client's httpx2 engine is not installed")
scim2_client_httpx2 = pytest.importorskip("scim2_client.engines.httpx2")
scim2_tester = pytest.importorskip("scim2_tester")

PASSING = {"SUCCESS", "COMPLIANT", "ACCEPTABLE"}


def test_scim2_tester_check_server(live_server: tuple[str, str]) -> None:
    base_url, token = live_server
    with httpx2.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        client = scim2_client_httpx2.SyncSCIMClient(http)
        # Describe the server first: without it, check_server may silently run no resource checks.
        client.discover()
        results = scim2_tester.check_server(client)

    statuses = Counter(r.status.name for r in results)
    failing = [r for r in results if r.status.name not in PASSING]
    report = "\n".join(
        f"{r.status.name:10s} {r.resource_type or '-':6s} {r.title}: {r.reason}" for r in failing
    )
    print(f"scim2-tester: {len(results)} checks, {dict(statuses)}")
    if report:
        print(report)
    assert len(results) > 25, f"only {len(results)} checks ran: the resource checks did not run\n{report}"
    assert not failing, f"{len(failing)} of {len(results)} scim2-tester checks did not pass:\n{report}"
