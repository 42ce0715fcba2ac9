"""/Bulk (RFC 7644 section 3.7): bulkId references, failOnErrors, advertised and enforced limits."""

from __future__ import annotations

import json

from tests.conftest import ENTERPRISE, GROUP, USER, assert_scim_error, create_user, make_user, serving

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def bulk(*ops, **extra):
    return {"schemas": [BULK], "Operations": list(ops), **extra}


def test_bulk_with_forward_bulkid_references(client):
    r = client.post(
        "/Bulk",
        json=bulk(
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "g",
                "data": {
                    "schemas": [GROUP],
                    "displayName": "Bulk G",
                    "members": [{"value": "bulkId:u1"}, {"value": "bulkId:u2"}],
                },
            },
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "u1",
                "data": {"schemas": [USER], "userName": "b1@x.com"},
            },
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "u2",
                "data": {"schemas": [USER], "userName": "b2@x.com"},
            },
            {
                "method": "PATCH",
                "path": "/Users/bulkId:u1",
                "data": {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "displayName", "value": "B One"}],
                },
            },
        ),
    )
    assert r.status_code == 200, r.text
    ops = r.json()["Operations"]
    assert [o["status"] for o in ops] == ["201", "201", "201", "200"]
    group = next(o for o in ops if o.get("bulkId") == "g")
    gid = group["location"].rsplit("/", 1)[1]
    members = client.get(f"/Groups/{gid}").json()["members"]
    assert len(members) == 2
    u1 = client.get("/Users", params={"filter": 'userName eq "b1@x.com"'}).json()["Resources"][0]
    assert u1["displayName"] == "B One"


def test_bulk_fail_on_errors_stops(client):
    r = client.post(
        "/Bulk",
        json=bulk(
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "a",
                "data": {"schemas": [USER], "userName": "dup@x.com"},
            },
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "b",
                "data": {"schemas": [USER], "userName": "dup@x.com"},
            },
            {"method": "POST", "path": "/Users", "bulkId": "c", "data": {"schemas": [USER]}},
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "d",
                "data": {"schemas": [USER], "userName": "never@x.com"},
            },
            failOnErrors=2,
        ),
    )
    ops = r.json()["Operations"]
    assert [o["status"] for o in ops] == ["201", "409", "400"]
    assert ops[1]["response"]["scimType"] == "uniqueness"
    assert client.get("/Users", params={"filter": 'userName eq "never@x.com"'}).json()["totalResults"] == 0


def test_bulk_circular_and_unknown_references(client):
    """A cycle through the enterprise manager (not Group members) cannot be resolved: 409 each."""

    def managed_by(name: str, ref: str) -> dict:
        return {"schemas": [USER, ENTERPRISE], "userName": name, ENTERPRISE: {"manager": {"value": ref}}}

    r = client.post(
        "/Bulk",
        json=bulk(
            {"method": "POST", "path": "/Users", "bulkId": "x", "data": managed_by("x@x.com", "bulkId:y")},
            {"method": "POST", "path": "/Users", "bulkId": "y", "data": managed_by("y@x.com", "bulkId:x")},
            {"method": "DELETE", "path": "/Users/bulkId:nope"},
        ),
    )
    statuses = sorted(o["status"] for o in r.json()["Operations"])
    assert statuses == ["409", "409", "409"]
    assert client.get("/Users").json()["totalResults"] == 0


