"""The HTTP edge: every client mistake is a SCIM Error with the right status, and changes nothing."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from tests.conftest import ENTERPRISE, GROUP, PATCH_OP, USER, assert_scim_error, create_user, make_user


def count_users(client: httpx.Client) -> int:
    return client.get("/Users", params={"count": 0}).json()["totalResults"]


def test_no_token_and_bad_token_are_401(live, client):
    with live.client(None) as anon:
        r = anon.get("/Users")
        assert_scim_error(r, 401)
        assert r.headers["www-authenticate"].startswith("Bearer")
        # authentication comes before routing: a stranger learns nothing of the endpoints
        for r in (anon.get("/NoSuch"), anon.options("/Users"), anon.get("/Me"), anon.delete("/Users")):
            assert_scim_error(r, 401)
        assert r.headers["www-authenticate"] == 'Bearer realm="SCIM"'  # no credentials: no error code
    with live.client("pvs_not-a-real-token") as bad:
        r = bad.get("/Users")
        assert_scim_error(r, 401)
        # RFC 6750 section 3.1: a token was presented and is not valid
        assert r.headers["www-authenticate"] == 'Bearer realm="SCIM", error="invalid_token"'

    r = httpx.get(f"{live.base}/Users", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_scim_error(r, 401)


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ("", "the Authorization header is empty"),
        ("Bearer", "names the Bearer scheme but no Secret Token"),
        ("bearer", "names the Bearer scheme but no Secret Token"),
        ("Bearer\tpvs_abc", "with a space, not a tab"),
        ("Bearer pvs_a, Bearer pvs_b", "send one Secret Token after Bearer"),
        ("Basic dXNlcjpwYXNz", "use the Bearer scheme"),
    ],
)
def test_a_header_naming_no_secret_token_says_what_is_wrong_with_it(live, header, says):
    """A client that did use Bearer was told to use the Bearer scheme."""
    r = httpx.get(f"{live.base}/Users", headers={"Authorization": header})
    assert says in assert_scim_error(r, 401)["detail"]


def test_okta_style_authorization_variants_reach_the_tenant_only_with_its_switch_on(live, tenant):
    """bearer_scheme_variants: 'Bearer Bearer <token>' (Okta's SCIM connection adds 'Bearer' to
    a value that has it) and a bare pvs_ token; with the tenant's switch off, 401 as before."""
    _, token = tenant
    _, strict_token = live.new_tenant({"compat": {"bearer_scheme_variants": False}})
    for good in (token, strict_token):
        assert httpx.get(f"{live.base}/Users", headers={"Authorization": f"bearer {good}"}).status_code == 200
    for variant in (f"Bearer Bearer {token}", f"BEARER  bearer {token}", token):
        r = httpx.get(f"{live.base}/Users", headers={"Authorization": variant})
        assert r.status_code == 200, (variant[:12], r.text)
    for variant in (f"Bearer Bearer {strict_token}", strict_token):
        body = assert_scim_error(httpx.get(f"{live.base}/Users", headers={"Authorization": variant}), 401)
        assert "Bearer <Secret Token>" in body["detail"]
    # a variant of a wrong token, or of no pvs_ token, is still 401
    for bad in ("Bearer Bearer pvs_not-a-real-token", "pvs_not-a-real-token", f"Token {token}", "x" + token):
        assert_scim_error(httpx.get(f"{live.base}/Users", headers={"Authorization": bad}), 401)


def test_two_authorization_headers_are_401_whichever_comes_first(live, tenant):
    _, token = tenant
    good, bad = f"Bearer {token}", "Bearer pvs_not-a-real-token"
    for pair in ((bad, good), (good, bad), (good, good)):
        headers = [("Authorization", pair[0]), ("Authorization", pair[1])]
        r = httpx.get(f"{live.base}/Users", headers=headers)
        body = assert_scim_error(r, 401)
        assert "one Authorization header" in body["detail"]
    assert httpx.get(f"{live.base}/Users", headers={"Authorization": good}).status_code == 200


def test_malformed_json_is_invalid_syntax_and_stores_nothing(client):
    before = count_users(client)
    r = client.post("/Users", content=b'{"schemas": ["' + USER.encode() + b'"], "userName": ')
    body = assert_scim_error(r, 400, "invalidSyntax")
    assert "JSON" in body["detail"]
    assert_scim_error(client.post("/Users", content=b""), 400, "invalidSyntax")
    assert_scim_error(client.post("/Users", content=b"[1, 2]"), 400, "invalidSyntax")
    assert count_users(client) == before


