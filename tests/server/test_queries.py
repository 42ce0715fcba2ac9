"""Listing and searching (RFC 7644 3.4.2, 3.4.3): paging, sorting, projection, /.search."""

from __future__ import annotations

from typing import Any

import pytest
from tests.conftest import GROUP, USER, assert_scim_error, create_group, create_user

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def test_pagination_has_exact_totals(client):
    for i in range(7):
        create_user(client, f"u{i}@x.com")
    page = client.get("/Users", params={"startIndex": 3, "count": 2, "sortBy": "userName"}).json()
    assert page["totalResults"] == 7 and page["startIndex"] == 3 and page["itemsPerPage"] == 2
    assert [u["userName"] for u in page["Resources"]] == ["u2@x.com", "u3@x.com"]
    assert client.get("/Users", params={"count": 0}).json()["Resources"] == []
    assert client.get("/Users", params={"startIndex": 100}).json()["Resources"] == []


def test_page_size_is_capped_by_the_tenant(live):
    _, token = live.new_tenant({"max_page_size": 3})
    with live.client(token) as c:
        for i in range(5):
            create_user(c, f"cap{i}@x.com")
        page = c.get("/Users", params={"count": 50}).json()
        assert page["totalResults"] == 5 and page["itemsPerPage"] == 3
        assert c.get("/ServiceProviderConfig").json()["filter"]["maxResults"] == 3


def test_sorting_descending_and_on_extension(client):
    ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    for name, dept in (("b@x.com", "B"), ("a@x.com", "C"), ("c@x.com", "A")):
        create_user(client, name, **{ext: {"department": dept}})
    names = [
        u["userName"]
        for u in client.get("/Users", params={"sortBy": "userName", "sortOrder": "descending"}).json()[
            "Resources"
        ]
    ]
    assert names == ["c@x.com", "b@x.com", "a@x.com"]
    names = [
        u["userName"]
        for u in client.get("/Users", params={"sortBy": f"{ext}:department"}).json()["Resources"]
    ]
    assert names == ["c@x.com", "b@x.com", "a@x.com"]


def test_sorting_on_a_multi_valued_attribute_uses_its_primary_value(client):
    # RFC 7644 section 3.4.2.3: the primary value, else the first; emails alone means emails.value
    made = {  # created in an order that is neither the ascending nor the descending one
        "m4@x.com": [],
        "m2@x.com": [{"value": "bob@x.com"}, {"value": "ann@x.com"}],
        "m3@x.com": [{"value": "cat@x.com", "type": "work"}],
        "m1@x.com": [{"value": "zed@x.com"}, {"value": "amy@x.com", "primary": True}],
    }
    for name, emails in made.items():
        create_user(client, name, emails=emails)

    def order(**params: str) -> list[str]:
        query = {"filter": 'userName sw "m"', **params}
        return [u["userName"] for u in client.get("/Users", params=query).json()["Resources"]]

    # by amy (primary), bob (first), cat; m4 has no email: last ascending, first descending
    assert order(sortBy="emails") == ["m1@x.com", "m2@x.com", "m3@x.com", "m4@x.com"]
    assert order(sortBy="emails.value") == order(sortBy="emails")
    assert order(sortBy="Emails", sortOrder="descending") == ["m4@x.com", "m3@x.com", "m2@x.com", "m1@x.com"]


