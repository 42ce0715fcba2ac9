"""Circular bulkId references between Group members (``server/bulk_cycles.py``) and failOnErrors."""

from __future__ import annotations

import pytest
from tests.conftest import GROUP, create_group

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def _group_post(bulk_id: str, name: str, *members: str) -> dict:
    data = {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members]}
    return {"method": "POST", "path": "/Groups", "bulkId": bulk_id, "data": data}


@pytest.mark.parametrize(
    ("fail_on", "reported"),
    [
        (None, ["409", "409", "201", "201"]),
        (1, ["409", "409"]),
        (2, ["409", "409"]),
        (3, ["409", "409", "201", "201"]),
    ],
)
def test_a_cycle_past_the_error_limit_is_not_created(live, fail_on, reported):
    """Two unrelated cycles: A and B name each other, C and D too, and B's name is taken, so the
    first fails (B's 409 uniqueness, A's 409 for the member it would miss). With failOnErrors 1
    or 2 that is the limit, and C and D are neither created nor reported (they were: every cycle
    was one step); with 3, or none, they are."""
    _, token = live.new_tenant()
    with live.client(token) as client:
        create_group(client, "Taken")
        body = {
            "schemas": [BULK],
            "Operations": [
                _group_post("a", "A", "bulkId:b"),
                _group_post("b", "Taken", "bulkId:a"),
                _group_post("c", "C", "bulkId:d"),
                _group_post("d", "D", "bulkId:c"),
            ],
        }
        if fail_on is not None:
            body["failOnErrors"] = fail_on
        r = client.post("/Bulk", json=body)
        assert r.status_code == 200, r.text
        ops = r.json()["Operations"]
        assert [o["status"] for o in ops] == reported
        assert [o["response"]["scimType"] for o in ops[:2]] == ["invalidValue", "uniqueness"]
        names = sorted(g["displayName"] for g in client.get("/Groups").json()["Resources"])
        assert names == (["C", "D", "Taken"] if len(reported) == 4 else ["Taken"])
        if len(reported) == 4:
            c_id, d_id = (o["location"].rsplit("/", 1)[1] for o in ops[2:])
            assert [m["value"] for m in client.get(f"/Groups/{c_id}").json()["members"]] == [d_id]
            assert [m["value"] for m in client.get(f"/Groups/{d_id}").json()["members"]] == [c_id]
