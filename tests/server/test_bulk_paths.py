"""A /Bulk operation's ``path`` (RFC 7644 section 3.7), read as the HTTP routes read a request's:
one whose path is malformed (400 ``invalidPath``), names no resource (404) or does not take its
method (405) fails alone, in its own result, before anything is read or written. The Bulk request
still answers 200, the other operations run, and ``failOnErrors`` counts the failure."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import GROUP, PATCH_OP, USER, LiveServer, create_user

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
METHODS = ("POST", "PUT", "PATCH", "DELETE")
CHANGES = ("PUT", "PATCH", "DELETE")


def operation(method: str, path: Any, n: int = 0) -> dict[str, Any]:
    """An operation that would succeed on a good path: a new User, a User's data, a rename."""
    op: dict[str, Any] = {"method": method, "bulkId": f"op{n}"}
    if path is not ...:
        op["path"] = path
    if method in ("POST", "PUT"):
        op["data"] = {"schemas": [USER], "userName": f"made{n}@x.com", "title": "changed"}
    elif method == "PATCH":
        op["data"] = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "title", "value": "changed"}],
        }
    return op


def bulk(*ops: dict[str, Any], fail_on_errors: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [BULK], "Operations": list(ops)}
    if fail_on_errors is not None:
        body["failOnErrors"] = fail_on_errors
    return body


def state(c: httpx.Client) -> tuple[Any, Any]:
    """Every User and Group as a GET lists them."""
    return c.get("/Users", params={"count": 1000}).json(), c.get("/Groups", params={"count": 1000}).json()


#: Paths the routes serve nothing at (404), and endpoints that are no resource type's (405 in a Bulk).
NOWHERE = ("/Unknown", "/Unknown/{id}", "/bulkId:op9", "/Schemas/a/b", "/ServiceProviderConfig/x")
NO_RESOURCE = (
    "/",
    "//",
    "/ServiceProviderConfig",
    "/serviceproviderconfig/",
    "/ResourceTypes",
    "/ResourceTypes/User",
    "/Schemas",
    "/schemas/urn:ietf:params:scim:schemas:core:2.0:User",
    "/Bulk",
    "/.search",
    "/Users/.search",
    "/groups/.search/",
)


def _cases() -> list[tuple[str, str, int, str | None]]:
    """(method, path with ``{id}`` for a User's id and ``{base}`` for the SCIM base URL, status,
    scimType) of every operation refused for its path."""
    out: list[tuple[str, str, int, str | None]] = []
    for method in METHODS:
        for path in ("Users", "Users/{id}", "", "{base}/Users/{id}"):
            out.append((method, path, 400, "invalidPath"))
        for path in ("/Users?filter=x", "/Users/{id}?attributes=id", "/Users/{id}#top", "/Users/%FF"):
            out.append((method, path, 400, "invalidPath"))
        for path in NOWHERE:
            out.append((method, path, 404, None))
        for path in NO_RESOURCE:
            out.append((method, path, 405, None))
        for path in ("/Me", "/me/{id}", "/ME/a/b"):
            out.append((method, path, 501, None))
        out.append((method, "//host/Users/{id}", 404, None))  # empty segments skipped, as a request's
        out.append((method, "/Users/{id}/extra", 404, None))
    for path in ("/Users/{id}", "/Users/bulkId:nope", "/Groups/{id}/"):
        out.append(("POST", path, 405, None))
    for method in CHANGES:
        out.append((method, "/Users", 405, None))
        out.append((method, "/Users/", 405, None))
        out.append((method, "/Users/bulkId:nope", 409, "invalidValue"))
    return out


@pytest.mark.parametrize(("method", "path", "status", "scim_type"), _cases())
def test_an_operation_with_a_bad_path_fails_alone_and_changes_nothing(
    live: LiveServer, client: httpx.Client, method: str, path: str, status: int, scim_type: str | None
) -> None:
    user = create_user(client, "u@x.com")
    sent = path.format(id=user["id"], base=live.base)
    before = state(client)
    good = {
        "method": "POST",
        "path": "/Groups",
        "bulkId": "g",
        "data": {"schemas": [GROUP], "displayName": "G"},
    }
    r = client.post("/Bulk", json=bulk(operation(method, sent), good))
    assert r.status_code == 200, r.text
    refused, done = r.json()["Operations"]
    assert refused["status"] == str(status), refused
    assert refused["response"]["status"] == str(status)
    assert refused["response"].get("scimType") == scim_type, refused
    assert refused["response"]["detail"]
    assert "location" not in refused or status == 409  # no resource to point at (a failed POST has none)
    assert done["status"] == "201", done  # the next operation ran
    users, groups = state(client)
    assert users == before[0]  # the refused operation changed nothing
    assert [g["displayName"] for g in groups["Resources"]] == ["G"] and before[1]["totalResults"] == 0