def test_bulk_fail_on_errors_counts_each_unresolvable_circular_reference(live, client):
    """Operations whose references stay circular fail at once, but failOnErrors still allows only
    so many errors: failOnErrors 1 reports the first of them, not every one (RFC 7644 section
    3.7.3: the response holds the error and the results before it). The User created before
    the cycle was given up on stays."""

    def managed_by(name: str, ref: str) -> dict:
        return {"schemas": [USER, ENTERPRISE], "userName": name, ENTERPRISE: {"manager": {"value": ref}}}

    r = client.post(
        "/Bulk",
        json=bulk(
            {"method": "POST", "path": "/Users", "bulkId": "x", "data": managed_by("x@x.com", "bulkId:y")},
            {"method": "POST", "path": "/Users", "bulkId": "y", "data": managed_by("y@x.com", "bulkId:x")},
            {"method": "POST", "path": "/Users", "bulkId": "z", "data": make_user("z@x.com")},
            failOnErrors=1,
        ),
    )
    assert r.status_code == 200, r.text
    ops = r.json()["Operations"]
    assert [(o["bulkId"], o["status"]) for o in ops] == [("x", "409"), ("z", "201")]
    assert ops[0]["response"]["scimType"] == "invalidValue"
    assert [u["userName"] for u in client.get("/Users").json()["Resources"]] == ["z@x.com"]


def test_bulk_limits_are_advertised_and_enforced(client):
    spc = client.get("/ServiceProviderConfig").json()["bulk"]
    assert spc["supported"] is True
    too_many = [{"method": "DELETE", "path": f"/Users/{i}"} for i in range(spc["maxOperations"] + 1)]
    assert_scim_error(client.post("/Bulk", json=bulk(*too_many)), 413)
    assert_scim_error(client.post("/Bulk", json={"Operations": []}), 400, "invalidSyntax")


