"""bulkId references (``server/bulk_refs.py``): in values, and in the filters of PATCH paths."""

from __future__ import annotations

import pytest
from tests.conftest import GROUP, PATCH_OP, USER

from provisor.server.bulk_refs import Unresolved, substitute_in_paths

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def test_a_bulkid_literal_in_a_patch_path_is_replaced_by_the_created_id():
    ids = {"u": "id-u", 'q"uote': "id-q"}
    data = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "remove", "path": 'members[value eq "bulkId:u"]'},
            {"OP": "remove", "PATH": 'members[value eq "bulkId:q\\"uote" or display eq "bulkId:u"]'},
            {"op": "replace", "path": "displayName", "value": "bulkId: u"},
            {"op": "remove", "path": 'members[display eq "says \\"bulkId:u\\""]'},
            {"op": "remove", "path": 'members[value eq "bulkId:u'},  # does not scan: as sent
            "not an operation",
        ],
    }
    assert substitute_in_paths(data, ids) == {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "remove", "path": 'members[value eq "id-u"]'},
            {"OP": "remove", "PATH": 'members[value eq "id-q" or display eq "id-u"]'},
            {"op": "replace", "path": "displayName", "value": "bulkId: u"},
            {"op": "remove", "path": 'members[display eq "says \\"bulkId:u\\""]'},
            {"op": "remove", "path": 'members[value eq "bulkId:u'},
            "not an operation",
        ],
    }
    assert substitute_in_paths(["not", "a PatchOp"], ids) == ["not", "a PatchOp"]
    with pytest.raises(Unresolved) as caught:
        substitute_in_paths({"Operations": [{"op": "remove", "path": 'members[value eq "bulkId:v"]'}]}, ids)
    assert caught.value.bulk_id == "v"


def test_entras_member_remove_names_a_member_created_in_the_same_bulk(live, client):
    """``members[value eq "bulkId:X"]`` removes X's User (it answered 204 and removed nothing);
    naming a bulkId whose POST failed is 409 ``invalidValue``, as it is in a member value."""
    r = client.post(
        "/Bulk",
        json={
            "schemas": [BULK],
            "Operations": [
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": "u",
                    "data": {"schemas": [USER], "userName": "u@x.com"},
                },
                {"method": "POST", "path": "/Users", "bulkId": "bad", "data": {"schemas": [USER]}},
                {
                    "method": "POST",
                    "path": "/Groups",
                    "bulkId": "g",
                    "data": {"schemas": [GROUP], "displayName": "G", "members": [{"value": "bulkId:u"}]},
                },
                {
                    "method": "PATCH",
                    "path": "/Groups/bulkId:g",
                    "data": {
                        "schemas": [PATCH_OP],
                        "Operations": [{"op": "remove", "path": 'members[value eq "bulkId:bad"]'}],
                    },
                },
                {
                    "method": "PATCH",
                    "path": "/Groups/bulkId:g",
                    "data": {
                        "schemas": [PATCH_OP],
                        "Operations": [{"op": "remove", "path": 'members[value eq "bulkId:u"]'}],
                    },
                },
            ],
        },
    )
    assert r.status_code == 200, r.text
    ops = r.json()["Operations"]
    assert [o["status"] for o in ops] == ["201", "400", "201", "409", "204"]
    assert ops[3]["response"]["scimType"] == "invalidValue"
    group = client.get(ops[2]["location"][len(live.base) :]).json()
    assert group.get("members", []) == []
    assert ops[4]["version"] == group["meta"]["version"] == 'W/"2"'
