"""Representations over HTTP are spliced from the stored document's text (``render_json``) unless
``attributes``/``excludedAttributes`` ask for a projection; both ways give the same resource, in
the same order, on every path that shows one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.conftest import GROUP, PATCH_OP, create_user

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

# ``excludedAttributes=password`` (never returned anyway) takes the built-and-projected path.
BUILT = {"excludedAttributes": "password"}


def _ordered(r: httpx.Response) -> list[tuple[str, Any]]:
    assert r.status_code in (200, 201), r.text
    return list(orjson.loads(r.content).items())


def test_spliced_and_built_representations_are_the_same(client: httpx.Client) -> None:
    body = {
        # sent in no particular order, with nulls: stored canonical, shown in schema order
        ENTERPRISE: {"manager": "boss-1", "department": "Sales", "division": None},
        "title": "Engineer",
        "emails": [{"value": "ann@contoso.com", "type": "work", "primary": True}],
        "externalId": "ann-ext",
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": "ann@contoso.com",
        "nickName": None,
        "name": {"givenName": "Ann", "familyName": "Lee"},
    }
    created = client.post("/Users", json=body)
    uid = created.json()["id"]
    group = client.post(
        "/Groups", json={"schemas": [GROUP], "displayName": "Sales", "members": [{"value": uid}]}
    )
    assert group.status_code == 201, group.text
    spliced = _ordered(client.get(f"/Users/{uid}"))
    assert spliced == _ordered(client.get(f"/Users/{uid}", params=BUILT))
    assert [k for k, _ in spliced] == [
        "schemas",
        "id",
        "externalId",
        "userName",
        "name",
        "title",
        "active",  # active_by_default
        "emails",
        ENTERPRISE,
        "groups",
        "meta",
    ]
    assert dict(spliced)[ENTERPRISE] == {"department": "Sales", "manager": {"value": "boss-1"}}
    listed = orjson.loads(client.get("/Users", params={"filter": 'userName eq "ANN@contoso.com"'}).content)
    assert list(listed["Resources"][0].items()) == spliced
    # the create's response showed the same resource (no groups yet, the same meta.created)
    shown = dict(_ordered(created))
    assert shown["meta"]["created"] == dict(spliced)["meta"]["created"] and "groups" not in shown
    gid = group.json()["id"]
    assert _ordered(client.get(f"/Groups/{gid}")) == _ordered(client.get(f"/Groups/{gid}", params=BUILT))


def test_patch_and_put_responses_show_the_stored_canonical_document(client: httpx.Client) -> None:
    u = create_user(client, "bo@contoso.com", displayName="Bo")
    r = client.patch(
        f"/Users/{u['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "value": {"title": "CTO", "externalId": "bo-ext"}}],
        },
    )
    patched = _ordered(r)
    assert patched == _ordered(client.get(f"/Users/{u['id']}"))
    assert [k for k, _ in patched][:5] == ["schemas", "id", "externalId", "userName", "displayName"]
    put = client.put(
        f"/Users/{u['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "title": "CEO",
            "userName": "bo@contoso.com",
        },
    )
    assert _ordered(put) == _ordered(client.get(f"/Users/{u['id']}"))
    assert dict(_ordered(put))["title"] == "CEO" and "externalId" not in dict(_ordered(put))


def test_the_server_speaks_its_stores_schemas(tmp_path: Path) -> None:
    from provisor.scim.schema.model import SchemaRegistry, default_registry
    from provisor.server import create_app
    from provisor.store.sql import SqlStore

    mine = default_registry()
    other = SchemaRegistry(mine.schemas, mine.resource_types)
    store = SqlStore(f"sqlite:///{tmp_path / 's.db'}", registry=other)
    try:
        assert create_app(store).scim.registry is other
        assert create_app(store, registry=other).scim.registry is other
        with pytest.raises(ValueError, match="same schemas"):
            create_app(store, registry=mine)
    finally:
        store.close()