def _sized_bulk(size: int, prefix: str) -> bytes:
    """A /Bulk body of three User creates, padded through displayName to exactly ``size`` bytes."""
    ops = [
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": f"p{i}",
            "data": {"schemas": [USER], "userName": f"{prefix}{i}@x.com", "displayName": ""},
        }
        for i in range(3)
    ]
    pad = size - len(json.dumps(bulk(*ops), separators=(",", ":")).encode())
    assert pad > 0
    for i, op in enumerate(ops):
        op["data"]["displayName"] = "x" * (pad // 3 + (1 if i < pad % 3 else 0))
    raw = json.dumps(bulk(*ops), separators=(",", ":")).encode()
    assert len(raw) == size
    return raw


def test_bulk_payload_size_is_advertised_and_enforced(client):
    """One byte over the advertised maxPayloadSize is 413 and applies nothing, with or without a
    Content-Length; a body of exactly that size is processed."""
    limit = client.get("/ServiceProviderConfig").json()["bulk"]["maxPayloadSize"]
    assert isinstance(limit, int) and limit > 0

    def created(prefix: str) -> int:
        flt = f'userName sw "{prefix}"'
        return client.get("/Users", params={"filter": flt, "count": 0}).json()["totalResults"]

    over = _sized_bulk(limit + 1, "over")
    body = assert_scim_error(client.post("/Bulk", content=over), 413)
    assert str(limit) in body["detail"]
    assert_scim_error(client.post("/Bulk", content=iter([over[:1024], over[1024:]])), 413)  # chunked
    assert created("over") == 0
    r = client.post("/Bulk", content=_sized_bulk(limit, "at"))
    assert r.status_code == 200, r.text
    assert [o["status"] for o in r.json()["Operations"]] == ["201", "201", "201"]
    assert created("at") == 3


def test_a_lower_max_body_bytes_lowers_the_bulk_payload_limit_too(tmp_path):
    """--max-body-bytes is the largest accepted request body: /Bulk kept its own 1 MiB, so a
    5 KB Bulk went through a server that refused 2 KB elsewhere. It is the lower of the two now,
    and maxPayloadSize says so; a higher one leaves /Bulk's 1 MiB as advertised."""
    from provisor.server import ServerConfig

    for max_body, limit in ((2000, 2000), (3_000_000, 1_048_576)):
        config = ServerConfig(access_log=False, max_body_bytes=max_body)
        with serving(f"sqlite:///{tmp_path / f'{max_body}.db'}", config) as live:
            with live.client(live.new_tenant()[1]) as c:
                assert c.get("/ServiceProviderConfig").json()["bulk"]["maxPayloadSize"] == limit
                if max_body == 2000:
                    assert_scim_error(c.post("/Bulk", content=_sized_bulk(2001, "big")), 413)
                    assert c.post("/Bulk", content=_sized_bulk(2000, "fits")).status_code == 200
                    assert c.get("/Users", params={"count": 0}).json()["totalResults"] == 3


def _without_response(op: dict) -> dict:
    return {k: v for k, v in op.items() if k != "response"}


def test_bulk_results_carry_location_except_a_failed_post(live, client):
    """RFC 7644 3.7: location on a DELETE 204, on a PUT 412, on a 404 and on a 400 of PUT, PATCH and
    DELETE (the addressed resource's URL, a path's bulkId resolved), none on a failed POST."""
    kept = create_user(client, "kept@x.com", displayName="Kept")
    gone = create_user(client, "gone@x.com")
    missing = "0" * 32
    kept_url, gone_url = f"{live.base}/Users/{kept['id']}", f"{live.base}/Users/{gone['id']}"
    stale = 'W/"999"'
    r = client.post(
        "/Bulk",
        json=bulk(
            {"method": "DELETE", "path": f"/Users/{gone['id']}"},
            {
                "method": "PUT",
                "path": f"/Users/{kept['id']}",
                "version": stale,
                "data": {"schemas": [USER], "userName": "kept@x.com", "displayName": "Overwritten"},
            },
            {
                "method": "PATCH",
                "path": f"/Users/{kept['id']}",
                "version": stale,
                "data": {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "displayName", "value": "Patched"}],
                },
            },
            {"method": "DELETE", "path": f"/Users/{missing}"},
            {"method": "PUT", "path": f"/Users/{kept['id']}", "data": {"schemas": [USER]}},
            {"method": "POST", "path": "/Users", "bulkId": "bad", "data": {"schemas": [USER]}},
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "ok",
                "data": {"schemas": [USER], "userName": "n@x.com"},
            },
            {"method": "DELETE", "path": "/Users/bulkId:ok"},
        ),
    )
    assert r.status_code == 200, r.text
    ops = r.json()["Operations"]
    created = ops[6]["location"]
    assert created.startswith(f"{live.base}/Users/")
    assert [_without_response(o) for o in ops] == [
        {"method": "DELETE", "location": gone_url, "status": "204"},
        {"method": "PUT", "location": kept_url, "status": "412"},
        {"method": "PATCH", "location": kept_url, "status": "412"},
        {"method": "DELETE", "location": f"{live.base}/Users/{missing}", "status": "404"},
        {"method": "PUT", "location": kept_url, "status": "400"},
        {"method": "POST", "bulkId": "bad", "status": "400"},
        {
            "method": "POST",
            "bulkId": "ok",
            "location": created,
            "status": "201",
            "version": ops[6]["version"],
        },
        {"method": "DELETE", "location": created, "status": "204"},
    ]
    assert [o.get("response", {}).get("status") for o in ops] == [
        None,
        "412",
        "412",
        "404",
        "400",
        "400",
        None,
        None,
    ]
    assert client.get(f"/Users/{kept['id']}").json() == kept
    assert_scim_error(client.get(f"/Users/{gone['id']}"), 404)
    assert_scim_error(client.get(created[len(live.base) :]), 404)


