"""Request traces: a tenant with tracing on keeps its last N requests and answers, with no header
and no password; other tenants keep nothing (``server/tracing.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from tests.conftest import PATCH_OP, USER, LiveServer, assert_scim_error, create_user, make_user

from provisor.server.tenancy import MAX_TRACE, context_for
from provisor.server.tracing import MAX_TRACED_BODY, REDACTED, traced_body
from provisor.store.base import Tenant


def body(value: Any) -> bytes:
    return orjson.dumps(value)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ({"userName": "a", "password": "p"}, {"userName": "a", "password": REDACTED}),
        ({"userName": "a", "PassWord": "p"}, {"userName": "a", "PassWord": REDACTED}),
        (
            {"Operations": [{"op": "replace", "path": "password", "value": "p"}]},
            {"Operations": [{"op": "replace", "path": "password", "value": REDACTED}]},
        ),
        (
            {"Operations": [{"op": "Replace", "Path": f"{USER}:password", "Value": "p"}]},
            {"Operations": [{"op": "Replace", "Path": f"{USER}:password", "Value": REDACTED}]},
        ),
        (
            {"Operations": [{"op": "replace", "value": {"password": "p", "displayName": "D"}}]},
            {"Operations": [{"op": "replace", "value": {"password": REDACTED, "displayName": "D"}}]},
        ),
        (
            {"Operations": [{"op": "replace", "path": "displayName", "value": "D"}]},
            {"Operations": [{"op": "replace", "path": "displayName", "value": "D"}]},
        ),
        (
            {
                "Operations": [
                    {"method": "POST", "path": "/Users", "data": {"password": "p", "userName": "b"}}
                ]
            },
            {
                "Operations": [
                    {"method": "POST", "path": "/Users", "data": {"password": REDACTED, "userName": "b"}}
                ]
            },
        ),
        ([{"password": ["p", "q"]}], [{"password": REDACTED}]),
    ],
)
def test_passwords_never_reach_a_trace(sent: Any, kept: Any) -> None:
    text = traced_body(body(sent))
    assert text is not None and orjson.loads(text) == kept
    assert '"p"' not in text and '"q"' not in text


def test_what_a_trace_keeps_of_a_body() -> None:
    assert traced_body(None) is None and traced_body(b"") is None
    refused = traced_body(b'{"userName": "a", "password": "p"')  # not JSON: nothing of it is kept
    assert refused is not None and "password" not in refused and "userName" not in refused
    assert refused.startswith("(33 bytes that are not JSON")
    big = traced_body(body({"displayName": "x" * (MAX_TRACED_BODY + 100)}))
    assert big is not None and len(big) < MAX_TRACED_BODY + 100
    assert big.endswith(f"(cut: {MAX_TRACED_BODY + 118} characters in all)")


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (None, 0),
        (5, 5),
        (MAX_TRACE, MAX_TRACE),
        (MAX_TRACE + 1, 0),
        (0, 0),
        (-3, 0),
        (True, 0),
        ("5", 0),
        (2.5, 0),
    ],
)
def test_the_trace_setting_compiles_or_turns_tracing_off(setting: Any, expected: int) -> None:
    settings = {} if setting is None else {"trace": setting}
    assert context_for(Tenant("id", "name", settings, datetime.now(UTC)), 1000).trace == expected


def test_a_traced_tenant_keeps_its_last_requests_with_their_answers(live: LiveServer) -> None:
    tenant_id, token = live.new_tenant({"trace": 3})
    other_id, other = live.new_tenant()
    with live.client(token) as client, live.client(other) as neighbour:
        made = create_user(client, "traced@x.com", password="s3cret!")
        patch = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "password", "value": "n3w!"}],
        }
        assert client.patch(f"/Users/{made['id']}", json=patch).status_code == 200
        assert_scim_error(client.get("/Users", params={"filter": "userName eq"}), 400, "invalidFilter")
        assert client.get("/Users", params={"filter": 'userName eq "traced@x.com"'}).status_code == 200
        create_user(neighbour, "untraced@x.com")
    traces = live.store.traces(tenant_id)
    assert [(t.method, t.status) for t in traces] == [("PATCH", 200), ("GET", 400), ("GET", 200)]
    patched, refused, found = traces
    assert patched.target == f"/scim/v2/Users/{made['id']}"
    assert patched.request is not None and orjson.loads(patched.request)["Operations"][0]["value"] == REDACTED
    assert patched.response is not None and orjson.loads(patched.response)["id"] == made["id"]
    assert refused.target == "/scim/v2/Users?filter=userName+eq" and refused.request is None
    assert refused.response is not None and orjson.loads(refused.response)["scimType"] == "invalidFilter"
    assert found.response is not None and orjson.loads(found.response)["totalResults"] == 1
    for trace in traces:
        for text in (trace.target, trace.request or "", trace.response or ""):
            assert token not in text and "s3cret" not in text and "n3w!" not in text
    assert live.store.traces(other_id) == []
    assert [t.status for t in live.store.traces(tenant_id, limit=1)] == [200]


def test_a_refused_request_of_a_traced_tenant_is_traced_too(live: LiveServer) -> None:
    tenant_id, token = live.new_tenant({"trace": 10, "rate_limit": 0.01, "rate_burst": 1})
    with live.client(token) as client:
        assert client.post("/Users", json=make_user("first@x.com")).status_code == 201
        assert_scim_error(client.post("/Users", json=make_user("second@x.com")), 429)
    statuses = [t.status for t in live.store.traces(tenant_id)]
    assert statuses == [201, 429]
    with live.client("not-a-token") as stranger:  # no tenant: nothing to trace it under
        assert_scim_error(stranger.get("/Users"), 401)
    assert [t.status for t in live.store.traces(tenant_id)] == [201, 429]


def test_a_running_server_starts_and_stops_tracing_with_the_setting(live: LiveServer) -> None:
    import time

    tenant_id, token = live.new_tenant()
    with live.client(token) as client:
        assert client.get("/Users", params={"count": "0"}).status_code == 200
        live.store.update_settings(tenant_id, {"trace": 5})
        time.sleep(0.3)  # the test server's token cache (and with it the tenant's settings) lasts 0.2 s
        assert client.get("/Users", params={"count": "1"}).status_code == 200
        live.store.update_settings(tenant_id, {"trace": None})
        time.sleep(0.3)
        assert client.get("/Users", params={"count": "2"}).status_code == 200
    assert [t.target for t in live.store.traces(tenant_id)] == ["/scim/v2/Users?count=1"]