def test_wrong_content_type_is_400(client):
    r = client.post(
        "/Users", content=b"userName=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert_scim_error(r, 400, "invalidSyntax")


def test_plain_json_content_type_is_accepted(client):
    r = client.post(
        "/Users",
        json={"schemas": [USER], "userName": "plain@x.com"},
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 201


def test_a_body_in_another_charset_or_compressed_is_refused_saying_why(client):
    """JSON is UTF-8 (RFC 8259 section 8.1) and Provisor reads no Content-Encoding: either is a
    400 naming what is not supported, instead of a misleading "not valid JSON"; nothing stored."""
    import gzip
    import json

    before = count_users(client)
    body = json.dumps({"schemas": [USER], "userName": "enc@x.com"}).encode()
    for ctype in ("application/scim+json; charset=latin-1", 'application/json; charset="UTF-16"'):
        detail = assert_scim_error(client.post("/Users", content=body, headers={"Content-Type": ctype}), 400)[
            "detail"
        ]
        assert "charset" in detail and "UTF-8" in detail
    for coding, data in (("gzip", gzip.compress(body)), ("br", body)):
        r = client.post("/Users", content=data, headers={"Content-Encoding": coding})
        assert coding in assert_scim_error(r, 400, "invalidSyntax")["detail"]
    assert count_users(client) == before
    ok = {"Content-Type": "application/scim+json; Charset=UTF-8", "Content-Encoding": "identity"}
    assert client.post("/Users", content=body, headers=ok).status_code == 201


def test_huge_body_is_413(client):
    before = count_users(client)
    big = {"schemas": [USER], "userName": "big@x.com", "displayName": "x" * (300 * 1024)}
    assert_scim_error(client.post("/Users", json=big), 413)
    assert count_users(client) == before


def test_deep_nesting_is_400(client):
    """JSON nested beyond the parser's depth limit is invalidSyntax and stores nothing."""
    create_user(client, "shallow@x.com")
    before = count_users(client)
    deep = (
        b'{"schemas": ["'
        + USER.encode()
        + b'"], "userName": "d", "name": '
        + b"[" * 5000
        + b"]" * 5000
        + b"}"
    )
    body = assert_scim_error(client.post("/Users", content=deep), 400, "invalidSyntax")
    assert "JSON" in body["detail"]
    assert count_users(client) == before == 1
    assert client.get("/Users", params={"filter": 'userName eq "d"'}).json()["totalResults"] == 0


@pytest.mark.parametrize("path", ["/Nope", "/Users/a/b", "/Nope/"])
def test_unknown_routes_are_scim_404(client, path):
    assert_scim_error(client.get(path), 404)


def test_outside_the_base_is_scim_404(live):
    assert_scim_error(httpx.get(f"{live.root}/nothing/here"), 404)


def test_wrong_method_is_405_with_the_allowed_ones(client):
    # RFC 9110 section 15.5.6: a 405 names the methods the resource has in Allow
    user = create_user(client, "allow@example.com")
    for r, allowed in [
        (client.put("/Users", json={}), "GET, HEAD, POST"),
        (client.delete("/ServiceProviderConfig"), "GET, HEAD"),
        (client.post("/Schemas", json={}), "GET, HEAD"),
        (client.get("/Bulk"), "POST"),
        (client.post(f"/Users/{user['id']}", json={}), "DELETE, GET, HEAD, PATCH, PUT"),
        (client.options("/Users"), "GET, HEAD, POST"),
    ]:
        body = assert_scim_error(r, 405)
        assert r.headers["allow"] == allowed
        assert allowed in body["detail"]


def test_head_answers_what_get_would_without_the_body(client):
    user = create_user(client, "head@example.com")
    for path in (f"/Users/{user['id']}", "/Users", "/ServiceProviderConfig", "/Schemas"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["content-length"] == str(len(got.content))
    head = client.head(f"/Users/{user['id']}")
    assert head.headers["etag"] == client.get(f"/Users/{user['id']}").headers["etag"]
    assert client.head("/Users/nobody").status_code == 404


def test_me_is_501(client):
    assert_scim_error(client.get("/Me"), 501)


def test_endpoints_match_case_insensitively(client):
    create_user(client, "case@x.com")
    assert client.get("/users").json()["totalResults"] == 1
    assert client.get("/USERS", params={"filter": 'USERNAME EQ "CASE@X.COM"'}).json()["totalResults"] == 1


@pytest.mark.parametrize(
    "flt,where",
    [
        ("userName eq", None),
        ('foo eq "x"', "foo"),
        ('userName xx "a"', "xx"),
        ('(userName eq "a"', None),
        ('userName eq "a" garbage', None),
        ('emails[type eq "work"', None),
        ("active gt true", None),
    ],
)
def test_bad_filters_are_invalid_filter_and_never_match_everything(client, flt, where):
    create_user(client, "a@x.com")
    body = assert_scim_error(client.get("/Users", params={"filter": flt}), 400, "invalidFilter")
    assert "position" in body["detail"] or where is None or where in body["detail"]
    if where:
        assert where in body["detail"]


def test_bad_paging_and_sorting_parameters(client):
    assert_scim_error(client.get("/Users", params={"startIndex": "x"}), 400, "invalidValue")
    assert_scim_error(client.get("/Users", params={"count": "many"}), 400, "invalidValue")
    assert_scim_error(client.get("/Users", params={"sortOrder": "sideways"}), 400, "invalidValue")
    assert_scim_error(client.get("/Users", params={"sortBy": "nope"}), 400, "invalidValue")


def test_wrong_types_are_invalid_value_and_store_nothing(client):
    before = count_users(client)
    for body in (
        {"schemas": [USER], "userName": 5},
        {"schemas": [USER], "userName": "t@x.com", "active": "maybe"},
        {"schemas": [USER], "userName": "t@x.com", "emails": "t@x.com"},
        {"schemas": [USER], "userName": "t@x.com", "name": "Tee"},
        {"schemas": [USER]},
        {"schemas": ["urn:nope"], "userName": "t@x.com"},
    ):
        r = client.post("/Users", json=body)
        assert r.status_code == 400, (body, r.text)
        assert_scim_error(r, 400)
    assert count_users(client) == before


def test_bad_patch_paths_and_bodies_change_nothing(client):
    u = create_user(client, "p@x.com", displayName="Before")
    version = u["meta"]["version"]
    bad = [
        (
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "replace", "path": "displayName", "value": "After"},
                    {"op": "replace", "path": "emails[type eq", "value": "x"},
                ],
            },
            "invalidPath",
        ),
        (
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "replace", "path": "displayName", "value": "After"},
                    {"op": "replace", "path": "active", "value": "maybe"},
                ],
            },
            "invalidValue",
        ),
        (
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "replace", "path": "displayName", "value": "After"},
                    {"op": "remove", "path": "userName"},
                ],
            },
            None,
        ),
        ({"Operations": [{"op": "replace", "path": "displayName", "value": "After"}]}, None),
        ({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []}, None),
        (
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "explode", "path": "displayName", "value": "After"}],
            },
            None,
        ),
    ]
    for body, scim_type in bad:
        r = client.patch(f"/Users/{u['id']}", json=body)
        assert_scim_error(r, 400, scim_type)
    got = client.get(f"/Users/{u['id']}").json()
    assert got["displayName"] == "Before" and got["meta"]["version"] == version