def test_unqualified_extension_names_in_paths_follow_the_filters_switch(live):
    """Q11 (``unquoted_filter_values``): ``department`` names the enterprise extension's attribute
    in sortBy, attributes and excludedAttributes as it does in a filter; a strict tenant reads it
    as the RFC does (no core attribute: 400 for sortBy, nothing selected for attributes)."""
    ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    by_department = ["c@x.com", "b@x.com", "a@x.com"]
    for settings, on in (({}, True), ({"strict": True}, False)):
        _, token = live.new_tenant(settings)
        with live.client(token) as c:
            for name, dept in (("b@x.com", "B"), ("a@x.com", "C"), ("c@x.com", "A")):
                values = {ext: {"department": dept, "division": "D"}, "displayName": name}
                create_user(c, name, schemas=[USER, ext], **values)
            sorted_ = c.get("/Users", params={"sortBy": "Department"})
            listed = c.get("/Users", params={"sortBy": "Department", "attributes": "userName,department"})
            b_only = {"filter": 'userName eq "b@x.com"', "excludedAttributes": "division"}
            (b,) = c.get("/Users", params=b_only).json()["Resources"]
            if on:
                assert [u["userName"] for u in sorted_.json()["Resources"]] == by_department
                assert [u["userName"] for u in listed.json()["Resources"]] == by_department
                assert listed.json()["Resources"][0][ext] == {"department": "A"}
                assert "displayName" not in listed.json()["Resources"][0]
                assert b[ext] == {"department": "B"} and b["displayName"] == "b@x.com"
            else:
                assert_scim_error(sorted_, 400, "invalidValue")
                assert_scim_error(listed, 400, "invalidValue")
                assert b[ext] == {"department": "B", "division": "D"}  # division named nothing
                got = c.get("/Users", params={"attributes": "department"}).json()["Resources"]
                assert all(set(u) == {"schemas", "id"} for u in got)


def test_attributes_the_server_computes_cannot_be_sorted_on(client):
    for endpoint, path in [
        ("/Users", "groups"),
        ("/Users", "groups.display"),
        ("/Groups", "members"),
        ("/Groups", "members.value"),
        ("/Users", "meta.version"),
        ("/Users", "meta.location"),
    ]:
        body = assert_scim_error(client.get(endpoint, params={"sortBy": path}), 400, "invalidValue")
        assert "cannot be sorted on" in body["detail"], path
    assert client.get("/Users", params={"sortBy": "meta.lastModified"}).status_code == 200
    for path in ("password", "urn:ietf:params:scim:schemas:core:2.0:User:password"):
        body = assert_scim_error(client.get("/Users", params={"sortBy": path}), 400, "invalidValue")
        assert "never stored" in body["detail"], path


def test_attributes_and_excluded_attributes(client):
    u = create_user(
        client,
        "proj@x.com",
        displayName="P",
        name={"givenName": "G", "familyName": "F"},
        emails=[{"value": "proj@x.com", "type": "work"}],
    )
    got = client.get(f"/Users/{u['id']}", params={"attributes": "userName,name.givenName"}).json()
    assert set(got) == {"schemas", "id", "userName", "name"}
    assert got["name"] == {"givenName": "G"}
    got = client.get(f"/Users/{u['id']}", params={"excludedAttributes": "emails,name"}).json()
    assert "emails" not in got and "name" not in got and got["displayName"] == "P" and got["id"] == u["id"]
    listed = client.get("/Users", params={"attributes": "id", "filter": 'userName eq "proj@x.com"'}).json()
    assert set(listed["Resources"][0]) == {"schemas", "id"}


