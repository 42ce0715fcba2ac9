"""/Bulk (RFC 7644 section 3.7): bulkId references, failOnErrors, advertised and enforced limits."""

from __future__ import annotations

import json

from tests.conftest import GROUP, USER, assert_scim_error

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
    r = client.post(
        "/Bulk",
        json=bulk(
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "x",
                "data": {"schemas": [GROUP], "displayName": "X", "members": [{"value": "bulkId:y"}]},
            },
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "y",
                "data": {"schemas": [GROUP], "displayName": "Y", "members": [{"value": "bulkId:x"}]},
            },
            {"method": "DELETE", "path": "/Users/bulkId:nope"},
        ),
    )
    statuses = sorted(o["status"] for o in r.json()["Operations"])
    assert statuses == ["409", "409", "409"]


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
