"""/Bulk bulkId resolution (``server/bulk.py``): the order operations run in, and the work it takes.

Operations run in request order; one that names ``bulkId:X`` of a later POST has that POST run
first, as if it had been sent first, and the operations between keep their places (before, it
waited until X existed and so ran after them: a PATCH of X sent before X's POST and another sent
after applied in the wrong order). These tests hold the processor to :func:`reference_run`, the
same order written the plain recursive way, over many generated requests, compared by their
results and by the order of every call into the service; show that a chain of 1000 POSTs, each
naming the next, takes two tries per operation, not one per operation per pass (report 1b of the
red-team audit: 26 s for 1000 operations before); and check the order over HTTP.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from tests.conftest import GROUP, USER

from provisor.scim.errors import Conflict, InvalidValue
from provisor.scim.schema.model import ResourceType, default_registry
from provisor.server.bulk import BULK_REQUEST, BulkProcessor
from provisor.server.bulk_refs import Unresolved, failure
from provisor.server.service import Outcome
from provisor.server.tenancy import TenantContext, context_for
from provisor.store.base import Tenant

BASE = "https://scim.example/scim/v2"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class FakeService:
    """A ResourceService twin that records each call and refuses any body that mentions "bad"."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.made = 0

    def _call(self, name: str, rt: ResourceType, what: Any) -> None:
        text = orjson.dumps(what, option=orjson.OPT_SORT_KEYS).decode()
        self.calls.append((name, rt.name, text))
        if "bad" in text:
            raise InvalidValue(f"refused: {text}")

    def create(
        self, ctx: TenantContext, rt: ResourceType, data: Any, base_url: str, projection: Any
    ) -> Outcome:
        self._call("create", rt, data)
        self.made += 1
        id = f"id{self.made}"
        return Outcome(201, None, {"Location": f"{base_url}{rt.endpoint}/{id}", "ETag": 'W/"1"'}, id)

    def replace(self, ctx: TenantContext, rt: ResourceType, id: str, data: Any, *args: Any) -> Outcome:
        self._call("replace", rt, [id, data])
        return Outcome(200, None, {"Location": f"{BASE}{rt.endpoint}/{id}", "ETag": 'W/"2"'}, id)

    def patch(self, ctx: TenantContext, rt: ResourceType, id: str, data: Any, *args: Any) -> Outcome:
        self._call("patch", rt, [id, data])
        return Outcome(200, None, {"Location": f"{BASE}{rt.endpoint}/{id}", "ETag": 'W/"3"'}, id)

    def delete(self, ctx: TenantContext, rt: ResourceType, id: str, *args: Any) -> Outcome:
        self._call("delete", rt, id)
        return Outcome(204)


def reference_run(proc: BulkProcessor, ctx: TenantContext, ops: list[Any], fail_on: int | None) -> list[Any]:
    """The order /Bulk promises, written the plain way: passes over the request in order; an
    operation naming a later POST not yet run runs that POST first (recursively), then itself;
    one caught in a cycle of such references waits for the cycle resolver, and a pass follows
    each time it settles something."""
    posts = {
        op["bulkId"]: i
        for i, op in enumerate(ops)
        if isinstance(op, dict)
        and isinstance(op.get("bulkId"), str)
        and str(op.get("method", "")).upper() == "POST"
    }
    ids: dict[str, str] = {}
    results: dict[int, dict[str, Any]] = {}
    errors = 0

    def stopped() -> bool:
        return fail_on is not None and errors >= fail_on

    def attempt(i: int, active: frozenset[int], waiting: set[int]) -> None:
        nonlocal errors
        while not stopped():
            try:
                result = proc._one(ctx, ops[i], ids, BASE)
            except Unresolved as exc:
                j = posts.get(exc.bulk_id)
                if exc.bulk_id not in ids and j is not None and j not in results:
                    if j in active or j in waiting or j == i:
                        waiting.add(i)
                        return
                    attempt(j, active | {i}, waiting)
                    if j not in results:  # it waits, or failOnErrors stopped it
                        if not stopped():
                            waiting.add(i)
                        return
                    continue
                result = failure(
                    ops[i],
                    Conflict(f"unresolved bulkId reference {exc.bulk_id!r}", scim_type="invalidValue"),
                    proc._location(ops[i], ids, BASE),
                )
            results[i] = result
            if result["status"][0] in "45":
                errors += 1
            return

    while True:
        waiting: set[int] = set()
        for i in range(len(ops)):
            if not stopped() and i not in results and i not in waiting:
                attempt(i, frozenset(), waiting)
        if not waiting or stopped():
            break
        left = sorted(waiting)
        allowed = None if fail_on is None else fail_on - errors
        broken = proc._cycles.resolve(ctx, ops, left, ids, results, BASE, allowed)
        if not broken:
            for i in left if fail_on is None else left[: fail_on - errors]:
                results[i] = failure(
                    ops[i],
                    Conflict("circular bulkId references", scim_type="invalidValue"),
                    proc._location(ops[i], ids, BASE),
                )
            break
        errors += sum(1 for i in broken if results[i]["status"][0] in "45")
    return [results[i] for i in sorted(results)]