def test_a_value_filter_in_attributes_picks_the_values_it_names(client):
    """Not RFC 7644's attribute notation, which has no filters; Microsoft's SCIM validator sends
    attributes=emails[type eq "work"] and expects the work address back."""
    emails = [
        {"value": "w@x.com", "type": "work", "primary": True, "display": "W"},
        {"value": "h@x.com", "type": "home"},
        {"value": "o, a@x.com", "type": "other"},
    ]
    uid = create_user(client, "picks@x.com", displayName="P", emails=emails)["id"]

    def get(**params: str) -> dict[str, Any]:
        r = client.get(f"/Users/{uid}", params=params)
        assert r.status_code == 200, r.text
        listed = client.get("/Users", params={**params, "filter": 'userName eq "picks@x.com"'})
        assert listed.json()["Resources"] == [r.json()]  # a listing projects the same
        return r.json()  # type: ignore[no-any-return]

    got = get(attributes='emails[type eq "work"]')
    assert set(got) == {"schemas", "id", "emails"} and got["emails"] == [emails[0]]
    assert get(attributes='emails[type eq "work"].value')["emails"] == [{"value": "w@x.com"}]
    got = get(attributes='userName,emails[type eq "home" or value co ", "]')
    assert got["userName"] == "picks@x.com" and got["emails"] == emails[1:]
    assert get(attributes='emails,emails[type eq "work"]')["emails"] == emails  # named whole too
    assert "emails" not in get(attributes='emails[type eq "nope"],userName')
    got = get(excludedAttributes='emails[type eq "work"]')
    assert got["emails"] == emails[1:] and got["displayName"] == "P"
    got = get(excludedAttributes="emails[primary eq true].display,name")
    assert got["emails"] == [{k: v for k, v in emails[0].items() if k != "display"}, *emails[1:]]
    for bad in ('emails[type eq "work"', 'emails[nope eq "x"]', 'userName[value eq "x"]', "emails[]"):
        assert_scim_error(client.get(f"/Users/{uid}", params={"attributes": bad}), 400, "invalidValue")
        assert_scim_error(client.get("/Users", params={"excludedAttributes": bad}), 400, "invalidValue")


