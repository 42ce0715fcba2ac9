"""Filters on server-computed values and on operators a type does not support, over HTTP:
a right answer or a 400 invalidFilter, never a silent empty result (docs/user-guide.md)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.conftest import PATCH_OP, assert_scim_error, create_group, create_user

SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
World = dict[str, dict[str, Any]]


def ids(client: httpx.Client, endpoint: str, text: str) -> set[str]:
    r = client.get(endpoint, params={"filter": text, "count": 100})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totalResults"] == len(body["Resources"])
    return {x["id"] for x in body["Resources"]}


@pytest.fixture
def world(client: httpx.Client) -> World:
    a = create_user(client, "a@x.com", x509Certificates=[{"value": "aGVsbG8="}])
    b = create_user(client, "b@x.com")
    c = create_user(client, "c@x.com")
    team = create_group(client, "Team", [a["id"]])
    outer = create_group(client, "Outer", [team["id"], b["id"]])
    empty = create_group(client, "Empty")
    return {"a": a, "b": b, "c": c, "team": team, "outer": outer, "empty": empty}


@pytest.mark.parametrize("endpoint", ["/Users", "/Groups"])
@pytest.mark.parametrize("text", ["meta pr", "meta.version pr", "meta.location pr", "meta.created pr"])
def test_meta_is_always_present(client: httpx.Client, world: World, endpoint: str, text: str) -> None:
    kind = "User" if endpoint == "/Users" else "Group"
    every = {w["id"] for w in world.values() if w["meta"]["resourceType"] == kind}
    assert ids(client, endpoint, text) == every
    assert ids(client, endpoint, f"not ({text})") == set()


def test_ref_presence_means_membership(client: httpx.Client, world: World) -> None:
    in_groups = {world["a"]["id"], world["b"]["id"]}
    assert ids(client, "/Users", "groups.$ref pr") == in_groups == ids(client, "/Users", "groups pr")
    assert ids(client, "/Users", "groups[$ref pr]") == in_groups
    assert ids(client, "/Users", "not (groups.$ref pr)") == {world["c"]["id"]}
    assert ids(client, "/Groups", "members.$ref pr") == {world["team"]["id"], world["outer"]["id"]}
    assert ids(client, "/Groups", 'members[$ref pr and type eq "Group"]') == {world["outer"]["id"]}


def test_meta_version_is_the_etag(client: httpx.Client, world: World) -> None:
    a = world["a"]
    # a is in Team and, through it, in Outer; b in Outer; c in no group: joining a group is a
    # change of a User's groups, and so of its version
    versions = {k: client.get(f"/Users/{world[k]['id']}").json()["meta"]["version"] for k in "abc"}
    assert versions == {"a": 'W/"3"', "b": 'W/"2"', "c": 'W/"1"'}
    for version in versions.values():
        expected = {world[k]["id"] for k, v in versions.items() if v == version}
        assert ids(client, "/Users", 'meta.version eq "' + version.replace('"', '\\"') + '"') == expected
    version = versions["a"]
    r = client.patch(
        f"/Users/{a['id']}",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "t"}]},
    )
    assert r.status_code == 200, r.text
    new = r.json()["meta"]["version"]
    assert new != version
    assert ids(client, "/Users", 'meta.version eq "' + new.replace('"', '\\"') + '"') == {a["id"]}
    assert ids(client, "/Users", 'meta.version ne "' + new.replace('"', '\\"') + '"') == {
        world["b"]["id"],
        world["c"]["id"],
    }
    assert ids(client, "/Users", 'meta.version eq "' + new.lower().replace('"', '\\"') + '"') == set()


@pytest.mark.parametrize("op", ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"])
@pytest.mark.parametrize(
    ("endpoint", "text"),
    [
        ("/Users", 'meta.location {op} "Users"'),
        ("/Groups", 'meta.location {op} "Groups"'),
        ("/Users", 'groups.$ref {op} "Groups"'),
        ("/Users", 'groups[$ref {op} "Groups"]'),
        ("/Groups", 'members.$ref {op} "Users"'),
    ],
)
def test_comparisons_on_base_url_values_are_refused(
    client: httpx.Client, world: World, endpoint: str, op: str, text: str
) -> None:
    r = client.get(endpoint, params={"filter": text.format(op=op)})
    body = assert_scim_error(r, 400, "invalidFilter")
    assert "computed by the server" in body["detail"] and "only be tested with pr" in body["detail"]


@pytest.mark.parametrize("op", ["co", "sw", "ew"])
@pytest.mark.parametrize("attr", ["meta.lastModified", "meta.created"])
@pytest.mark.parametrize("endpoint", ["/Users", "/Groups"])
def test_substring_operators_on_datetimes_are_refused(
    client: httpx.Client, world: World, endpoint: str, attr: str, op: str
) -> None:
    r = client.get(endpoint, params={"filter": f'{attr} {op} "20"'})
    body = assert_scim_error(r, 400, "invalidFilter")
    assert f"'{op}' is not defined for the dateTime attribute '{attr}'" in body["detail"]
    assert "eq, ne, gt, ge, lt, le or pr" in body["detail"]


def test_datetime_comparisons_still_answer(client: httpx.Client, world: World) -> None:
    every = {world[k]["id"] for k in "abc"}
    assert ids(client, "/Users", 'meta.lastModified ge "2000-01-01T00:00:00Z"') == every
    assert ids(client, "/Users", 'meta.created lt "2000-01-01T00:00:00Z"') == set()
    created = world["a"]["meta"]["created"]
    assert world["a"]["id"] in ids(client, "/Users", f'meta.created eq "{created}"')


def test_a_datetime_past_year_9999_is_refused_not_a_server_error(client: httpx.Client, world: World) -> None:
    """``9999-12-31T24:00:00Z`` is year 10000's first instant (xsd:dateTime allows 24:00:00): 400,
    as any dateTime Provisor cannot hold; one an hour earlier in UTC still answers."""
    for text in (
        'meta.created gt "9999-12-31T24:00:00Z"',
        'meta.lastModified le "9999-12-31T24:00:00-05:00"',
    ):
        body = assert_scim_error(client.get("/Users", params={"filter": text}), 400, "invalidFilter")
        assert "is not a dateTime" in body["detail"]
    every = {world[k]["id"] for k in "abc"}
    assert ids(client, "/Users", 'meta.created lt "9999-12-31T24:00:00+01:00"') == every


def test_search_endpoint_refuses_too(client: httpx.Client, world: World) -> None:
    body = {"schemas": [SEARCH_SCHEMA], "filter": 'meta.lastModified sw "2026"'}
    assert_scim_error(client.post("/Users/.search", json=body), 400, "invalidFilter")
    body = {"schemas": [SEARCH_SCHEMA], "filter": "meta.location pr"}
    r = client.post("/Users/.search", json=body)
    assert r.status_code == 200 and r.json()["totalResults"] == 3


@pytest.mark.parametrize("op", ["co", "sw", "ew"])
def test_substring_operators_on_binary_and_boolean_are_refused(
    client: httpx.Client, world: World, op: str
) -> None:
    body = assert_scim_error(
        client.get("/Users", params={"filter": f'x509Certificates.value {op} "aGVs"'}), 400, "invalidFilter"
    )
    assert "binary" in body["detail"] and "eq, ne or pr" in body["detail"]
    body = assert_scim_error(
        client.get("/Users", params={"filter": f"active {op} true"}), 400, "invalidFilter"
    )
    assert "boolean" in body["detail"]
    assert ids(client, "/Users", 'x509Certificates.value eq "aGVsbG8="') == {world["a"]["id"]}


def test_patch_value_paths_follow_the_same_rules(client: httpx.Client, world: World) -> None:
    outer = world["outer"]

    def patch(path: str) -> httpx.Response:
        op = {"op": "remove", "path": path}
        return client.patch(f"/Groups/{outer['id']}", json={"schemas": [PATCH_OP], "Operations": [op]})

    body = assert_scim_error(patch('members[$ref eq "x"]'), 400, "invalidPath")
    assert "only be tested with pr" in body["detail"]
    assert {m["value"] for m in client.get(f"/Groups/{outer['id']}").json()["members"]} == {
        world["team"]["id"],
        world["b"]["id"],
    }
    r = patch(f'members[value eq "{world["b"]["id"]}"]')
    assert r.status_code in (200, 204), r.text
    assert [m["value"] for m in client.get(f"/Groups/{outer['id']}").json()["members"]] == [
        world["team"]["id"]
    ]


USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.mark.parametrize(
    "text",
    [
        'password eq "s3cret!"',
        "password pr",
        f'{USER_URN}:password eq "s3cret!"',
        f'{USER_URN}.password co "s"',
    ],
)
def test_filters_on_password_are_refused_not_answered_empty(client: httpx.Client, text: str) -> None:
    """Audit finding: ``password`` (returned: never, never stored) was answered 200 with 0 results."""
    create_user(client, "pw@x.com", password="s3cret!")
    for params in ({"filter": text}, {"filter": text, "cursor": ""}):
        body = assert_scim_error(client.get("/Users", params=params), 400, "invalidFilter")
        assert "'password' cannot be filtered" in body["detail"], body
    search = {"schemas": [SEARCH_SCHEMA], "filter": text}
    assert_scim_error(client.post("/Users/.search", json=search), 400, "invalidFilter")
    assert_scim_error(client.post("/.search", json=search), 400, "invalidFilter")
    assert ids(client, "/Groups", "not (displayName pr)") == set()  # Groups unaffected


@pytest.mark.parametrize("text", ["", " ", "\t"])
@pytest.mark.parametrize("endpoint", ["/Users", "/Groups"])
def test_an_empty_filter_is_refused_not_read_as_no_filter(
    client: httpx.Client, world: World, endpoint: str, text: str
) -> None:
    r = client.get(endpoint, params={"filter": text})
    assert_scim_error(r, 400, "invalidFilter")
    assert "empty filter" in r.json()["detail"]
    body = {"schemas": [SEARCH_SCHEMA], "filter": text}
    assert_scim_error(client.post(f"{endpoint}/.search", json=body), 400, "invalidFilter")
    # a repeated filter is refused whatever its values (it was read as its last, here the empty one)
    r = client.get(f"{endpoint}?filter=id%20pr&filter=")
    assert_scim_error(r, 400, "invalidValue")


def test_a_filter_that_is_not_utf8_is_refused_not_read_with_a_replacement_character(
    client: httpx.Client, world: World
) -> None:
    """userName ne "%FF" matched every User: the byte was read as U+FFFD, which no name is."""
    body = assert_scim_error(client.get("/Users?filter=userName%20ne%20%22%FF%22"), 400, "invalidValue")
    assert "not UTF-8" in body["detail"]


@pytest.mark.parametrize("times", [26, 27, 31])
def test_not_within_not_as_deep_as_the_parser_takes_is_answered(live, client, times):
    """Each ``not`` was one function call deeper in the SQL: about 26 of them overflowed SQLite's
    parser stack and the request was a 500. Now they answer, and mean what they say."""
    kept, other = (
        create_user(
            client, f"{name}{times}@x.com", emails=[{"value": f"{name}{times}@x.com", "type": "work"}]
        )
        for name in ("kept", "other")
    )
    group = create_group(client, f"nested nots {times}", [kept["id"]])

    def found(endpoint, inner):
        r = client.get(endpoint, params={"filter": "not(" * times + inner + ")" * times, "count": "1000"})
        assert r.status_code == 200, r.text
        return {x["id"] for x in r.json()["Resources"]}

    negated = times % 2 == 1
    users = found("/Users", f'userName eq "{kept["userName"]}"')
    assert (kept["id"] in users) is not negated and (other["id"] in users) is negated
    emails = found("/Users", f'emails[value eq "{kept["userName"]}"]')
    assert (kept["id"] in emails) is not negated
    groups = found("/Groups", f'members.value eq "{kept["id"]}"')
    assert (group["id"] in groups) is not negated


def test_a_filter_nested_too_deeply_for_the_database_is_400_invalid_filter(client):
    """``not(a and not(a and ...))`` 30 times over is within the parser's 32 levels but too deep
    for SQLite's own parser: a 400 that says so, not a 500."""
    nested = 'not(userName eq "a" and ' * 30 + 'userName eq "x"' + ")" * 30
    error = assert_scim_error(client.get("/Users", params={"filter": nested}), 400, "invalidFilter")
    assert "nested too deeply" in error["detail"]
    search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": nested}
    assert_scim_error(client.post("/Users/.search", json=search), 400, "invalidFilter")
    assert_scim_error(client.post("/.search", json=search), 400, "invalidFilter")
