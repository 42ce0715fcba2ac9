"""scim2-tester's full check suite (`check_server`) against a live server and a fresh, empty tenant.

Every check must end SUCCESS, COMPLIANT or ACCEPTABLE; SKIPPED, DEVIATION, ERROR and CRITICAL fail the test.
The tenant must be empty: the list and search checks look for what they created on the first page only.
"""

from __future__ import annotations

import pytest
from tests.conformance.conftest import scim2_tester_report

pytest.importorskip("httpx2", reason="scim2-client's httpx2 engine is not installed")
pytest.importorskip("scim2_client.engines.httpx2")
pytest.importorskip("scim2_tester")


def test_scim2_tester_check_server(live_server: tuple[str, str]) -> None:
    base_url, token = live_server
    # more than 25: the resource checks ran, not only discovery's
    scim2_tester_report(base_url, token, minimum=26)
