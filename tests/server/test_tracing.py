"""Request traces: a tenant with tracing on keeps its last N requests and answers, with no header
and no password; other tenants keep nothing (``server/tracing.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from tests.conftest import PATCH_OP, USER, LiveServer, assert_scim_error, create_user, make_user, serving

from provisor.server.tenancy import MAX_TRACE, context_for
from provisor.server.tracing import MAX_TRACED_BODY, MAX_TRACED_DEPTH, REDACTED, traced, traced_body
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
        # the fully-qualified key the server accepts as the password, and its dotted spelling (Q15)
        ({f"{USER}:password": "p", "userName": "a"}, {f"{USER}:password": REDACTED, "userName": "a"}),
        ({f"{USER}.Password": "p"}, {f"{USER}.Password": REDACTED}),
        ({USER: {"password": "p"}}, {USER: {"password": REDACTED}}),
        # a path-less PATCH value object naming it by its URN
        (
            {"Operations": [{"op": "replace", "value": {f"{USER}:password": "p", "active": True}}]},
            {"Operations": [{"op": "replace", "value": {f"{USER}:password": REDACTED, "active": True}}]},
        ),
        # a PATCH path that starts with password, whatever follows it
        (
            {"Operations": [{"op": "replace", "path": "password[value pr]", "value": "p"}]},
            {"Operations": [{"op": "replace", "path": "password[value pr]", "value": REDACTED}]},
        ),
        (
            {"Operations": [{"op": "add", "path": f"{USER}.password", "value": ["p"]}]},
            {"Operations": [{"op": "add", "path": f"{USER}.password", "value": REDACTED}]},
        ),
        # a filter inside a PATCH path that mentions it: the path and the value go
        (
            {"Operations": [{"op": "remove", "path": 'emails[password eq "p"]', "value": "q"}]},
            {"Operations": [{"op": "remove", "path": REDACTED, "value": REDACTED}]},
        ),
        # Bulk operations' data, POST and PATCH
        (
            {
                "Operations": [
                    {"method": "POST", "bulkId": "1", "data": {f"{USER}:password": "p"}},
                    {
                        "method": "PATCH",
                        "path": "/Users/x",
                        "data": {
                            "Operations": [
                                {"op": "replace", "value": {f"{USER}:PASSWORD": "p"}},
                                {"op": "replace", "path": "password[value pr]", "value": "q"},
                            ]
                        },
                    },
                ]
            },
            {
                "Operations": [
                    {"method": "POST", "bulkId": "1", "data": {f"{USER}:password": REDACTED}},
                    {
                        "method": "PATCH",
                        "path": "/Users/x",
                        "data": {
                            "Operations": [
                                {"op": "replace", "value": {f"{USER}:PASSWORD": REDACTED}},
                                {"op": "replace", "path": "password[value pr]", "value": REDACTED},
                            ]
                        },
                    },
                ]
            },
        ),
        # a SearchRequest's filter that mentions it
        (
            {"filter": 'userName sw "a" and password eq "p"', "count": 2},
            {"filter": REDACTED, "count": 2},
        ),
        (
            {"Filter": f'{USER}:PassWord eq "p"'},
            {"Filter": REDACTED},
        ),
        ({"filter": 'userName eq "q"'}, {"filter": 'userName eq "q"'}),
        # a PATCH operation with two path keys: the parser takes the last, any one redacts
        (
            {"Operations": [{"op": "replace", "path": "displayName", "Path": "password", "value": "p"}]},
            {"Operations": [{"op": "replace", "path": "displayName", "Path": "password", "value": REDACTED}]},
        ),
        # names that merely contain the word are not secrets
        ({"passwordHint": "h", "x.passwords": "h"}, {"passwordHint": "h", "x.passwords": "h"}),
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


def test_no_trace_is_kept_after_tracing_is_turned_off_by_a_server_with_older_settings(tmp_path: Any) -> None:
    """`tenant set --no-trace` turns the setting off and deletes the traces; a running server reads
    a tenant's settings with its token, up to its token cache's time earlier, and every trace it
    kept in that time stayed for good (found by tests/cli/test_servers_agree.py)."""
    from provisor.server import ServerConfig

    config = ServerConfig(access_log=False, token_cache_seconds=3600)  # its settings surely stale
    with serving(f"sqlite:///{tmp_path / 'trace.db'}", config) as live:
        tenant_id, token = live.new_tenant({"trace": 5})
        with live.client(token) as client:
            assert client.get("/Users").status_code == 200
            assert len(live.store.traces(tenant_id)) == 1
            live.store.update_settings(tenant_id, {"trace": None})  # what `tenant set --no-trace` does
            live.store.delete_traces(tenant_id)
            assert client.get("/Users", params={"count": "1"}).status_code == 200
            # the same connection's next request is read once the last one's trace is written
            assert client.get("/Users", params={"count": "2"}).status_code == 200
        assert live.store.traces(tenant_id) == []
        # turned on again, the server (settings still cached, tracing on) keeps traces as before
        live.store.update_settings(tenant_id, {"trace": 5})
        with live.client(token) as client:
            assert client.get("/Users", params={"count": "3"}).status_code == 200
            assert client.get("/Users", params={"count": "4"}).status_code == 200
        assert "/scim/v2/Users?count=3" in [t.target for t in live.store.traces(tenant_id)]


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        (b"", "/scim/v2/Users"),
        (b"count=2", "/scim/v2/Users?count=2"),
        (b"filter=userName+eq+%22a%22", "/scim/v2/Users?filter=userName+eq+%22a%22"),
        (b"filter=password+eq+%22p%22&count=2", "/scim/v2/Users?filter=%5Bredacted%5D&count=2"),
        (b"count=1&Filter=%70assWord%20pr", "/scim/v2/Users?count=1&Filter=%5Bredacted%5D"),
        (
            b"filter=userName+eq+%22a%22+or+" + USER.encode() + b":password+eq+%22p%22",
            "/scim/v2/Users?filter=%5Bredacted%5D",
        ),
    ],
)
def test_a_filter_that_mentions_a_password_never_reaches_a_trace(query: bytes, kept: str) -> None:
    assert traced("/scim/v2/Users", query, None, None).target == kept


TOKEN = "pvs_" + "Ab3-_x" * 7 + "Q"


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        (f"access_token={TOKEN}&count=2".encode(), "/scim/v2/Users?access_token=%5Bredacted%5D&count=2"),
        (b"Token=abc&API_KEY=def", "/scim/v2/Users?Token=%5Bredacted%5D&API_KEY=%5Bredacted%5D"),
        (f"x={TOKEN}".encode(), "/scim/v2/Users?x=%5Bredacted%5D"),
        (f"{TOKEN}=1&count=3".encode(), "/scim/v2/Users?%5Bredacted%5D=1&count=3"),
        (b"count=2&tokens=1", "/scim/v2/Users?count=2&tokens=1"),
    ],
)
def test_a_credential_in_the_query_string_never_reaches_a_trace(query: bytes, kept: str) -> None:
    """Headers are never kept; a client that puts its Secret Token in the URL had it kept."""
    assert traced("/scim/v2/Users", query, None, None).target == kept


def test_a_secret_token_in_a_body_or_echoed_in_the_answer_never_reaches_a_trace() -> None:
    sent = body({"userName": "a", "displayName": f"see {TOKEN} here"})
    answer = body({"detail": f"no token {TOKEN}", "status": "400"})
    kept = traced("/scim/v2/Users", f"access_token={TOKEN}".encode(), sent, answer)
    for text in (kept.target, kept.request, kept.response):
        assert text is not None and TOKEN not in text and "pvs_" not in text
    assert orjson.loads(kept.request or "")["displayName"] == f"see {REDACTED} here"


def test_a_secret_token_in_the_path_never_reaches_a_trace() -> None:
    """Nor its echo in the 404's detail."""
    answer = body({"detail": f"no such resource /Users/{TOKEN}", "status": "404"})
    kept = traced(f"/scim/v2/Users/{TOKEN}", b"", None, answer)
    assert kept.target == f"/scim/v2/Users/{REDACTED}"
    assert kept.response is not None and TOKEN not in kept.response and "pvs_" not in kept.response