def context() -> TenantContext:
    return context_for(Tenant("t", "t", {}, datetime.now(UTC)), 1000)


def processor() -> tuple[BulkProcessor, FakeService]:
    service = FakeService()
    proc = BulkProcessor(service, default_registry(), max_operations=10_000, logger=lambda *a, **k: None)  # type: ignore[arg-type]
    return proc, service


def request(ops: list[Any], fail_on: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [BULK_REQUEST], "Operations": ops}
    if fail_on is not None:
        body["failOnErrors"] = fail_on
    return body


def random_ops(rng: random.Random) -> list[Any]:
    """A small request mixing forward, backward, self and unknown references, member cycles,
    refused bodies, malformed operations and every method."""
    n = rng.randint(1, 9)
    names = [f"b{i}" for i in range(n)] + ["nowhere"]

    def ref() -> str:
        return f"bulkId:{rng.choice(names)}"

    ops: list[Any] = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.03:
            ops.append("not an operation")
            continue
        if kind < 0.6:
            data: dict[str, Any] = {
                "schemas": [GROUP],
                "displayName": f"g{i}" + ("bad" if rng.random() < 0.1 else ""),
            }
            members = [{"value": ref()} for _ in range(rng.randint(0, 3))]
            if rng.random() < 0.1:
                members.append({"value": ref(), "display": "bad"})
            if members:
                data["members"] = members
            op: dict[str, Any] = {"method": "POST", "path": "/Groups", "bulkId": f"b{i}", "data": data}
        elif kind < 0.75:
            user: dict[str, Any] = {"schemas": [USER], "userName": f"u{i}"}
            if rng.random() < 0.3:
                user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = {
                    "manager": {"value": ref()}
                }
            op = {"method": "POST", "path": "/Users", "bulkId": f"b{i}", "data": user}
        else:
            method = rng.choice(["PATCH", "PUT", "DELETE", "GET", None])
            target = ref() if rng.random() < 0.7 else "some-id"
            value = [{"value": ref()}] if rng.random() < 0.5 else [{"value": "x"}]
            op = {"method": method, "path": f"/Groups/{target}"}
            if method == "PATCH":
                op["data"] = {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "add", "path": "members", "value": value}],
                }
            elif method == "PUT":
                op["data"] = {"schemas": [GROUP], "displayName": f"p{i}", "members": value}
            if rng.random() < 0.3:
                op["bulkId"] = f"b{i}"
        if rng.random() < 0.05:
            op.pop("bulkId", None)
        ops.append(op)
    return ops


def test_operations_run_in_the_order_and_with_the_results_of_the_plain_reading() -> None:
    rng = random.Random(7644)
    compared = cycles = waited = 0
    for _ in range(3000):
        ops = random_ops(rng)
        fail_on = rng.choice([None, None, 1, 2, 3])
        old, old_calls = processor()
        expected = reference_run(old, context(), ops, fail_on)
        new, new_calls = processor()
        got = new.run(context(), request(ops, fail_on), BASE)["Operations"]
        assert got == expected, ops
        assert new_calls.calls == old_calls.calls, ops
        compared += 1
        cycles += any("circular" in str(r) or "that POST failed" in str(r) for r in got)
        waited += any(o.get("data") and "bulkId:" in str(o) for o in ops if isinstance(o, dict))
    # the generator reaches the paths that matter
    assert compared == 3000 and cycles > 50 and waited > 1000


def test_a_reverse_chain_of_1000_posts_tries_each_operation_at_most_twice() -> None:
    n = 1000
    ops = []
    for i in range(n):
        data: dict[str, Any] = {"schemas": [GROUP], "displayName": f"chain-{i}"}
        if i < n - 1:
            data["members"] = [{"value": f"bulkId:b{i + 1}"}]
        ops.append({"method": "POST", "path": "/Groups", "bulkId": f"b{i}", "data": data})
    proc, service = processor()
    tries: list[int] = []
    one = proc._one

    def counted(ctx: TenantContext, op: Any, ids: dict[str, str], base_url: str) -> dict[str, Any]:
        tries.append(int(op["bulkId"][1:]))
        return one(ctx, op, ids, base_url)

    proc._one = counted  # type: ignore[method-assign]
    results = proc.run(context(), request(ops), BASE)["Operations"]
    assert [r["bulkId"] for r in results] == [f"b{i}" for i in range(n)]
    assert {r["status"] for r in results} == {"201"}
    # created last to first, each with the one created before it as its member
    assert [c[0] for c in service.calls] == ["create"] * n
    assert orjson.loads(service.calls[0][2]) == {"schemas": [GROUP], "displayName": f"chain-{n - 1}"}
    assert orjson.loads(service.calls[-1][2])["members"] == [{"value": f"id{n - 1}"}]
    # each waiting operation is tried once, then once more when what it waits on exists: 2n - 1
    # tries in all, against n (n + 1) / 2 when every pass tried every waiting operation
    assert len(tries) == 2 * n - 1
    assert tries[:n] == list(range(n)) and tries[n:] == list(range(n - 2, -1, -1))


