"""/Bulk (RFC 7644 section 3.7) against the same operations sent one request at a time.

RFC 7644 section 3.7.3: each result's status is "the HTTP response code that would have been
returned if a single HTTP request would have been used"; section 3.7 asks a Bulk that reorders
for "the same stateful result ... as for non-optimized processing". Hypothesis draws short
sequences of writes on one tenant: Users and Groups created with bulkIds and named by later
operations, in paths, in Group members (with and without ``type``), in a manager and in the
filter of Entra's member remove (``members[value eq "bulkId:X"]``); PUT, PATCH (Entra's member
add and remove shapes among them) and DELETE of those and of resources the tenant had; some
wrong on purpose (a duplicate userName or displayName, a missing resource, a malformed PATCH, a
bulkId no POST defines, a version that no longer matches), on tenants with the compatibility
quirks on or off, with the BulkRequest's member names in any case (RFC 7643 section 2.1).

Each sequence runs as one /Bulk request on a fresh tenant, and as single requests on another,
with the bulkIds replaced by hand by the ids the creates returned. An operation naming a bulkId
that no create produced (none defines it, or its POST failed) is left out of the single
requests; the Bulk fails it with 409 ``invalidValue`` (bulk.py: RFC 7644 names no status for
it; 409 is what section 3.7.1 gives a reference it cannot resolve). Every result must then
agree (status, error type, location, version) and so must the tenants' Users, with their
groups, and Groups, with their members, modulo ids and timestamps; with failOnErrors the Bulk
stops after exactly that many errors, and what follows is neither reported nor applied. Only
backward references are drawn, since a single request cannot name what is created after it, and
only well-formed operation paths: a path that is no resource's (``/Users`` for a DELETE) fails
its Bulk operation with 400 ``invalidSyntax``, where the single request is 405 or 404
(test_bulk.py holds that choice).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.conftest import ENTERPRISE, GROUP, PATCH_OP, USER, LiveServer

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
REF = "bulkId:"
#: Resources every tenant has before the sequence, named ``seed:<name>`` in operations.
SEED = "seed:"
MISSING = "0" * 32  # the id of no resource
UNKNOWN = "bulkId:nope"  # a bulkId no operation defines
USER_NAMES = ["ann@x.com", "bob@x.com", "Ann@x.com", "seed0@x.com"]
GROUP_NAMES = ["Sales", "sales", "Ops", "Seed Group"]
VERSIONS = [None, None, None, None, 'W/"1"', 'W/"2"', 'W/"3"', 'W/"999"', "*"]


# -- the sequences ---------------------------------------------------------------------------


@st.composite
def sequences(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1-12 Bulk operations whose references name only seeds and earlier operations."""
    users = [f"{SEED}u0", f"{SEED}u1"]  # references to Users: seeds, then each User POST's bulkId
    groups = [f"{SEED}g0"]
    strays = [MISSING, UNKNOWN]  # references that never resolve to a resource of the type

    def ref(pool: list[str]) -> str:
        return draw(st.sampled_from(pool)) if draw(st.integers(0, 9)) < 8 else draw(st.sampled_from(strays))

    def members(low: int = 0) -> list[dict[str, Any]]:
        listed = []
        for _ in range(draw(st.integers(low, 3))):
            member: dict[str, Any] = {"value": ref(users + groups)}
            extra = draw(st.sampled_from([None, None, "User", "Group", "display"]))
            if extra == "display":
                member["display"] = "Shown"
            elif extra is not None:
                member["type"] = extra  # right or wrong for the value
            listed.append(member)
        return listed

    def version() -> str | None:
        return draw(st.sampled_from(VERSIONS))

    def user(i: int) -> dict[str, Any]:
        data: dict[str, Any] = {"schemas": [USER]}
        if draw(st.integers(0, 9)):  # one in ten without userName: 400
            data["userName"] = draw(st.sampled_from(USER_NAMES))
        name = draw(st.sampled_from([None, "Ann", "Bob"]))
        if name is not None:
            data["displayName"] = name
        if draw(st.booleans()):
            data["active"] = draw(st.booleans())
        if draw(st.integers(0, 3)) == 0:
            data["schemas"] = [USER, ENTERPRISE]
            data[ENTERPRISE] = {"manager": {"value": ref(users)}, "department": f"d{i}"}
        return data

    def group() -> dict[str, Any]:
        data: dict[str, Any] = {"schemas": [GROUP], "displayName": draw(st.sampled_from(GROUP_NAMES))}
        listed = members()
        if listed or draw(st.booleans()):
            data["members"] = listed
        return data

    def user_patch() -> dict[str, Any]:
        shapes: list[Any] = [
            {"op": "replace", "path": "displayName", "value": draw(st.sampled_from(["Ann", "Zed"]))},
            {"op": "Replace", "path": "active", "value": "False"},  # Entra's string boolean
            {"op": "add", "path": "nickName", "value": "nick"},
            {"op": "remove", "path": "displayName"},
            {"op": "replace", "path": "userName", "value": draw(st.sampled_from(USER_NAMES))},
            {"op": "replace", "value": {"displayName": "Pathless", "title": "T"}},
            {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": ref(users)}},
            {"op": "explode", "path": "displayName", "value": "x"},  # malformed: 400
            {"op": "replace", "path": "displayName[", "value": "x"},  # malformed path: 400
            {"op": "replace", "path": "id", "value": "mine"},  # immutable
        ]
        ops = draw(st.lists(st.sampled_from(shapes), min_size=1, max_size=2))
        if draw(st.integers(0, 14)) == 0:
            return {"schemas": [PATCH_OP]}  # no Operations: 400
        return {"schemas": [PATCH_OP], "Operations": ops}

    def group_patch() -> dict[str, Any]:
        named = ref(users + groups)  # Entra's remove names the member in the path's filter
        shapes: list[Any] = [
            {
                "op": "Add",
                "path": "members",
                "value": [{"$ref": None, "value": m["value"]} for m in members(1)],
            },
            {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": ref(users + groups)}]},
            {"op": "remove", "path": f'members[value eq "{named}"]'},
            {"op": "add", "path": "members", "value": members(1)},
            {"op": "replace", "path": "members", "value": members()},
            {"op": "Replace", "path": "displayName", "value": draw(st.sampled_from(GROUP_NAMES))},
            {"op": "remove", "path": "members"},
            {"op": "explode", "path": "members", "value": []},  # malformed: 400
            {"op": "remove"},  # remove without a path: 400 noTarget
        ]
        ops = draw(st.lists(st.sampled_from(shapes), min_size=1, max_size=2))
        return {"schemas": [PATCH_OP], "Operations": ops}

    ops: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 12))):
        kind = draw(
            st.sampled_from(
                ["post_user"] * 3
                + ["post_group"] * 3
                + ["put", "put", "patch_user", "patch_group"] * 2
                + ["delete"]
            )
        )
        op: dict[str, Any]
        if kind == "post_user":
            op = {"method": "POST", "path": "/Users", "bulkId": f"b{i}", "data": user(i)}
            users.append(f"{REF}b{i}")
        elif kind == "post_group":
            op = {"method": "POST", "path": "/Groups", "bulkId": f"b{i}", "data": group()}
            groups.append(f"{REF}b{i}")
        elif kind == "put":
            if draw(st.booleans()):
                op = {"method": "PUT", "path": f"/Users/{ref(users)}", "data": user(i)}
            else:
                op = {"method": "PUT", "path": f"/Groups/{ref(groups)}", "data": group()}
        elif kind == "patch_user":
            op = {"method": "PATCH", "path": f"/Users/{ref(users)}", "data": user_patch()}
        elif kind == "patch_group":
            op = {"method": "PATCH", "path": f"/Groups/{ref(groups)}", "data": group_patch()}
        else:
            endpoint, pool = draw(st.sampled_from([("Users", users), ("Groups", groups)]))
            op = {"method": "DELETE", "path": f"/{endpoint}/{ref(pool)}"}
        if op["method"] != "POST":
            op_version = version()
            if op_version is not None:
                op["version"] = op_version
            if draw(st.integers(0, 7)) == 0:  # a bulkId on no POST: naming it resolves nothing
                op["bulkId"] = f"x{i}"
                strays.append(f"{REF}x{i}")
        elif draw(st.integers(0, 9)) == 0:
            op["version"] = 'W/"1"'  # a POST's version is ignored, as a create ignores If-Match
        ops.append(op)
    return ops