def test_bulk_location_when_the_path_names_no_resource(live, client):
    """No location when there is no resource to point at: a path without a known resource type,
    without an id, with extra segments, or naming the bulkId of a POST that failed; an unknown
    bulkId in the data of a PATCH on a real resource still reports that resource."""
    user = create_user(client, "u@x.com")
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "bulkId:nope"}],
    }
    r = client.post(
        "/Bulk",
        json=bulk(
            {"method": "DELETE", "path": "/Widgets/abc"},
            {"method": "DELETE", "path": "/Users/"},
            {"method": "DELETE", "path": "/Users/a/b"},
            {"method": "DELETE", "path": 7},
            {"method": "POST", "path": "/Users", "bulkId": "failed", "data": {"schemas": [USER]}},
            {"method": "PATCH", "path": "/Users/bulkId:failed", "data": patch},
            {"method": "PATCH", "path": f"/Users/{user['id']}", "data": patch},
        ),
    )
    assert r.status_code == 200, r.text
    ops = r.json()["Operations"]
    assert [_without_response(o) for o in ops] == [
        {"method": "DELETE", "status": "404"},
        {"method": "DELETE", "status": "405"},
        {"method": "DELETE", "status": "404"},
        {"method": "DELETE", "status": "400"},
        {"method": "POST", "bulkId": "failed", "status": "400"},
        {"method": "PATCH", "status": "409"},
        {"method": "PATCH", "location": f"{live.base}/Users/{user['id']}", "status": "409"},
    ]
    assert [o["response"].get("scimType") for o in ops] == [
        None,
        None,
        None,
        "invalidSyntax",
        "invalidValue",
        "invalidValue",
        "invalidValue",
    ]
    assert client.get(f"/Users/{user['id']}").json() == user


def test_bulk_version_that_is_not_a_string_fails_only_its_operation(live, client):
    """A version that is not a string is 400 invalidSyntax for its operation and writes nothing;
    the other operations, a correct version and a null (absent) one included, go through."""
    a = create_user(client, "a@x.com", displayName="A")
    b = create_user(client, "b@x.com", displayName="B")
    c = create_user(client, "c@x.com", displayName="C")
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Changed"}],
    }
    r = client.post(
        "/Bulk",
        json=bulk(
            {"method": "PATCH", "path": f"/Users/{a['id']}", "version": 1, "data": patch},
            {
                "method": "PUT",
                "path": f"/Users/{a['id']}",
                "version": ["x"],
                "data": {"schemas": [USER], "userName": "a@x.com", "displayName": "Changed"},
            },
            {"method": "DELETE", "path": f"/Users/{a['id']}", "version": {"v": 1}},
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "n",
                "version": True,
                "data": make_user("n@x.com"),
            },
            {"method": "PATCH", "path": f"/Users/{b['id']}", "version": b["meta"]["version"], "data": patch},
            {"method": "PATCH", "path": f"/Users/{c['id']}", "version": None, "data": patch},
        ),
    )
    assert r.status_code == 200, r.text
    ops = r.json()["Operations"]
    a_url = f"{live.base}/Users/{a['id']}"
    assert [_without_response(o) for o in ops[:4]] == [
        {"method": "PATCH", "location": a_url, "status": "400"},
        {"method": "PUT", "location": a_url, "status": "400"},
        {"method": "DELETE", "location": a_url, "status": "400"},
        {"method": "POST", "bulkId": "n", "status": "400"},
    ]
    for op in ops[:4]:
        assert op["response"]["status"] == "400"
        assert op["response"]["scimType"] == "invalidSyntax"
        assert "version" in op["response"]["detail"]
    assert [o["status"] for o in ops[4:]] == ["200", "200"]
    assert [o["location"] for o in ops[4:]] == [
        f"{live.base}/Users/{b['id']}",
        f"{live.base}/Users/{c['id']}",
    ]
    assert client.get(f"/Users/{a['id']}").json() == a
    assert client.get(f"/Users/{b['id']}").json()["displayName"] == "Changed"
    assert client.get(f"/Users/{c['id']}").json()["displayName"] == "Changed"
    assert client.get("/Users", params={"filter": 'userName eq "n@x.com"'}).json()["totalResults"] == 0


def _group_post(bulk_id: str, name: str, *members: str) -> dict:
    data = {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members]}
    return {"method": "POST", "path": "/Groups", "bulkId": bulk_id, "data": data}


def _member_ids(client, url: str, base: str) -> list[str]:
    return sorted(m["value"] for m in client.get(url[len(base) :]).json().get("members", []))