def test_unknown_names_select_nothing_and_an_extension_urn_names_the_extension(client):
    ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    u = create_user(client, "urn@x.com", displayName="U", **{ext: {"department": "Sales"}})
    uid = u["id"]
    for names in ("foo", "name.foo", "foo,bar"):
        got = client.get(f"/Users/{uid}", params={"attributes": names}).json()
        assert got == {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": uid}, names
    got = client.get(f"/Users/{uid}", params={"attributes": ext}).json()
    assert set(got) == {"schemas", "id", ext} and got[ext] == {"department": "Sales"}
    # the core schema's URN names its attributes the same way (not the common id, externalId and
    # meta, which belong to no schema, RFC 7643 section 3.1; id is always returned)
    full = client.get(f"/Users/{uid}").json()
    got = client.get(f"/Users/{uid}", params={"attributes": USER}).json()
    assert got == {k: v for k, v in full.items() if k not in (ext, "meta")} | {"schemas": [USER]}
    got = client.get(f"/Users/{uid}", params={"excludedAttributes": USER.upper()}).json()
    assert set(got) == {"schemas", "id", "meta", ext}
    got = client.get(f"/Users/{uid}", params={"attributes": f"userName,{ext.upper()}"}).json()
    assert set(got) == {"schemas", "id", "userName", ext}
    got = client.get(f"/Users/{uid}", params={"excludedAttributes": ext}).json()
    assert ext not in got and ext not in got["schemas"] and got["displayName"] == "U"
    assert client.get(f"/Users/{uid}", params={"attributes": ""}).json() == client.get(f"/Users/{uid}").json()
    create_group(client, "Urn Group", [uid])
    r = client.post(
        "/.search",
        json={"schemas": [SEARCH], "filter": "id pr", "attributes": ["userName"], "count": 100},
    )
    assert r.status_code == 200, r.text
    for res in r.json()["Resources"]:
        if res["schemas"] == [GROUP]:
            assert set(res) == {"schemas", "id"}  # a Group has no userName: nothing else is asked for
        else:
            assert set(res) == {"schemas", "id", "userName"}


def test_search_endpoints(client):
    u = create_user(client, "s1@x.com")
    create_user(client, "s2@x.com")
    create_group(client, "S Group", [u["id"]])
    r = client.post(
        "/Users/.search", json={"schemas": [SEARCH], "filter": 'userName sw "s1"', "attributes": ["userName"]}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totalResults"] == 1 and body["Resources"][0]["userName"] == "s1@x.com"
    assert "displayName" not in body["Resources"][0]
    r = client.post("/.search", json={"schemas": [SEARCH], "filter": "externalId pr or id pr", "count": 10})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totalResults"] == 3
    kinds = sorted(res["schemas"][0].rsplit(":", 1)[1] for res in body["Resources"])
    assert kinds == ["Group", "User", "User"]
    assert client.post("/Users/.search", json={"filter": "x"}).status_code == 400


def test_a_search_across_types_reads_an_attribute_a_type_lacks_as_without_value(live):
    # RFC 7644 section 3.4.2.1: userName is not a Group attribute, so for Groups it has no value
    _, token = live.new_tenant()
    with live.client(token) as client:
        alice = create_user(client, "alice@x.com", displayName="Alice")
        create_user(client, "bob@x.com", displayName="Bob")
        create_group(client, "Admins", [alice["id"]])
        create_group(client, "All", [])

        def found(filter_: str) -> list[str]:
            r = client.post("/.search", json={"schemas": [SEARCH], "filter": filter_, "count": 100})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["totalResults"] == len(body["Resources"])
            return sorted(res.get("userName") or res["displayName"] for res in body["Resources"])

        assert found('userName sw "a"') == ["alice@x.com"]
        assert found('userName sw "a" or displayName sw "Adm"') == ["Admins", "alice@x.com"]
        assert found("members pr") == ["Admins"]
        assert found("not (userName pr)") == ["Admins", "All"]
        assert found('userName ne "bob@x.com"') == ["Admins", "All", "alice@x.com"]
        r = client.post("/.search", json={"schemas": [SEARCH], "filter": 'nothing eq "x"'})
        assert_scim_error(r, 400, "invalidFilter")  # an attribute no resource type has
        assert_scim_error(client.post("/.search", json={"schemas": [SEARCH], "filter": "userName sw"}), 400)


def test_group_filters_on_members(client):
    u1 = create_user(client, "gm1@x.com")
    u2 = create_user(client, "gm2@x.com")
    create_group(client, "G1", [u1["id"]])
    create_group(client, "G2", [u2["id"]])
    got = client.get(
        "/Groups", params={"filter": f'members[value eq "{u1["id"]}"]', "excludedAttributes": "members"}
    ).json()
    assert [g["displayName"] for g in got["Resources"]] == ["G1"]
    got = client.get("/Groups", params={"filter": 'displayName sw "g"', "sortBy": "displayName"}).json()
    assert [g["displayName"] for g in got["Resources"]] == ["G1", "G2"]
    assert got["Resources"][0]["members"][0]["value"] == u1["id"]
    assert got["Resources"][0]["members"][0]["$ref"].endswith(f"/Users/{u1['id']}")
    assert got["Resources"][0]["schemas"] == [GROUP]


def test_member_display_is_kept_as_sent_else_the_members_name(client):
    a = create_user(client, "da@x.com", displayName="Ada")
    b = create_user(client, "db@x.com")
    r = client.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "D",
            "members": [{"value": a["id"], "display": "Shown"}, {"value": b["id"]}],
        },
    )
    members = {m["value"]: m for m in r.json()["members"]}
    assert members[a["id"]]["display"] == "Shown"
    assert members[b["id"]]["display"] == "db@x.com"
    assert members[a["id"]]["type"] == "User"