# -- running them ----------------------------------------------------------------------------


class Unresolved(Exception):
    """A reference names a bulkId that no create produced."""


def fill(value: Any, ids: dict[str, str], *, refs: bool) -> Any:
    """``value`` with each seed's name replaced by its id (anywhere in a string, a member filter
    too) and, with ``refs``, each ``bulkId:X`` string by X's created id (Unresolved if none)."""
    if isinstance(value, str):
        if refs and value.startswith(REF):
            if value not in ids:
                raise Unresolved(value)
            return ids[value]
        if refs:  # a quoted bulkId in a filter: members[value eq "bulkId:X"]
            for quoted in re.findall(r'"(bulkId:[^"]*)"', value):
                if quoted not in ids:
                    raise Unresolved(quoted)
                value = value.replace(f'"{quoted}"', f'"{ids[quoted]}"')
        for name, id in ids.items():
            if name.startswith(SEED):
                value = value.replace(name, id)
        return value
    if isinstance(value, list):
        return [fill(v, ids, refs=refs) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, ids, refs=refs) for k, v in value.items()}
    return value


def fill_path(path: str, ids: dict[str, str]) -> str:
    return "/".join(fill(part, ids, refs=True) for part in path.split("/"))


@dataclass(frozen=True)
class Single:
    """What the single request of an operation answered; ``status`` None: it was left out, its
    reference unresolved."""

    status: int | None
    location: str | None
    version: str | None = None
    scim_type: str | None = None