def test_bulk_resolves_circular_group_member_references(live, client):
    """RFC 7644 3.7.1: Group A with member bulkId:B and Group B with member bulkId:A are both 201,
    stored with each other as members; a Group only waiting on A and a PATCH of A run after them."""
    user = create_user(client, "member@x.com")
    r = client.post(
        "/Bulk",
        json=bulk(
            _group_post("qwerty1", "Group A", "bulkId:qwerty2"),
            _group_post("qwerty2", "Group B", "bulkId:qwerty1", user["id"]),
            _group_post("c", "Group C", "bulkId:qwerty1"),
            {
                "method": "PATCH",
                "path": "/Groups/bulkId:qwerty1",
                "data": {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "displayName", "value": "Group A2"}],
                },
            },
        ),
    )
    assert r.status_code == 200, r.text
    ops = r.json()["Operations"]
    a_url, b_url, c_url = (o.get("location", "") for o in ops[:3])
    assert all(u.startswith(f"{live.base}/Groups/") for u in (a_url, b_url, c_url))
    a_id, b_id, c_id = (u.rsplit("/", 1)[1] for u in (a_url, b_url, c_url))
    a, b, c = (client.get(f"/Groups/{i}").json() for i in (a_id, b_id, c_id))
    assert ops == [
        {
            "method": "POST",
            "bulkId": "qwerty1",
            "location": a_url,
            "status": "201",
            "version": ops[0]["version"],
        },
        {
            "method": "POST",
            "bulkId": "qwerty2",
            "location": b_url,
            "status": "201",
            "version": ops[1]["version"],
        },
        {
            "method": "POST",
            "status": "201",
            "bulkId": "c",
            "location": c_url,
            "version": ops[2]["version"],
        },
        {"method": "PATCH", "status": "204", "location": a_url, "version": a["meta"]["version"]},
    ]
    # B and C show A's displayName (members[].display): its rename, after they were created, gave
    # each a version more than its POST answered
    for op, group in ((ops[1], b), (ops[2], c)):
        assert int(group["meta"]["version"][3:-1]) == int(op["version"][3:-1]) + 1
        assert [m["display"] for m in group["members"] if m["value"] == a_id] == ["Group A2"]
    assert a["displayName"] == "Group A2" and b["displayName"] == "Group B"
    assert [m["value"] for m in a["members"]] == [b_id]
    assert sorted(m["value"] for m in b["members"]) == sorted([a_id, user["id"]])
    assert [m["value"] for m in c["members"]] == [a_id]
    assert client.get("/Groups").json()["totalResults"] == 3


def test_bulk_circular_groups_roll_back_when_a_partner_fails(live, client):
    """A cycle whose partner POST fails leaves nothing: the partner reports its own 400, the Groups
    that would miss it as a member are deleted again and report 409; an independent cycle in the
    same request is still created."""
    r = client.post(
        "/Bulk",
        json=bulk(
            _group_post("a", "A", "bulkId:b"),
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "b",
                "data": {"schemas": [GROUP], "members": [{"value": "bulkId:c"}]},
            },
            _group_post("c", "C", "bulkId:a"),
            _group_post("p", "P", "bulkId:q"),
            _group_post("q", "Q", "bulkId:p"),
        ),
    )
    assert r.status_code == 200, r.text
    ops = r.json()["Operations"]
    assert [_without_response(o) for o in ops[:3]] == [
        {"method": "POST", "bulkId": "a", "status": "409"},
        {"method": "POST", "bulkId": "b", "status": "400"},
        {"method": "POST", "bulkId": "c", "status": "409"},
    ]
    assert [o["response"]["scimType"] for o in ops[:3]] == ["invalidValue", "invalidValue", "invalidValue"]
    assert "'b'" in ops[0]["response"]["detail"] and "'a'" in ops[2]["response"]["detail"]
    assert [o["status"] for o in ops[3:]] == ["201", "201"]
    p_id, q_id = (o["location"].rsplit("/", 1)[1] for o in ops[3:])
    groups = client.get("/Groups").json()
    assert sorted(g["displayName"] for g in groups["Resources"]) == ["P", "Q"]
    assert [m["value"] for m in client.get(f"/Groups/{p_id}").json()["members"]] == [q_id]
    assert [m["value"] for m in client.get(f"/Groups/{q_id}").json()["members"]] == [p_id]


