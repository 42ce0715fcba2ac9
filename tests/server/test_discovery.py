"""Discovery (RFC 7644 section 4) tells the truth about what is supported."""

from __future__ import annotations

from tests.conftest import ENTERPRISE, GROUP, USER, assert_scim_error


def test_service_provider_config(client):
    spc = client.get("/ServiceProviderConfig").json()
    assert spc["patch"]["supported"] and spc["bulk"]["supported"] and spc["filter"]["supported"]
    assert spc["sort"]["supported"] and spc["etag"]["supported"]
    assert spc["changePassword"]["supported"] is False
    assert spc["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    assert "documentationUri" not in spc  # none configured: no link to a page that is not the app's


def test_the_documentation_uri_is_the_apps(tmp_path):
    from tests.conftest import serving

    from provisor.server import ServerConfig

    docs = "https://docs.example.com/scim"
    with serving(
        f"sqlite:///{tmp_path / 'd.db'}", ServerConfig(access_log=False, documentation_uri=docs)
    ) as live:
        _, token = live.new_tenant()
        with live.client(token) as client:
            assert client.get("/ServiceProviderConfig").json()["documentationUri"] == docs


def test_resource_types_and_schemas(client):
    rts = client.get("/ResourceTypes").json()
    assert {r["name"] for r in rts["Resources"]} == {"User", "Group"}
    user = client.get("/ResourceTypes/User").json()
    assert user["schema"] == USER and user["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
    schemas = client.get("/Schemas").json()
    assert {s["id"] for s in schemas["Resources"]} == {USER, GROUP, ENTERPRISE}
    one = client.get(f"/Schemas/{ENTERPRISE}").json()
    manager = next(a for a in one["attributes"] if a["name"] == "manager")
    assert manager["type"] == "complex"
    # camelCase values, no nulls (what Entra's schema discovery wants)
    assert all(v is not None for a in one["attributes"] for v in a.values())
    # externalId, a common attribute Entra maps, is listed by the core schemas (RFC 7643 section 3.1
    # allows it; Microsoft's gallery validation looks for it), once, first; id and meta are not
    for urn in (USER, GROUP):
        names = [a["name"] for a in client.get(f"/Schemas/{urn}").json()["attributes"]]
        assert names[0] == "externalId" and names.count("externalId") == 1, names
        assert "id" not in names and "meta" not in names
    external = client.get(f"/Schemas/{USER}").json()["attributes"][0]
    assert external["caseExact"] is True and external["mutability"] == "readWrite"
    assert "externalId" not in [a["name"] for a in one["attributes"]]  # not in an extension
    assert_scim_error(client.get("/Schemas/urn:nope"), 404)
    assert_scim_error(client.get("/ResourceTypes/Nope"), 404)


def test_the_schemas_say_which_names_are_unique_as_the_server_enforces(client):
    """Discovery tells the truth: userName and a Group's displayName are unique per tenant (a
    second one is 409 uniqueness), and are advertised as uniqueness "server"."""

    def uniqueness(urn: str, name: str) -> str:
        attrs = client.get(f"/Schemas/{urn}").json()["attributes"]
        return next(a["uniqueness"] for a in attrs if a["name"] == name)

    assert uniqueness(USER, "userName") == "server" and uniqueness(GROUP, "displayName") == "server"
    group = {"schemas": [GROUP], "displayName": "Sales"}
    assert client.post("/Groups", json=group).status_code == 201
    assert_scim_error(client.post("/Groups", json={**group, "displayName": "SALES"}), 409, "uniqueness")
    assert uniqueness(USER, "displayName") == "none"
    assert (
        client.post("/Users", json={"schemas": [USER], "userName": "a", "displayName": "Same"}).status_code
        == 201
    )
    assert (
        client.post("/Users", json={"schemas": [USER], "userName": "b", "displayName": "Same"}).status_code
        == 201
    )


def test_the_schemas_say_a_member_needs_a_value_as_the_server_enforces(client):
    """RFC 7643 section 4.2 serves members.value as not required; Provisor refuses a member
    without one (it names no resource), so its schema says so."""
    members = next(a for a in client.get(f"/Schemas/{GROUP}").json()["attributes"] if a["name"] == "members")
    assert next(s["required"] for s in members["subAttributes"] if s["name"] == "value") is True
    group = {"schemas": [GROUP], "displayName": "Nameless member", "members": [{"display": "x"}]}
    assert (
        "members[0].value is required" in assert_scim_error(client.post("/Groups", json=group), 400)["detail"]
    )


def test_a_filter_on_a_discovery_endpoint_is_403(client):
    # RFC 7644 section 4: the discovery endpoints do not filter; a filter gets 403 so that no
    # client takes its conditions for applied
    for path in (
        "/Schemas",
        f"/Schemas/{USER}",
        "/ResourceTypes",
        "/ResourceTypes/User",
        "/ServiceProviderConfig",
    ):
        assert_scim_error(client.get(path, params={"filter": 'id eq "x"'}), 403)
    assert_scim_error(client.get("/ResourceTypes", params={"Filter": 'name eq "User"'}), 403)
    assert client.get("/Schemas", params={"count": "1"}).status_code == 200