def test_healthz_and_metrics(live, client):
    client.get("/Users")
    assert httpx.get(f"{live.root}/healthz").json() == {"status": "ok"}
    text = httpx.get(f"{live.root}/metrics").text
    assert "provisor_http_requests_total" in text
    assert 'route="Users"' in text


def test_a_client_that_accepts_only_plain_json_gets_plain_json(live, client):
    """RFC 7644 section 3.1: SCIM JSON by default, and Accept: application/json supported."""
    plain = {"Accept": "application/json"}
    created = client.post("/Users", json={"schemas": [USER], "userName": "accept@x.com"}, headers=plain)
    assert created.status_code == 201
    assert created.headers["content-type"] == "application/json"
    uid = created.json()["id"]
    for r in (
        client.get(f"/Users/{uid}", headers=plain),
        client.get("/Users", params={"filter": 'userName eq "accept@x.com"'}, headers=plain),
        client.get("/ServiceProviderConfig", headers=plain),
    ):
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
    # errors too, from the SCIM app and from the routes around it
    outside = f"{live.root}/elsewhere"  # Starlette's fallback route
    for r in (client.get("/Users/nope", headers=plain), httpx.get(outside, headers=plain)):
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/json"
        assert r.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    # the default, and a client that names both, get SCIM JSON
    for headers in ({}, {"Accept": "application/scim+json, application/json"}, {"Accept": "*/*"}):
        r = client.get(f"/Users/{uid}", headers=headers)
        assert r.headers["content-type"] == "application/scim+json"