def seed(client: httpx.Client) -> dict[str, str]:
    """The seeds, the same in every tenant; returns their names' ids."""

    def made(r: httpx.Response) -> str:
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    u0 = made(client.post("/Users", json={"schemas": [USER], "userName": "seed0@x.com"}))
    u1 = made(
        client.post("/Users", json={"schemas": [USER], "userName": "seed1@x.com", "displayName": "One"})
    )
    g0 = made(
        client.post(
            "/Groups", json={"schemas": [GROUP], "displayName": "Seed Group", "members": [{"value": u0}]}
        )
    )
    return {f"{SEED}u0": u0, f"{SEED}u1": u1, f"{SEED}g0": g0}


def run_singly(
    live: LiveServer,
    client: httpx.Client,
    ops: list[dict[str, Any]],
    ids: dict[str, str],
    fail_on: int | None,
) -> list[Single]:
    """Send ``ops`` one request each, in order, until ``fail_on`` of them failed (a left-out one
    counts: its Bulk operation fails); ``ids`` gains each created resource's bulkId."""
    results: list[Single] = []
    errors = 0
    for op in ops:
        if fail_on is not None and errors >= fail_on:
            break
        method, path = op["method"], op["path"]
        try:
            target = fill_path(path, ids)
        except Unresolved:
            target = None
        location = None if method == "POST" or target is None else f"{live.base}{target}"
        try:
            if target is None:
                raise Unresolved(path)
            data = fill(op.get("data"), ids, refs=True)
        except Unresolved:
            results.append(Single(None, location))
            errors += 1
            continue
        headers = {"If-Match": op["version"]} if "version" in op else {}
        r = client.request(method, target, json=data, headers=headers)
        assert r.status_code < 500, r.text
        scim_type = None
        if r.status_code >= 400:
            errors += 1
            scim_type = r.json().get("scimType")
        elif method == "POST":
            ids[f"{REF}{op['bulkId']}"] = r.json()["id"]
            location = r.headers["location"]
        else:
            assert r.headers.get("location", location) == location
        version = r.headers.get("etag") if r.status_code < 300 else None
        results.append(Single(r.status_code, location, version, scim_type))
    return results