def test_a_password_echoed_in_an_answer_never_reaches_a_trace() -> None:
    sent = body({"userName": "a", f"{USER}:password": "Hunter2-echoed"})
    answer = body({"detail": 'password "Hunter2-echoed" is not allowed', "status": "400"})
    kept = traced("/scim/v2/Users", b"filter=password+eq+%22Hunter2-filter%22", sent, answer)
    assert kept.response is not None and "Hunter2" not in kept.response
    assert orjson.loads(kept.response) == {
        "detail": f"password {REDACTED!r} is not allowed".replace("'", '"'),
        "status": "400",
    }
    searched = traced(
        "/scim/v2/Users", b"filter=password+eq+%22Hunter2-filter%22", None, body({"detail": "Hunter2-filter"})
    )
    assert searched.response is not None and "Hunter2" not in searched.response


def test_every_spelling_of_a_password_is_redacted_in_a_live_trace(tmp_path: Any) -> None:
    """Each way the server accepts (or refuses) a password, or a filter on one: the stored trace and
    `provisor tenant trace` show none of them (/tmp/audit-adv repro_trace_leak.sh, report 5)."""
    from typer.testing import CliRunner

    from provisor.cli.main import app

    db = f"sqlite:///{tmp_path / 'trace.db'}"
    with serving(db) as live:
        tenant_id, token = live.new_tenant({"trace": 50})
        with live.client(token) as client:
            urn_key = {"schemas": [USER], "userName": "urn@x.com", f"{USER}:password": "Hunter2-URN-KEY"}
            made = client.post("/Users", json=urn_key)
            assert made.status_code == 201, made.text
            uid = made.json()["id"]
            dotted = {"schemas": [USER], "userName": "dot@x.com", f"{USER}.password": "Hunter2-DOTTED"}
            client.post("/Users", json=dotted)
            pathless = {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "value": {f"{USER}:password": "Hunter2-PATHLESS-URN"}}],
            }
            assert client.patch(f"/Users/{uid}", json=pathless).status_code == 200
            value_path = {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "password[value pr]", "value": "Hunter2-VALUEPATH"}],
            }
            client.patch(f"/Users/{uid}", json=value_path)
            client.get("/Users", params={"filter": 'password eq "Hunter2-IN-FILTER"'})
            client.get("/Users", params={"filter": f'{USER}:password eq "Hunter2-URN-FILTER"'})
            search = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": 'password eq "Hunter2-SEARCH"',
            }
            client.post("/Users/.search", json=search)
            client.post("/.search", json=search)
            bulk = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {
                        "method": "POST",
                        "path": "/Users",
                        "bulkId": "u",
                        "data": {
                            "schemas": [USER],
                            "userName": "bulk@x.com",
                            f"{USER}:password": "Hunter2-BULK",
                        },
                    },
                    {
                        "method": "PATCH",
                        "path": f"/Users/{uid}",
                        "data": {
                            "schemas": [PATCH_OP],
                            "Operations": [
                                {"op": "replace", "value": {f"{USER}:password": "Hunter2-BULK-PATCH"}}
                            ],
                        },
                    },
                ],
            }
            assert client.post("/Bulk", json=bulk).status_code == 200
            plain = {"schemas": [USER], "userName": "plain@x.com", "password": "Hunter2-PLAIN"}
            assert client.post("/Users", json=plain).status_code == 201
        traces = live.store.traces(tenant_id)
        tenant_name = live.store.get_tenant(tenant_id).name
    assert len(traces) == 10
    for trace in traces:
        for text in (trace.target, trace.request or "", trace.response or ""):
            assert "Hunter2" not in text, text
    assert sum(REDACTED in (t.request or "") for t in traces) == 8
    assert sum("%5Bredacted%5D" in t.target for t in traces) == 2
    for as_json, each in (([], "  -> "), (["--json"], '"target": ')):
        shown = CliRunner().invoke(app, ["tenant", "trace", tenant_name, "--db", db, *as_json])
        assert shown.exit_code == 0, shown.output
        assert "Hunter2" not in shown.output and "redacted" in shown.output
        assert shown.output.count(each) == 10