def test_bulk_circular_groups_roll_back_when_a_member_is_refused(live):
    """strict: a circular member the Group schema refuses fails its POST after the creates; it and
    the Group that would miss it are deleted again, nothing is stored."""
    _, token = live.new_tenant({"strict": True})
    with live.client(token) as client:
        bad = _group_post("a", "A", "bulkId:b")
        bad["data"]["members"][0]["bogus"] = "x"
        r = client.post("/Bulk", json=bulk(bad, _group_post("b", "B", "bulkId:a")))
        assert r.status_code == 200, r.text
        ops = r.json()["Operations"]
        assert [_without_response(o) for o in ops] == [
            {"method": "POST", "bulkId": "a", "status": "400"},
            {"method": "POST", "bulkId": "b", "status": "409"},
        ]
        direct = {"schemas": [GROUP], "displayName": "D", "members": [{"value": "0" * 32, "bogus": "x"}]}
        refused = assert_scim_error(client.post("/Groups", json=direct), 400)
        assert ops[0]["response"]["scimType"] == refused["scimType"] == "invalidValue"
        assert client.get("/Groups").json()["totalResults"] == 0


def test_bulk_reports_a_missing_or_non_string_method_without_inventing_one(client):
    """An operation whose method is null, absent or not a string fails with 400 invalidSyntax and
    its result carries no method (not "NONE", "" or "5": the request named none); a string is
    reported upper-cased, as the operation is matched against the methods."""
    path = "/Users/some-id"
    r = client.post(
        "/Bulk",
        json=bulk(
            {"method": None, "path": path, "bulkId": "n"},
            {"path": path, "bulkId": "absent"},
            {"method": 5, "path": path},
            {"method": ["POST"], "path": "/Users", "bulkId": "l"},
            {"method": "get", "path": path},
            "not an operation",
        ),
    )
    assert r.status_code == 200, r.text
    results = r.json()["Operations"]
    assert [o["status"] for o in results] == ["400"] * 6
    assert [o.get("method") for o in results] == [None, None, None, None, "GET", None]
    assert ["method" in o for o in results] == [False, False, False, False, True, False]
    assert [o.get("bulkId") for o in results] == ["n", "absent", None, "l", None, None]
    for o in results:
        assert o["response"]["scimType"] == "invalidSyntax"


def test_bulk_member_names_in_any_case(live, client):
    """RFC 7643 section 2.1: attribute names are case-insensitive, a BulkRequest's and its
    operations' too. A ``Version`` that no longer matches fails its operation (it was read as
    absent, and the write went through) and ``FAILONERRORS`` stops the request there (it was
    ignored, and the next operation ran)."""
    user = create_user(client, "v@x.com", displayName="V")
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Changed"}],
    }
    r = client.post(
        "/Bulk",
        json={
            "Schemas": [BULK],
            "FAILONERRORS": 1,
            "operations": [
                {"METHOD": "PATCH", "Path": f"/Users/{user['id']}", "Version": 'W/"999"', "DATA": patch},
                {"method": "POST", "path": "/Users", "BulkId": "n", "data": make_user("n@x.com")},
            ],
        },
    )
    assert r.status_code == 200, r.text
    ops = r.json()["Operations"]
    url = f"{live.base}/Users/{user['id']}"
    assert [_without_response(o) for o in ops] == [{"method": "PATCH", "location": url, "status": "412"}]
    assert client.get(f"/Users/{user['id']}").json() == user
    assert client.get("/Users", params={"filter": 'userName eq "n@x.com"'}).json()["totalResults"] == 0

    r = client.post(
        "/Bulk",
        json={
            "SCHEMAS": [BULK],
            "Operations": [
                {"Method": "POST", "PATH": "/Users", "bulkid": "m", "Data": make_user("m@x.com")},
                {"method": "PATCH", "path": "/Users/bulkId:m", "VERSION": 'W/"1"', "data": patch},
            ],
        },
    )
    assert r.status_code == 200, r.text
    ops = r.json()["Operations"]
    assert [(o["method"], o.get("bulkId"), o["status"]) for o in ops] == [
        ("POST", "m", "201"),
        ("PATCH", None, "200"),
    ]
    assert client.get(ops[1]["location"][len(live.base) :]).json()["displayName"] == "Changed"