def test_a_chain_that_fails_on_errors_stops_where_the_passes_did() -> None:
    """failOnErrors counts across the passes: a refused link fails every POST that named it."""
    ops: list[Any] = []
    for i in range(6):
        name = "bad" if i == 4 else f"g{i}"
        data: dict[str, Any] = {"schemas": [GROUP], "displayName": name}
        if i < 5:
            data["members"] = [{"value": f"bulkId:b{i + 1}"}]
        ops.append({"method": "POST", "path": "/Groups", "bulkId": f"b{i}", "data": data})
    proc, _ = processor()
    got = proc.run(context(), request(ops, 2), BASE)["Operations"]
    assert [(r["bulkId"], r["status"]) for r in got] == [("b3", "409"), ("b4", "400"), ("b5", "201")]
    assert "unresolved bulkId reference 'b4'" in got[0]["response"]["detail"]


@pytest.mark.parametrize("n", [2, 30])
def test_a_reverse_chain_over_http(client: Any, n: int) -> None:
    """A real server: each Group of the chain has the next as its only member."""
    tag = random.Random().getrandbits(32)
    ops = []
    for i in range(n):
        data: dict[str, Any] = {"schemas": [GROUP], "displayName": f"rc-{tag}-{i}"}
        if i < n - 1:
            data["members"] = [{"value": f"bulkId:b{i + 1}"}]
        ops.append({"method": "POST", "path": "/Groups", "bulkId": f"b{i}", "data": data})
    r = client.post("/Bulk", json=request(ops))
    assert r.status_code == 200, r.text
    results = r.json()["Operations"]
    assert [(o["bulkId"], o["status"]) for o in results] == [(f"b{i}", "201") for i in range(n)]
    ids = [o["location"].rsplit("/", 1)[1] for o in results]
    for i in range(n):
        members = client.get(f"/Groups/{ids[i]}").json().get("members", [])
        assert [m["value"] for m in members] == ([ids[i + 1]] if i < n - 1 else [])


def test_operations_around_a_later_post_keep_their_order_over_http(client: Any) -> None:
    """RFC 7644 section 3.7: "the same stateful result": a PATCH of X sent before X's POST and
    one sent after it apply in that order (the first ran last, so the user kept "FIRST"), and a
    member added before X's POST and removed after it is gone."""
    tag = random.Random().getrandbits(32)

    def replace_name(name: str) -> dict[str, Any]:
        ops = [{"op": "replace", "path": "displayName", "value": name}]
        return {
            "method": "PATCH",
            "path": "/Users/bulkId:n",
            "data": {"schemas": [PATCH_OP], "Operations": ops},
        }

    ops = [
        replace_name("FIRST"),
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "n",
            "data": {"schemas": [USER], "userName": f"n{tag}"},
        },
        replace_name("LAST"),
    ]
    r = client.post("/Bulk", json=request(ops))
    assert r.status_code == 200, r.text
    results = r.json()["Operations"]
    assert [o["status"] for o in results] == ["200", "201", "200"]
    assert [o["version"] for o in results] == ['W/"2"', 'W/"1"', 'W/"3"']
    user = client.get(results[1]["location"].rsplit("/scim/v2", 1)[1]).json()
    assert user["displayName"] == "LAST"

    made = client.post("/Groups", json={"schemas": [GROUP], "displayName": f"order-{tag}"})
    gid = made.json()["id"]

    def members(op: str, value: Any) -> dict[str, Any]:
        path = "members" if op == "add" else 'members[value eq "bulkId:m"]'
        patch = {"op": op, "path": path, **({"value": value} if value is not None else {})}
        return {
            "method": "PATCH",
            "path": f"/Groups/{gid}",
            "data": {"schemas": [PATCH_OP], "Operations": [patch]},
        }

    ops = [
        members("add", [{"value": "bulkId:m"}]),
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "m",
            "data": {"schemas": [USER], "userName": f"m{tag}"},
        },
        members("remove", None),
    ]
    r = client.post("/Bulk", json=request(ops))
    assert [o["status"] for o in r.json()["Operations"]] == ["204", "201", "204"]
    assert client.get(f"/Groups/{gid}").json().get("members", []) == []