def test_attributes_id_lists_exactly_what_the_projection_keeps(client):
    """``attributes=id`` is answered from the id column alone (the engine's deletion listing);
    every resource must be what projecting its full representation to ``id`` gives."""
    from provisor.scim.filter.parser import parse_attr_path
    from provisor.scim.projection import project
    from provisor.scim.schema.model import default_registry

    ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    for i in range(6):
        create_user(client, f"ids{i}@x.com", title="t" if i % 2 else "o", **{ext: {"department": f"D{i}"}})
    create_group(client, "ids group")
    registry = default_registry()
    cases = [
        ("Users", {}),
        ("Users", {"filter": 'title eq "t"', "startIndex": 2, "count": 1}),
        ("Users", {"sortBy": "userName", "sortOrder": "descending", "count": 4}),
        ("Users", {"count": 0}),
        ("Groups", {"filter": 'displayName eq "ids group"'}),
    ]
    for endpoint, params in cases:
        rt = registry.by_endpoint(endpoint)
        assert rt is not None
        full = client.get(f"/{endpoint}", params=params).json()
        for spelling in ("id", "ID", f"{rt.schema.id}:id"):
            got = client.get(f"/{endpoint}", params={**params, "attributes": spelling})
            assert got.status_code == 200
            body = got.json()
            want = [project(rt, r, [parse_attr_path("id", rt)]) for r in full["Resources"]]
            assert body["Resources"] == want and want == [
                {"schemas": [rt.schema.id], "id": r["id"]} for r in full["Resources"]
            ]
            assert {k: body[k] for k in ("totalResults", "startIndex", "itemsPerPage")} == {
                k: full[k] for k in ("totalResults", "startIndex", "itemsPerPage")
            }
    # a POST /.search with attributes ["id"] takes the same path
    searched = client.post(
        "/Users/.search", json={"schemas": [SEARCH], "attributes": ["id"], "filter": 'userName sw "ids"'}
    ).json()
    assert searched["totalResults"] == 6
    assert all(set(r) == {"schemas", "id"} for r in searched["Resources"])


LARGEST = 2**63 - 1


def _page_of(client: Any, endpoint: str, where: str, **paging: int) -> Any:
    """A page of ``endpoint`` (``/Users``, ``/Groups``) asked ``where``: ``query`` (the query
    string), ``search`` (its ``.search``) or ``root`` (``/.search``, across resource types)."""
    if where == "query":
        return client.get(endpoint, params={k: str(v) for k, v in paging.items()})
    url = "/.search" if where == "root" else f"{endpoint}/.search"
    return client.post(url, json={"schemas": [SEARCH], **paging})


@pytest.mark.parametrize("where", ["query", "search", "root"])
@pytest.mark.parametrize("endpoint", ["/Users", "/Groups"])
def test_a_start_index_past_every_result_is_an_empty_page_that_echoes_it(
    client: Any, endpoint: str, where: str
) -> None:
    """RFC 7644 section 3.4.2.4: a startIndex past the results gives an empty page, and the
    response's startIndex is the index asked, up to the largest signed 64-bit integer (the store
    is asked for at most 2**62, which means the same to it; the response used to say 2**62)."""
    create_user(client, "huge.index@x.com")
    create_group(client, "huge index")
    total = _page_of(client, endpoint, where, count=0).json()["totalResults"]
    for start in (total + 1, 2**62, 2**62 + 1, LARGEST):
        r = _page_of(client, endpoint, where, startIndex=start, count=5)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["startIndex"], body["itemsPerPage"], body["Resources"]) == (start, 0, [])
        assert body["totalResults"] == total
    r = client.get(endpoint, params={"startIndex": str(LARGEST), "attributes": "id"})
    assert r.status_code == 200 and r.json()["startIndex"] == LARGEST and r.json()["Resources"] == []
    # below 1 reads as 1 (RFC 7644 section 3.4.2.4), a negative count as 0
    assert _page_of(client, endpoint, where, startIndex=-(2**63)).json()["startIndex"] == 1
    assert _page_of(client, endpoint, where, count=-(2**63)).json()["itemsPerPage"] == 0


@pytest.mark.parametrize("where", ["query", "search", "root"])
@pytest.mark.parametrize("endpoint", ["/Users", "/Groups"])
@pytest.mark.parametrize("value", [2**63, 2**64, 10**30])
def test_a_start_index_past_64_bits_is_400_everywhere(
    client: Any, endpoint: str, where: str, value: int
) -> None:
    """An index no store could address (past signed 64 bits), which the empty page answering it
    could not echo, is 400 invalidValue naming the largest, in the query string and in a
    SearchRequest body alike (the JSON reader gives such numbers as floats: the message said
    "must be an integer, not 1e+30")."""
    r = _page_of(client, endpoint, where, startIndex=value)
    detail = assert_scim_error(r, 400, "invalidValue")["detail"]
    assert "startIndex" in detail and str(LARGEST) in detail and "e+" not in detail