def test_readyz_reads_the_store(live, tmp_path):
    """/readyz is 200 while the store answers a read, 503 (no detail of the failure) when not;
    /healthz only says the process is up."""
    assert httpx.get(f"{live.root}/readyz").json() == {"status": "ok"}
    from tests.conftest import serving

    with serving(f"sqlite:///{tmp_path / 'ready.db'}") as broken:

        def fail() -> None:
            raise OSError("disk I/O error at /secret/path/ready.db")

        broken.store.ping = fail
        r = httpx.get(f"{broken.root}/readyz")
        assert r.status_code == 503
        assert r.json() == {"status": "unavailable", "detail": "the database cannot be read"}
        assert "secret" not in r.text
        assert httpx.get(f"{broken.root}/healthz").status_code == 200


@pytest.mark.parametrize("how", ["deleted", "moved", "replaced", "overwritten"])
def test_readyz_is_503_when_the_database_file_under_the_server_is_gone_or_broken(tmp_path, how):
    """A pooled connection reads the tenants table from its page cache: the readiness check
    answered 200 while every request that needed a page from disk failed. It now looks at the
    file itself."""
    from tests.conftest import serving

    path = tmp_path / "ready.db"
    with serving(f"sqlite:///{path}") as server:
        _, token = server.new_tenant()
        with server.client(token) as client:
            create_user(client, "before@x.com")
        assert httpx.get(f"{server.root}/readyz").status_code == 200
        if how == "deleted":
            path.unlink()
        elif how == "moved":
            path.rename(tmp_path / "elsewhere.db")
        elif how == "replaced":  # another database copied over it: a new file at the path
            other = tmp_path / "other.db"
            other.write_bytes(path.read_bytes())
            other.replace(path)
        else:  # the same file, its bytes overwritten
            with path.open("r+b") as f:
                f.write(b"\x00not a database at all" * 64)
        r = httpx.get(f"{server.root}/readyz")
        assert r.status_code == 503, r.text
        assert r.json() == {"status": "unavailable", "detail": "the database cannot be read"}
        assert httpx.get(f"{server.root}/healthz").status_code == 200


def test_an_error_never_repeats_a_secret_token_sent_in_the_path(live, client):
    """A Tenant URL with the Secret Token pasted onto it is answered 404 naming the path: Entra and
    Okta show that detail in their provisioning logs, so the token in it is redacted."""
    token = "pvs_" + "Zz9-_" * 8 + "abc"
    for url in (f"/Users/{token}", f"/{token}/Users", f"{live.root}/{token}", f"{live.root}/x/{token}?a=1"):
        r = client.get(url)
        body = assert_scim_error(r, 404)
        assert token not in r.text and "pvs_" not in r.text, r.text
        assert "[redacted]" in body["detail"]


def test_a_public_url_is_the_address_in_every_location(tmp_path):
    """serve --public-url: behind a proxy that does not pass on Host (or adds a path prefix),
    meta.location, Location and $ref start with the public address whatever Host came."""
    from tests.conftest import GROUP, serving

    from provisor.server import ServerConfig

    config = ServerConfig(access_log=False, public_url="https://scim.example.com/acme/")
    with serving(f"sqlite:///{tmp_path / 'p.db'}", config) as live:
        _, token = live.new_tenant()
        with live.client(token) as c:
            base = "https://scim.example.com/acme/scim/v2"
            r = c.post(
                "/Users", json={"schemas": [USER], "userName": "pub@x.com"}, headers={"Host": "10.0.0.5:8000"}
            )
            uid = r.json()["id"]
            assert r.headers["location"] == f"{base}/Users/{uid}" == r.json()["meta"]["location"]
            g = c.post("/Groups", json={"schemas": [GROUP], "displayName": "G", "members": [{"value": uid}]})
            assert g.json()["members"][0]["$ref"] == f"{base}/Users/{uid}"
            assert c.get(f"/Users/{uid}").json()["groups"][0]["$ref"] == f"{base}/Groups/{g.json()['id']}"
            listed = c.get("/Users", headers={"X-Forwarded-Host": "evil.example"}).json()
            assert listed["Resources"][0]["meta"]["location"] == f"{base}/Users/{uid}"
            assert c.get("/ResourceTypes/User").json()["meta"]["location"] == f"{base}/ResourceTypes/User"