def canonical(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with every id of ``ids`` replaced by its name, in any string (a URL too)."""
    if isinstance(value, str):
        for name, id in ids.items():
            value = value.replace(id, f"<{name}>")
        return value
    if isinstance(value, list):
        return [canonical(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: canonical(v, ids) for k, v in value.items()}
    return value


def state(client: httpx.Client, ids: dict[str, str]) -> list[str]:
    """The tenant's Users (with their groups) and Groups (with their members), ids named and
    timestamps dropped, members and groups in a fixed order."""
    shown = []
    for endpoint in ("/Users", "/Groups"):
        page = client.get(endpoint, params={"count": 1000}).json()
        assert page["totalResults"] == len(page["Resources"])
        # the kept count (an unfiltered total without a page) and pages one resource long
        assert client.get(endpoint, params={"count": 0}).json()["totalResults"] == len(page["Resources"])
        paged = [
            client.get(endpoint, params={"count": 1, "startIndex": i + 1}).json()
            for i in range(len(page["Resources"]))
        ]
        assert [p["Resources"][0]["id"] for p in paged] == [r["id"] for r in page["Resources"]]
        assert all(p["totalResults"] == len(page["Resources"]) for p in paged)
        for doc in page["Resources"]:
            doc = canonical(doc, ids)
            doc["meta"] = {k: v for k, v in doc["meta"].items() if k not in ("created", "lastModified")}
            for key in ("members", "groups"):
                if key in doc:
                    doc[key] = sorted(doc[key], key=lambda m: json.dumps(m, sort_keys=True))
            shown.append(json.dumps(doc, sort_keys=True))
    return sorted(shown)


def spelled(message: dict[str, Any], spelling: str) -> dict[str, Any]:
    """``message`` with its member names in ``spelling``: RFC 7643 section 2.1 makes attribute
    names case-insensitive, those of a BulkRequest and its operations too."""
    change = {"as sent": str, "lower": str.lower, "upper": str.upper, "title": str.title}[spelling]
    return {change(k): v for k, v in message.items()}


def check(
    live: LiveServer, ops: list[dict[str, Any]], fail_on: int | None, strict: bool, spelling: str = "as sent"
) -> None:
    """Run ``ops`` as one Bulk on a fresh tenant and singly on another (``strict``: tenants with
    every compatibility quirk off), and compare the results and the tenants."""
    settings_ = {"strict": True} if strict else {}
    _, bulk_token = live.new_tenant(settings_)
    _, single_token = live.new_tenant(settings_)
    with live.client(bulk_token) as bulk_client, live.client(single_token) as single_client:
        bulk_ids, single_ids = seed(bulk_client), seed(single_client)
        sent = [spelled(op, spelling) for op in fill(ops, bulk_ids, refs=False)]
        body: dict[str, Any] = {"schemas": [BULK], "Operations": sent}
        if fail_on is not None:
            body["failOnErrors"] = fail_on
        body = spelled(body, spelling)
        r = bulk_client.post("/Bulk", json=body)
        assert r.status_code == 200, r.text
        got = r.json()["Operations"]
        expected = run_singly(live, single_client, ops, single_ids, fail_on)

        # failOnErrors: the Bulk stops where the singles stopped, after exactly that many errors,
        # and reports nothing after (nor applies it: the states below)
        assert len(got) == len(expected), (got, expected)
        if len(got) < len(ops):
            assert fail_on is not None and sum(o["status"][0] in "45" for o in got) == fail_on, got
        ops = ops[: len(got)]
        for op, result in zip(ops, got, strict=True):
            if result["status"] == "201" and op["method"] == "POST":
                bulk_ids[f"{REF}{op['bulkId']}"] = result["location"].rsplit("/", 1)[1]
        for i, (op, result, single) in enumerate(zip(ops, got, expected, strict=True)):
            where = f"operation {i}: {op}\nbulk: {result}\nsingle: {single}"
            assert result["status"][0] != "5", where
            assert result.get("method") == op["method"], where
            assert result.get("bulkId") == op.get("bulkId"), where
            location = result.get("location")
            assert canonical(location, bulk_ids) == canonical(single.location, single_ids), where
            if single.status is None:  # its reference names no created resource
                assert result["status"] == "409", where
                assert result["response"]["scimType"] == "invalidValue", where
                assert "version" not in result, where
                continue
            assert result["status"] == str(single.status), where
            assert result.get("version") == single.version, where
            if single.status >= 400:
                assert result["response"]["status"] == result["status"], where
                assert result["response"].get("scimType") == single.scim_type, where
        assert state(bulk_client, bulk_ids) == state(single_client, single_ids)


def _patch_group(target: str, *operations: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": "PATCH",
        "path": target,
        "data": {"schemas": [PATCH_OP], "Operations": list(operations)},
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(  # what the search found first: member names in other cases (If-Match and the limit)
    ops=[
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "b0",
            "data": {"schemas": [USER], "userName": "seed1@x.com"},
        },
        {"method": "DELETE", "path": f"/Users/{SEED}u0", "version": 'W/"999"'},
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "b2",
            "data": {"schemas": [USER], "userName": "ann@x.com"},
        },
    ],
    fail_on=2,
    strict=False,
    spelling="upper",
)
@example(  # Entra's member remove naming a created User, and one whose create failed
    ops=[
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "b0",
            "data": {"schemas": [USER], "userName": "ann@x.com"},
        },
        {"method": "POST", "path": "/Users", "bulkId": "b1", "data": {"schemas": [USER]}},
        _patch_group(
            f"/Groups/{SEED}g0", {"op": "add", "path": "members", "value": [{"value": "bulkId:b0"}]}
        ),
        _patch_group(f"/Groups/{SEED}g0", {"op": "remove", "path": 'members[value eq "bulkId:b1"]'}),
        _patch_group(f"/Groups/{SEED}g0", {"op": "remove", "path": 'members[value eq "bulkId:b0"]'}),
    ],
    fail_on=None,
    strict=False,
    spelling="as sent",
)
@given(
    ops=sequences(),
    fail_on=st.sampled_from([None, None, 1, 2, 3]),
    strict=st.booleans(),
    spelling=st.sampled_from(["as sent"] * 5 + ["lower", "upper", "title"]),
)
def test_bulk_agrees_with_the_same_requests_sent_singly(live, ops, fail_on, strict, spelling):
    check(live, ops, fail_on, strict, spelling)