@pytest.mark.parametrize("path", [*NOWHERE, *NO_RESOURCE, "/Me", "/me/{id}"])
def test_a_path_is_answered_as_the_same_request_alone(
    live: LiveServer, client: httpx.Client, path: str
) -> None:
    """For every method, the status the route gives the request sent on its own; but a request the
    route takes that is no operation on a resource (a search, a Bulk: POST) is 405 in a Bulk."""
    sent = path.format(id=create_user(client, "u@x.com")["id"])
    for method in METHODS:
        op = operation(method, sent)
        (result,) = client.post("/Bulk", json=bulk(op)).json()["Operations"]
        alone = client.request(method, sent.lstrip("/"), json=op.get("data"))
        if alone.status_code in (404, 405, 501):  # the route refused it
            assert result["status"] == str(alone.status_code), (method, sent, result, alone.text)
        else:  # the route took it (and read the body)
            assert method == "POST" and sent.rstrip("/").lower().endswith(("/.search", "/bulk")), sent
            assert result["status"] == "405", (method, sent, result)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/Users/", 201),
        ("POST", "//Users", 201),
        ("POST", "/users", 201),
        ("PATCH", "/users/{id}", 200),
        ("PUT", "/Users//{id}", 200),
        ("PATCH", "/Users/{id}/", 200),
        ("PATCH", "/Users/{encoded}", 200),
        ("DELETE", "/Users/{encoded}", 204),
    ],
)
def test_a_path_the_http_routes_take_is_taken(
    client: httpx.Client, method: str, path: str, status: int
) -> None:
    """Empty segments skipped, the endpoint in any case, the id percent-decoded: as a request's."""
    user = create_user(client, "u@x.com")
    encoded = "".join(f"%{ord(ch):02X}" for ch in user["id"])
    r = client.post("/Bulk", json=bulk(operation(method, path.format(id=user["id"], encoded=encoded))))
    assert r.status_code == 200, r.text
    (result,) = r.json()["Operations"]
    assert result["status"] == str(status), result
    if method in ("PUT", "PATCH"):
        assert result["location"].endswith(f"/Users/{user['id']}")
        assert client.get(f"/Users/{user['id']}").json()["title"] == "changed"


def test_fail_on_errors_counts_an_operation_refused_for_its_path(client: httpx.Client) -> None:
    """failOnErrors 1: the first operation's bad path is the one error allowed; no later
    operation runs, so nothing is created."""
    before = state(client)
    r = client.post(
        "/Bulk",
        json=bulk(operation("PATCH", "/Users"), operation("POST", "/Users", 1), fail_on_errors=1),
    )
    assert r.status_code == 200, r.text
    assert [o["status"] for o in r.json()["Operations"]] == ["405"]
    assert state(client) == before
    r = client.post(
        "/Bulk",
        json=bulk(operation("DELETE", "Users/x"), operation("POST", "/Users", 2), fail_on_errors=2),
    )
    assert [o["status"] for o in r.json()["Operations"]] == ["400", "201"]


def test_a_missing_path_is_a_malformed_operation(client: httpx.Client) -> None:
    r = client.post("/Bulk", json=bulk(*(operation(m, ..., i) for i, m in enumerate(METHODS))))
    assert r.status_code == 200, r.text
    results = r.json()["Operations"]
    assert [(o["status"], o["response"]["scimType"]) for o in results] == [("400", "invalidSyntax")] * 4


PATH_TEXT = st.one_of(
    st.text(max_size=30),
    st.lists(
        st.sampled_from(
            ["", "Users", "Groups", "users", "x", "bulkId:a", "bulkId:", "%", "%2F", "%FF", "?", "#", ".."]
        ),
        max_size=4,
    ).map(lambda parts: "/" + "/".join(parts)),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(paths=st.lists(st.tuples(st.sampled_from(METHODS), PATH_TEXT), min_size=1, max_size=20))
def test_no_path_gets_a_500(client: httpx.Client, paths: list[tuple[str, str]]) -> None:
    """Whatever the paths: the Bulk answers 200 with one result each, none a 500."""
    ops = [operation(m, p, i) for i, (m, p) in enumerate(paths)]
    ops.insert(0, {**operation("POST", "/Users", 99), "bulkId": "a"})
    r = client.post("/Bulk", json=bulk(*ops))
    assert r.status_code == 200, r.text
    results = r.json()["Operations"]
    assert len(results) == len(ops)
    assert all(o["status"] in {"200", "201", "204", "400", "404", "405", "409"} for o in results), results