def test_a_secret_token_used_as_a_member_name_never_reaches_a_trace() -> None:
    kept = traced_body(body({"userName": "a", TOKEN: "k", "x": {f"see {TOKEN}": 1}}))
    assert kept is not None and TOKEN not in kept and "pvs_" not in kept
    assert orjson.loads(kept) == {"userName": "a", REDACTED: "k", "x": {f"see {REDACTED}": 1}}


@pytest.mark.parametrize(
    "path",
    ['password[value eq "guess_16"]', f'{USER}:Password[value sw "guess_16"]', "password[value eq guess_16]"],
)
def test_a_password_guessed_in_a_patch_path_filter_never_reaches_a_trace(path: str) -> None:
    """The filter of a path into ``password`` compares its values with a literal: the literal is a
    password (a guess at one), so the path goes with the value; a filter with no literal stays."""
    sent = {"Operations": [{"op": "add", "path": path, "value": "x"}]}
    answer = body({"detail": f"no value of {path} matches", "status": "400"})
    kept = traced("/scim/v2/Users/1", b"", body(sent), answer)
    assert kept.request is not None and kept.response is not None
    assert "guess_16" not in kept.request and "guess_16" not in kept.response
    assert orjson.loads(kept.request)["Operations"][0] == {"op": "add", "path": REDACTED, "value": REDACTED}


