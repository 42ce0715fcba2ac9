"""Circular bulkId references between Group members (``server/bulk_cycles.py``) and failOnErrors."""

from __future__ import annotations

import pytest
from tests.conftest import GROUP, create_group

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def _group_post(bulk_id: str, name: str, *members: str) -> dict:
    data = {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members]}
    return {"method": "POST", "path": "/Groups", "bulkId": bulk_id, "data": data}


@pytest.fixture
def taken(client):
    """The client of a fresh tenant that holds a Group named "Taken"."""
    create_group(client, "Taken")
    return client


def _bulk(client, operations: list[dict], fail_on: int | None) -> list[dict]:
    body: dict = {"schemas": [BULK], "Operations": operations}
    if fail_on is not None:
        body["failOnErrors"] = fail_on
    r = client.post("/Bulk", json=body)
    assert r.status_code == 200, r.text
    return r.json()["Operations"]


def _names(client) -> list[str]:
    return sorted(g["displayName"] for g in client.get("/Groups").json()["Resources"])


@pytest.mark.parametrize(
    ("fail_on", "reported"),
    [
        (None, [("a", "409"), ("b", "409"), ("c", "201"), ("d", "201")]),
        (1, [("b", "409")]),
        (2, [("a", "409"), ("b", "409")]),
        (3, [("a", "409"), ("b", "409"), ("c", "201"), ("d", "201")]),
    ],
)
def test_a_cycle_past_the_error_limit_is_not_created(taken, fail_on, reported):
    """Two unrelated cycles: A and B name each other, C and D too, and B's name is taken, so the
    first fails: B's 409 uniqueness, then A's 409 for the member it would miss (A was created
    before B failed, and is deleted again). With failOnErrors 1, B's is the one error reported:
    A, deleted again past the limit, has no result, as an operation after the limit has none.
    With 1 or 2, C and D are neither created nor reported; with 3, or none, they are."""
    operations = [
        _group_post("a", "A", "bulkId:b"),
        _group_post("b", "Taken", "bulkId:a"),
        _group_post("c", "C", "bulkId:d"),
        _group_post("d", "D", "bulkId:c"),
    ]
    ops = _bulk(taken, operations, fail_on)
    assert [(o["bulkId"], o["status"]) for o in ops] == reported
    failed = [o["response"]["scimType"] for o in ops if o["status"] == "409"]
    assert failed == (["uniqueness"] if fail_on == 1 else ["invalidValue", "uniqueness"])
    assert _names(taken) == (["C", "D", "Taken"] if len(reported) == 4 else ["Taken"])
    if len(reported) == 4:
        c_id, d_id = (o["location"].rsplit("/", 1)[1] for o in ops[2:])
        assert [m["value"] for m in taken.get(f"/Groups/{c_id}").json()["members"]] == [d_id]
        assert [m["value"] for m in taken.get(f"/Groups/{d_id}").json()["members"]] == [c_id]


@pytest.mark.parametrize(
    ("fail_on", "reported"),
    [
        (None, [("a", "409"), ("b", "409"), ("c", "409")]),
        (1, [("a", "409")]),
        (2, [("a", "409"), ("c", "409")]),
    ],
)
def test_a_cycle_whose_first_post_fails_stops_at_the_limit(taken, fail_on, reported):
    """A names B, B names C, C names A, and A's name is taken: A fails first. C, which names it,
    fails 409 without being created, as the operation after A would; B, created before C failed,
    is deleted again, reported while the limit allows. With failOnErrors 1 nothing after A's
    error is run or reported."""
    operations = [
        _group_post("a", "Taken", "bulkId:b"),
        _group_post("b", "B", "bulkId:c"),
        _group_post("c", "C", "bulkId:a"),
    ]
    ops = _bulk(taken, operations, fail_on)
    assert [(o["bulkId"], o["status"]) for o in ops] == reported
    assert [o["response"]["scimType"] for o in ops] == ["uniqueness"] + ["invalidValue"] * (len(ops) - 1)
    assert _names(taken) == ["Taken"]


@pytest.mark.parametrize(
    ("fail_on", "reported"),
    [
        (None, [("a", "201"), ("b", "201"), ("c", "409"), ("d", "409")]),
        (1, [("a", "201"), ("b", "201"), ("c", "409")]),
    ],
)
def test_groups_created_before_the_limit_are_completed_and_those_after_it_not_run(taken, fail_on, reported):
    """One set: A and B name each other, C and D too, and C names A as well. C's name is taken.
    A and B, created before C failed, still get their members (they miss none); D, which C
    names, is not run with failOnErrors 1 and has no result; with no limit it fails 409."""
    operations = [
        _group_post("a", "A", "bulkId:b"),
        _group_post("b", "B", "bulkId:a"),
        _group_post("c", "Taken", "bulkId:d", "bulkId:a"),
        _group_post("d", "D", "bulkId:c"),
    ]
    ops = _bulk(taken, operations, fail_on)
    assert [(o["bulkId"], o["status"]) for o in ops] == reported
    assert _names(taken) == ["A", "B", "Taken"]
    a_id, b_id = (o["location"].rsplit("/", 1)[1] for o in ops[:2])
    a, b = (taken.get(f"/Groups/{i}").json() for i in (a_id, b_id))
    assert [m["value"] for m in a["members"]] == [b_id] and [m["value"] for m in b["members"]] == [a_id]
    assert [a["meta"]["version"], b["meta"]["version"]] == [o["version"] for o in ops[:2]]


@pytest.mark.parametrize(("fail_on", "reported"), [(None, [("a", "400"), ("b", "409")]), (1, [("a", "400")])])
def test_a_member_refused_after_the_creates_stops_at_the_limit(live, fail_on, reported):
    """strict: A's member B carries an attribute the Group schema refuses, which fails A's member
    PATCH after both were created; A is deleted and reports 400, and B, which would miss A, is
    deleted too: reported 409 with no limit, and with failOnErrors 1 not at all."""
    _, token = live.new_tenant({"strict": True})
    with live.client(token) as client:
        bad = _group_post("a", "A", "bulkId:b")
        bad["data"]["members"][0]["bogus"] = "x"
        ops = _bulk(client, [bad, _group_post("b", "B", "bulkId:a")], fail_on)
        assert [(o["bulkId"], o["status"]) for o in ops] == reported
        assert _names(client) == []
