"""``returned`` of an extension's attributes over HTTP (RFC 7643 section 7): a ``request``
attribute is shown by a read only when ``attributes`` lists it, and by a write's response only
when the write specified it; an ``always`` one stays when its extension is excluded (RFC 7644
section 3.4.2.5). Core schemas have no ``request`` attribute, so only a declared extension shows
it (a probe found every read returning them: the representation was spliced unprojected)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.conftest import PATCH_OP, LiveServer, serving

from provisor.scim.schema import USER, default_registry
from provisor.scim.schema.extensions import parse_extension

RET = "urn:example:params:scim:schemas:extension:Ret:2.0:User"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
EXTENSION = {
    "id": RET,
    "name": "Ret",
    "attributes": [
        {"name": "plain", "type": "string"},
        {"name": "reqOnly", "type": "string", "returned": "request"},
        {"name": "alw", "type": "string", "returned": "always"},
        {
            "name": "cx",
            "type": "complex",
            "subAttributes": [
                {"name": "a", "type": "string", "returned": "request"},
                {"name": "b", "type": "string", "returned": "always"},
                {"name": "c", "type": "string"},
            ],
        },
    ],
}
FULL = {"plain": "p", "reqOnly": "q", "alw": "w", "cx": {"a": "A", "b": "B", "c": "C"}}
#: what a read without attributes shows of FULL
SHOWN = {"plain": "p", "alw": "w", "cx": {"b": "B", "c": "C"}}


@pytest.fixture(scope="module")
def live_ret(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from provisor.store.sql import SqlStore

    url = f"sqlite:///{tmp_path_factory.mktemp('returned') / 'provisor.db'}"
    setup = SqlStore(url)
    setup.add_schema_extension(parse_extension(EXTENSION, default_registry(), "User"))
    setup.close()
    with serving(url) as live:
        yield live


@pytest.fixture
def c(live_ret: LiveServer) -> Iterator[httpx.Client]:
    _, token = live_ret.new_tenant()
    with live_ret.client(token) as client:
        yield client


def create(c: httpx.Client, user_name: str, ext: dict[str, Any]) -> dict[str, Any]:
    r = c.post("/Users", json={"schemas": [USER, RET], "userName": user_name, RET: ext})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_reads_show_request_attributes_only_when_listed(c: httpx.Client) -> None:
    made = create(c, "ret.a@x.com", FULL)
    assert made[RET] == FULL  # the create specified them all
    uid = made["id"]
    by_id = c.get(f"/Users/{uid}").json()
    assert by_id[RET] == SHOWN
    listed = c.get("/Users", params={"filter": 'userName eq "ret.a@x.com"'}).json()["Resources"]
    assert [u[RET] for u in listed] == [SHOWN]
    searched = c.post("/Users/.search", json={"schemas": [SEARCH], "filter": 'userName eq "ret.a@x.com"'})
    assert [u[RET] for u in searched.json()["Resources"]] == [SHOWN]
    # listed, they are shown (a listed complex attribute keeps its default sub-attributes)
    asked = c.get(f"/Users/{uid}", params={"attributes": f"{RET}:reqOnly,{RET}:cx.a"}).json()
    assert asked[RET] == {"reqOnly": "q", "alw": "w", "cx": {"a": "A", "b": "B"}}
    # excluding the whole extension keeps its "always" attribute
    excluded = c.get(f"/Users/{uid}", params={"excludedAttributes": RET}).json()
    assert excluded[RET] == {"alw": "w"} and RET in excluded["schemas"]
    # the version is the resource's, whatever a response shows of it
    etags = {c.get(f"/Users/{uid}", params=q).headers["ETag"] for q in ({}, {"attributes": f"{RET}:reqOnly"})}
    assert etags == {made["meta"]["version"]} == {by_id["meta"]["version"]}


def test_writes_show_request_attributes_they_specified(c: httpx.Client) -> None:
    uid = create(c, "ret.b@x.com", {"plain": "p"})["id"]
    assert c.get(f"/Users/{uid}").json()[RET] == {"plain": "p"}

    def patched(*ops: dict[str, Any]) -> dict[str, Any]:
        r = c.patch(f"/Users/{uid}", json={"schemas": [PATCH_OP], "Operations": list(ops)})
        assert r.status_code == 200, r.text
        return dict(r.json())

    assert patched({"op": "add", "path": f"{RET}:reqOnly", "value": "q"})[RET] == {
        "plain": "p",
        "reqOnly": "q",
    }
    # one that names it shows it, changed or not (a replace by the value it holds)
    assert patched({"op": "replace", "path": f"{RET}:reqOnly", "value": "q"})[RET] == {
        "plain": "p",
        "reqOnly": "q",
    }
    # a PATCH that changes another attribute does not show it
    assert patched({"op": "replace", "path": "title", "value": "Boss"})[RET] == {"plain": "p"}
    shown = patched({"op": "add", "path": f"{RET}:cx", "value": {"a": "A", "c": "C"}})[RET]
    assert shown == {"plain": "p", "cx": {"a": "A", "c": "C"}}
    # a change of cx.c alone does not specify its sibling cx.a
    assert patched({"op": "replace", "path": f"{RET}:cx.c", "value": "C2"})[RET] == {
        "plain": "p",
        "cx": {"c": "C2"},
    }
    # a PUT shows those its body gives
    body = {"schemas": [USER, RET], "userName": "ret.b@x.com", RET: {"reqOnly": "q2", "cx": {"c": "C"}}}
    r = c.put(f"/Users/{uid}", json=body)
    assert r.status_code == 200, r.text
    assert r.json()[RET] == {"reqOnly": "q2", "cx": {"c": "C"}}
    assert c.get(f"/Users/{uid}").json()[RET] == {"cx": {"c": "C"}}
    # and attributes on a write still selects
    r = c.put(f"/Users/{uid}", json=body, params={"attributes": "userName"})
    assert RET not in r.json() and r.json()["userName"] == "ret.b@x.com"