@pytest.mark.parametrize("where", ["query", "search", "root"])
@pytest.mark.parametrize("endpoint", ["/Users", "/Groups"])
@pytest.mark.parametrize("value", [-(2**63) - 1, -(10**30)])
def test_paging_values_far_outside_64_bits_read_as_the_rfc_reads_them(
    client: Any, endpoint: str, where: str, value: int
) -> None:
    """RFC 7644 section 3.4.2.4 reads a startIndex below 1 as 1 and a negative count as 0, and a
    count above the maximum page size is lowered to it: however far outside 64 bits (they were
    400 "outside the integers Provisor holds")."""
    create_user(client, "far.index@x.com")
    create_group(client, "far index")
    total = _page_of(client, endpoint, where, count=0).json()["totalResults"]
    r = _page_of(client, endpoint, where, startIndex=value, count=1)
    assert r.status_code == 200, r.text
    assert (r.json()["startIndex"], r.json()["itemsPerPage"]) == (1, 1)
    r = _page_of(client, endpoint, where, count=value)
    assert r.status_code == 200, r.text
    assert (r.json()["itemsPerPage"], r.json()["Resources"] if "Resources" in r.json() else []) == (0, [])
    r = _page_of(client, endpoint, where, count=-value)  # far past the largest page
    assert r.status_code == 200, r.text
    assert r.json()["itemsPerPage"] == len(r.json()["Resources"]) == total


def test_a_paging_value_of_more_digits_than_python_reads_is_read_the_same(client: Any) -> None:
    """Past Python's digit limit for int() (4300 digits) the text is still a number, far outside
    the range: a count is lowered to the page size and a negative startIndex read as 1, a
    startIndex past it is the same 400 invalidValue; not a 500 or "must be an integer"."""
    create_user(client, "many.digits@x.com")
    assert client.get("/Users", params={"count": "9" * 5000}).json()["itemsPerPage"] >= 1
    assert client.get("/Users", params={"count": "-" + "9" * 5000}).json()["itemsPerPage"] == 0
    assert client.get("/Users", params={"startIndex": "-" + "9" * 5000}).json()["startIndex"] == 1
    r = client.get("/Users", params={"startIndex": "9" * 5000})
    assert "past the largest index" in assert_scim_error(r, 400, "invalidValue")["detail"]


def test_a_count_past_64_bits_with_a_cursor(client: Any) -> None:
    """RFC 9865: a cursor's count is at least 1 (400 invalidCount below), and lowered to the
    maximum page size above it, however far above."""
    create_user(client, "cursor.count@x.com")
    for r in (
        client.get("/Users", params={"cursor": "", "count": str(2**63)}),
        client.post("/Users/.search", json={"schemas": [SEARCH], "cursor": "", "count": 10**30}),
    ):
        assert r.status_code == 200, r.text
        assert r.json()["itemsPerPage"] >= 1
    for r in (
        client.get("/Users", params={"cursor": "", "count": str(-(2**63) - 1)}),
        client.post("/Users/.search", json={"schemas": [SEARCH], "cursor": "", "count": -(10**30)}),
    ):
        assert "at least 1" in assert_scim_error(r, 400, "invalidCount")["detail"]


@pytest.mark.parametrize("endpoint", ["/Users/.search", "/.search"])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("count", 1.5),
        ("count", 1.0),
        ("count", True),
        ("count", "5"),
        ("count", ""),
        ("count", [1]),
        ("count", {"n": 1}),
        ("startIndex", 2.5),
        ("startIndex", False),
        ("startIndex", "5"),
        ("StartIndex", "1"),
    ],
)
def test_a_search_body_takes_only_integers_as_start_index_and_count(
    client: Any, endpoint: str, name: str, value: Any
) -> None:
    """RFC 7644 section 3.4.3: a SearchRequest's startIndex and count are JSON integers; a
    fraction, a boolean or a string (even of digits: only the query string carries text) is
    refused with 400 invalidValue, as ``count=1.5`` in a query string is."""
    body = {"schemas": [SEARCH], "filter": 'userName sw "nobody"', name: value}
    detail = assert_scim_error(client.post(endpoint, json=body), 400, "invalidValue")["detail"]
    assert name in detail and "integer" in detail


