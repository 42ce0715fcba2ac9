"""ETags (RFC 7644 section 3.14): meta.version, If-Match -> 412, If-None-Match -> 304."""

from __future__ import annotations

from tests.conftest import PATCH_OP, assert_scim_error, create_user


def test_etag_round_trip(client):
    u = create_user(client, "etag@x.com")
    v1 = u["meta"]["version"]
    assert v1.startswith('W/"')
    r = client.get(f"/Users/{u['id']}", headers={"If-None-Match": v1})
    assert r.status_code == 304 and r.content == b""
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "E"}]}
    r = client.patch(f"/Users/{u['id']}", json=body, headers={"If-Match": v1})
    assert r.status_code == 200
    v2 = r.headers["etag"]
    assert v2 != v1 and r.json()["meta"]["version"] == v2
    # a stale version is refused and nothing changes
    body["Operations"][0]["value"] = "Stale"
    assert_scim_error(client.patch(f"/Users/{u['id']}", json=body, headers={"If-Match": v1}), 412)
    assert_scim_error(
        client.put(
            f"/Users/{u['id']}",
            json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "etag@x.com"},
            headers={"If-Match": v1},
        ),
        412,
    )
    assert_scim_error(client.delete(f"/Users/{u['id']}", headers={"If-Match": v1}), 412)
    got = client.get(f"/Users/{u['id']}", headers={"If-None-Match": v1})
    assert got.status_code == 200 and got.json()["displayName"] == "E"
    assert client.delete(f"/Users/{u['id']}", headers={"If-Match": v2}).status_code == 204


def test_if_match_star_matches_any(client):
    u = create_user(client, "star@x.com")
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "S"}]}
    assert client.patch(f"/Users/{u['id']}", json=body, headers={"If-Match": "*"}).status_code == 200