NUL_BODIES = [
    ({"userName": "nul\u0000alpha"}, "userName"),
    ({"userName": "n", "name": {"givenName": "a\u0000"}}, "name.givenName"),
    ({"userName": "n", "emails": [{"value": "a\u0000@x.com", "type": "work"}]}, "emails[0].value"),
    ({"userName": "n", "nickName": "\u0000"}, "nickName"),
    ({"userName": "n", "schemas": [USER, ENTERPRISE], ENTERPRISE: {"department": "R\u0000D"}}, "department"),
]


@pytest.mark.parametrize(("attrs", "named"), NUL_BODIES)
def test_a_nul_character_in_a_string_value_is_refused_on_every_write(
    client: httpx.Client, attrs: dict, named: str
) -> None:
    """Audit finding: U+0000 was stored (201), and then SQL ew/co filters missed the value."""
    body = {"schemas": [USER], **attrs}
    before = count_users(client)
    detail = assert_scim_error(client.post("/Users", json=body), 400, "invalidValue")["detail"]
    assert named in detail and "U+0000" in detail
    assert count_users(client) == before
    uid = create_user(client, "nul-target@x.com")["id"]
    assert_scim_error(client.put(f"/Users/{uid}", json=body), 400, "invalidValue")
    ops = [{"op": "replace", "value": {k: v for k, v in attrs.items() if k != "schemas"}}]
    r = client.patch(f"/Users/{uid}", json={"schemas": [PATCH_OP], "Operations": ops})
    assert_scim_error(r, 400, "invalidValue")
    bulk = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{"method": "POST", "path": "/Users", "bulkId": "n", "data": body}],
    }
    r = client.post("/Bulk", json=bulk)
    assert r.status_code == 200 and r.json()["Operations"][0]["status"] == "400", r.text
    assert client.get(f"/Users/{uid}").json()["userName"] == "nul-target@x.com"


def test_a_nul_character_in_a_group_or_a_patch_path_value_is_refused(client: httpx.Client) -> None:
    r = client.post("/Groups", json={"schemas": [GROUP], "displayName": "G\u0000"})
    assert "displayName" in assert_scim_error(r, 400, "invalidValue")["detail"]
    uid = create_user(client, "nul-path@x.com", emails=[{"value": "w@x.com", "type": "work"}])["id"]
    op = {"op": "replace", "path": 'emails[type eq "work"].value', "value": "w\u0000@x.com"}
    r = client.patch(f"/Users/{uid}", json={"schemas": [PATCH_OP], "Operations": [op]})
    assert "emails" in assert_scim_error(r, 400, "invalidValue")["detail"]


@pytest.mark.parametrize(
    "text", ['userName eq "a\\u0000b"', 'userName ew "\\u0000"', "userName eq a\u0000b", "userName\u0000 pr"]
)
def test_a_nul_character_in_a_filter_is_a_400_not_an_empty_result(client: httpx.Client, text: str) -> None:
    create_user(client, "a@x.com")
    body = assert_scim_error(client.get("/Users", params={"filter": text}), 400, "invalidFilter")
    assert "NUL" in body["detail"] and "\x00" not in body["detail"], body
    search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": text}
    assert_scim_error(client.post("/Users/.search", json=search), 400, "invalidFilter")