def test_a_body_nested_deeper_than_a_trace_keeps_is_traced_without_its_depths() -> None:
    """A body may nest 1,024 levels (the JSON reader's limit), deeper than Python's recursion: the
    trace keeps the request, its deep parts replaced by a note, instead of losing it."""
    deep = b"[" * 1000 + b'"bottom"' + b"]" * 1000  # deeper than orjson writes: as a client sends it
    sent = b'{"userName": "a", "password": "p", "x": ' + deep + b"}"
    kept = traced("/scim/v2/Users", b"", sent, b'{"userName": "a", "x": ' + deep + b"}")
    assert kept.request is not None and kept.response is not None
    request = orjson.loads(kept.request)
    assert request["userName"] == "a" and request["password"] == REDACTED
    level, depth = request["x"], 1
    while isinstance(level, list):
        level, depth = level[0], depth + 1
    assert level == f"(nested deeper than {MAX_TRACED_DEPTH} levels; not kept)"
    assert depth == MAX_TRACED_DEPTH + 1
    assert "bottom" not in kept.request and "bottom" not in kept.response


def test_a_deeply_nested_body_of_a_traced_tenant_is_traced(live: LiveServer) -> None:
    tenant_id, token = live.new_tenant({"trace": 10})
    deep: Any = "bottom"
    for _ in range(600):
        deep = [deep]
    with live.client(token) as client:
        r = client.post("/Users", json={**make_user("deep@x.com"), "x": deep})
        assert r.status_code == 201, r.text
    [kept] = live.store.traces(tenant_id)
    assert (kept.method, kept.status) == ("POST", 201)
    assert kept.request is not None and orjson.loads(kept.request)["userName"] == "deep@x.com"
    assert "not kept" in kept.request and "bottom" not in kept.request