def test_a_member_given_twice_in_two_cases_is_refused_and_runs_nothing(client):
    """RFC 7643 section 2.1: member names are case-insensitive, so no reading may pick one."""
    before = client.get("/Users", params={"count": 0}).json()["totalResults"]
    first = {"method": "POST", "path": "/Users", "bulkId": "a", "data": make_user("twice-a@x.com")}
    second = {"method": "POST", "path": "/Users", "bulkId": "b", "data": make_user("twice-b@x.com")}
    shapes = [
        {"schemas": [BULK], "Operations": [first], "operations": [second]},
        {"schemas": [BULK], "Operations": [first], "failOnErrors": 1, "FAILONERRORS": 2},
        bulk({**first, "PATH": "/Groups"}),
    ]
    for body in shapes:
        error = assert_scim_error(client.post("/Bulk", json=body), 400, "invalidSyntax")
        assert "twice" in error["detail"]
    assert client.get("/Users", params={"count": 0}).json()["totalResults"] == before


def _nested(depth):
    value = "x"
    for _ in range(depth):
        value = [value]
    return value


def test_deeply_nested_data_fails_only_its_operation(live, client):
    """Data nested hundreds of levels deep (an attribute value of [[[...]]]) fails its own
    operation with 400, as the same body sent to /Users does, and never the whole /Bulk: it
    answered 500 (a RecursionError walking the data for bulkId references) after the operations
    before it were stored, also when the deep operation waited in a cycle of Groups."""
    for depth in (65, 600):
        r = client.post(
            "/Bulk",
            json=bulk(
                {"method": "POST", "path": "/Users", "bulkId": "u", "data": make_user(f"deep{depth}@x.com")},
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": "n",
                    "data": {**make_user(f"nested{depth}@x.com"), "nickName": _nested(depth)},
                },
                {
                    "method": "POST",
                    "path": "/Groups",
                    "bulkId": "a",
                    "data": {
                        "schemas": [GROUP],
                        "displayName": f"a{depth}",
                        "members": [{"value": "bulkId:b"}],
                        "externalId": _nested(depth),
                    },
                },
                {
                    "method": "POST",
                    "path": "/Groups",
                    "bulkId": "b",
                    "data": {
                        "schemas": [GROUP],
                        "displayName": f"b{depth}",
                        "members": [{"value": "bulkId:a"}],
                    },
                },
            ),
        )
        assert r.status_code == 200, r.text
        results = r.json()["Operations"]
        assert [op["status"] for op in results] == ["201", "400", "400", "409"]
        assert "nests deeper than 64 levels" in results[1]["response"]["detail"]
        assert "bulkId:" not in json.dumps(results[0]) and results[0]["location"].startswith(live.base)
    # 64 levels of an ordinary shape still reach the schema's own check
    r = client.post(
        "/Bulk",
        json=bulk(
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "s",
                "data": {**make_user("s@x.com"), "nickName": _nested(62)},
            }
        ),
    )
    assert r.json()["Operations"][0]["status"] == "400"
    assert "nests deeper" not in r.json()["Operations"][0]["response"]["detail"]


def test_a_secret_token_pasted_as_an_id_is_redacted_in_the_location_too(live, client):
    """The result's detail redacts it (the IdP shows results in its provisioning logs); its
    location, shown beside it, did not."""
    secret = "pvs_" + "S3cret" * 7
    r = client.post("/Bulk", json=bulk({"method": "DELETE", "path": f"/Users/{secret}"}))
    assert r.status_code == 200, r.text
    [result] = r.json()["Operations"]
    assert result["status"] == "404" and secret not in json.dumps(result)
    assert result["location"] == f"{live.base}/Users/%5Bredacted%5D"