@pytest.mark.parametrize("endpoint", ["/Users/.search", "/.search"])
def test_a_search_body_with_integer_or_null_paging_is_answered(client: Any, endpoint: str) -> None:
    create_user(client, "intbody1@x.com")
    create_user(client, "intbody2@x.com")
    search = {"schemas": [SEARCH], "filter": 'userName sw "intbody"', "sortBy": "userName"}
    if endpoint == "/.search":
        del search["sortBy"]
    r = client.post(endpoint, json={**search, "startIndex": 2, "count": 1})
    assert r.status_code == 200, r.text
    assert (r.json()["totalResults"], r.json()["startIndex"], r.json()["itemsPerPage"]) == (2, 2, 1)
    r = client.post(endpoint, json={**search, "startIndex": None, "count": None})
    assert r.status_code == 200, r.text
    assert (r.json()["startIndex"], r.json()["itemsPerPage"]) == (1, 2)


@pytest.mark.parametrize("value", ["1.5", "1.0", "true", "1_0", "\u0665", "0x5", "5e0"])
def test_a_query_string_count_is_a_number_of_ascii_digits(client: Any, value: str) -> None:
    """The query string's count and startIndex: an optional sign and ASCII digits, nothing else
    Python's int() would also read (underscores, other scripts' digits)."""
    for name in ("count", "startIndex"):
        detail = assert_scim_error(client.get("/Users", params={name: value}), 400, "invalidValue")["detail"]
        assert name in detail and "integer" in detail
    assert client.get("/Users", params={"count": " 3 ", "startIndex": "+1"}).status_code == 200


def test_a_search_body_count_with_a_cursor_is_an_integer_too(client: Any) -> None:
    r = client.post("/Users/.search", json={"schemas": [SEARCH], "cursor": "", "count": "5"})
    assert_scim_error(r, 400, "invalidCount")
    r = client.post("/Users/.search", json={"schemas": [SEARCH], "cursor": "", "count": 1.5})
    assert_scim_error(r, 400, "invalidCount")
    r = client.post("/Users/.search", json={"schemas": [SEARCH], "cursor": "", "count": 5})
    assert r.status_code == 200, r.text


def test_q2_string_booleans_in_filters_follow_the_tenant_switch(live):
    """entra-behaviour.md G2/Q2: Entra matches on ``roles[primary eq "True"].value`` and sends
    ``active eq "True"``; a 400 there failed every match query of such a mapping."""
    texts = ['roles[primary eq "True"].value eq "User"', 'userName eq "q2@x.com" and active eq "True"']
    for switches, ok in (({}, True), ({"compat": {"string_booleans": False}}, False)):
        _, token = live.new_tenant(switches)
        with live.client(token) as c:
            made = create_user(c, "q2@x.com", roles=[{"value": "User", "primary": True}, {"value": "Admin"}])
            create_user(c, "other@x.com", active=False, roles=[{"value": "User"}])
            for text in texts:
                for r in (
                    c.get("/Users", params={"filter": text}),
                    c.post("/Users/.search", json={"schemas": [SEARCH], "filter": text}),
                    c.post("/.search", json={"schemas": [SEARCH], "filter": text}),
                ):
                    if ok:
                        assert r.status_code == 200, r.text
                        assert [u["id"] for u in r.json()["Resources"]] == [made["id"]], text
                    else:
                        body = assert_scim_error(r, 400, "invalidFilter")
                        assert "true or false" in body["detail"] and "string_booleans" in body["detail"]
            found = c.get("/Users", params={"filter": 'active eq "false"'})
            assert found.status_code == (200 if ok else 400)