def _raw(port: int, head: str) -> tuple[str, dict[str, object]]:
    """One request on a fresh connection: the status line and the JSON body of its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head.encode("latin-1"))
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    top, _, body = raw.partition(b"\r\n\r\n")
    return top.split(b"\r\n")[0].decode(), json.loads(body)


@pytest.mark.parametrize(
    "hosts",
    [
        [],
        ["good.example", "evil.example"],
        ["evil.example/x?"],
        ["evil.example#f"],
        ["a@b"],
        ["a b"],
        ["x:80x"],
    ],
    ids=["none", "two", "path", "fragment", "userinfo", "space", "port"],
)
def test_a_request_without_one_well_formed_host_is_400_and_changes_nothing(live, tenant, hosts):
    """RFC 9112 section 3.2; the server builds meta.location, Location and $ref from the Host."""
    _, token = tenant
    before = live.client(token).get("/Users", params={"count": 0}).json()["totalResults"]
    lines = "".join(f"Host: {h}\r\n" for h in hosts)
    body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"host@x.com"}'
    head = (
        f"POST /scim/v2/Users HTTP/1.1\r\n{lines}Authorization: Bearer {token}\r\n"
        f"Content-Type: application/scim+json\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n\r\n{body}"
    )
    status, error = _raw(live.server.port, head)
    assert status == "HTTP/1.1 400 Bad Request"
    assert error["status"] == "400" and "Host" in str(error["detail"])
    assert live.client(token).get("/Users", params={"count": 0}).json()["totalResults"] == before


@pytest.mark.parametrize(
    "host", ["", "scim.example.com:8443", "[::1]:8000", "127.0.0.1", "xn--bcher-kva.example"]
)
def test_a_well_formed_host_is_the_authority_of_the_urls_the_server_builds(live, tenant, host):
    _, token = tenant
    head = (
        f"GET /scim/v2/ServiceProviderConfig HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    status, spc = _raw(live.server.port, head)
    assert status == "HTTP/1.1 200 OK"
    assert spc["meta"]["location"] == f"http://{host or 'localhost'}/scim/v2/ServiceProviderConfig"


def test_an_http_1_0_request_may_leave_the_host_out(live, tenant):
    _, token = tenant
    status, spc = _raw(
        live.server.port,
        f"GET /scim/v2/ServiceProviderConfig HTTP/1.0\r\nAuthorization: Bearer {token}\r\n\r\n",
    )
    assert status == "HTTP/1.1 200 OK"
    assert spc["meta"]["location"] == "http://localhost/scim/v2/ServiceProviderConfig"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_the_operational_endpoints_answer_other_methods_405_with_allow(live, path):
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = httpx.request(method, f"http://127.0.0.1:{live.server.port}{path}")
        assert_scim_error(r, 405)
        assert r.headers["allow"] == "GET, HEAD"
    assert httpx.get(f"http://127.0.0.1:{live.server.port}{path}").status_code == 200
    assert httpx.head(f"http://127.0.0.1:{live.server.port}{path}").status_code == 200


def test_a_request_target_that_is_no_path_is_a_scim_404(live):
    status, error = _raw(live.server.port, "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == "HTTP/1.1 404 Not Found"
    assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and error["status"] == "404"


def test_a_body_that_is_not_utf8_is_400_saying_where(client):
    before = count_users(client)
    body = b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "caf\xe9"}'
    r = client.post("/Users", content=body, headers={"Content-Type": "application/scim+json"})
    error = assert_scim_error(r, 400, "invalidSyntax")
    offset = body.index(b"\xe9")
    assert "not UTF-8" in error["detail"] and f"offset {offset}" in error["detail"]
    assert count_users(client) == before


@pytest.mark.parametrize("how", ["close", "shutdown"])
def test_a_body_cut_short_by_the_client_runs_nothing(live, tenant, client, how):
    """A client that goes before the whole body (its Content-Length) arrived: the request is not
    run. A complete JSON user that claimed 100 more bytes was created (201) from the part sent."""
    _, token = tenant
    user = json.dumps({"schemas": [USER], "userName": f"cut-{how}@x.com"}).encode()
    head = (
        "POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/scim+json\r\n"
        f"Content-Length: {len(user) + 100}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", live.server.port), timeout=10) as s:
        s.sendall(head.encode("latin-1") + user)
        if how == "shutdown":
            s.shutdown(socket.SHUT_WR)
            s.recv(65536)  # whatever comes back before the server closes
    deadline = 50
    flt = f'userName eq "cut-{how}@x.com"'
    while deadline:  # the server has seen the close once a later request is answered; then look
        deadline -= 1
        assert client.get("/Users", params={"filter": flt}).json()["totalResults"] == 0
        time.sleep(0.02)


def test_an_error_repeats_at_most_a_little_of_what_the_client_sent(live):
    """A 409 for a taken userName of 200,000 characters, or a 400 naming hundreds of unknown
    member ids, sent it all back: an answer as large as the request, for every retry."""
    _, token = live.new_tenant({"strict": True})  # unknown members refused, not skipped
    with live.client(token) as c:
        long_name = "a" * 200_000 + "@x.com"
        create_user(c, long_name)
        taken = assert_scim_error(c.post("/Users", json=make_user(long_name)), 409, "uniqueness")
        assert len(taken["detail"]) < 200 and "aaa...' is already in use" in taken["detail"]
        members = [{"value": f"no-such-id-{i:03}-" + "z" * 100} for i in range(500)]
        group = {"schemas": [GROUP], "displayName": "Many unknown", "members": members}
        detail = assert_scim_error(c.post("/Groups", json=group), 400, "invalidValue")["detail"]
        assert len(detail) < 1_500 and detail.endswith("... and 490 more")