def test_a_get_on_the_base_searches_across_resource_types_as_post_search_does(client):
    """RFC 7644 section 3.4.2.1: queries may be made against the service provider root."""
    uid = create_user(client, "root@x.com", displayName="Root User")["id"]
    gid = create_group(client, "Root Group", [uid])["id"]
    text = 'displayName sw "Root "'
    for path in ("", "/"):
        got = client.get(path, params={"filter": text, "attributes": "displayName"})
        assert got.status_code == 200, got.text
        body = {"schemas": [SEARCH], "filter": text, "attributes": ["displayName"]}
        searched = client.post("/.search", json=body).json()
        assert got.json() == searched
        assert got.json()["totalResults"] == 2
        assert {r["id"] for r in got.json()["Resources"]} == {uid, gid}
    paged = client.get("/", params={"filter": text, "count": 1, "startIndex": 2}).json()
    assert paged["totalResults"] == 2 and paged["startIndex"] == 2 and len(paged["Resources"]) == 1
    assert_scim_error(client.get("/", params={"filter": text, "sortBy": "displayName"}), 400, "invalidValue")
    assert_scim_error(client.get("/", params={"filter": "nosuch eq 1"}), 400, "invalidFilter")
    r = client.post("/", json={})
    assert_scim_error(r, 405)
    assert r.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "query",
    [
        'filter=userName eq "twice@x.com"&filter=userName eq "nobody"',
        'filter=userName eq "twice@x.com"&Filter=userName eq "nobody"',
        "count=1&COUNT=5",
        "sortBy=userName&sortby=displayName",
        "attributes=userName&Attributes=emails",
    ],
)
def test_a_parameter_given_twice_is_refused_not_read_as_its_last(client, query):
    """Two filters, in one case or two: the last won, silently, and the client's other filter was
    answered as if never sent. Parameters that are no SCIM parameter pass as before."""
    create_user(client, "twice@x.com")
    error = assert_scim_error(client.get(f"/Users?{query}"), 400, "invalidValue")
    assert "given twice" in error["detail"]
    r = client.get('/Users?filter=userName eq "twice@x.com"&aadOptscim062020&aadOptscim062020&x=1&X=2')
    assert r.status_code == 200 and r.json()["totalResults"] == 1


def test_a_search_request_member_given_in_two_cases_is_refused(client):
    create_user(client, "twice@x.com")
    search = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName eq "twice@x.com"',
        "Filter": 'userName eq "nobody"',
    }
    for endpoint in ("/Users/.search", "/.search"):
        error = assert_scim_error(client.post(endpoint, json=search), 400, "invalidValue")
        assert "'Filter' is given twice" in error["detail"] or "'filter' is given twice" in error["detail"]
    del search["Filter"]
    assert client.post("/Users/.search", json=search).json()["totalResults"] == 1


def test_a_value_filter_on_name_tests_the_users_one_name(client):
    """``name[...]`` (RFC 7644 section 3.4.2.2: a valuePath on any complex attribute) was 400."""
    create_user(client, "both@x.com", name={"givenName": "Anna", "familyName": "Berg"})
    create_user(client, "given@x.com", name={"givenName": "Anna"})
    create_user(client, "nameless@x.com")

    def found(text: str) -> list[str]:
        page = client.get("/Users", params={"filter": text, "sortBy": "userName"}).json()
        return [u["userName"] for u in page["Resources"]]

    assert found('name[givenName eq "anna"]') == ["both@x.com", "given@x.com"]
    assert found('name[givenName eq "Anna" and familyName sw "b"]') == ["both@x.com"]
    assert found("name[not (familyName pr)]") == ["given@x.com"]  # a name, without a familyName
    assert found('not (name[givenName eq "Anna"])') == ["nameless@x.com"]
