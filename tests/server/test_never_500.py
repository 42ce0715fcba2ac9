"""No client input ever gets a 500 or a traceback: arbitrary JSON at every write endpoint."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import ENTERPRISE, PATCH_OP, USER, assert_scim_error, create_user

KEYS = st.sampled_from(
    [
        "schemas",
        "userName",
        "active",
        "emails",
        "name",
        "members",
        "value",
        "op",
        "path",
        "Operations",
        "displayName",
        "roles",
        "primary",
        "type",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "manager",
        "$ref",
        "filter",
        "startIndex",
        "count",
        "cursor",
        "attributes",
        "method",
        "bulkId",
        "data",
        "x",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(
        [
            USER,
            PATCH_OP,
            "True",
            "members",
            'emails[type eq "work"].value',
            "urn:ietf:params:scim:api:messages:2.0:BulkRequest",
            "urn:ietf:params:scim:api:messages:2.0:SearchRequest",
            # JSON escapes inside strings: half a surrogate pair in a filter, a path, an encoded role
            'userName eq "\\ud800"',
            'emails[value eq "\\udfff"].type',
            '{"value":"\\ud800"}',
        ]
    ),
    st.text(alphabet=st.characters(codec=None, categories=["Cs", "Ll"]), max_size=4),  # lone surrogates
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=JSON,
    target=st.sampled_from(
        ["post_user", "put_user", "patch_user", "post_group", "patch_group", "bulk", "search", "root_search"]
    ),
)
def test_arbitrary_json_never_gets_a_500(live, body, target):
    _, token = live.new_tenant()
    with live.client(token) as c:
        user = create_user(c, "fuzz@x.com")
        group = c.post(
            "/Groups", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "F"}
        ).json()
        path, method = {
            "post_user": ("/Users", "POST"),
            "put_user": (f"/Users/{user['id']}", "PUT"),
            "patch_user": (f"/Users/{user['id']}", "PATCH"),
            "post_group": ("/Groups", "POST"),
            "patch_group": (f"/Groups/{group['id']}", "PATCH"),
            "bulk": ("/Bulk", "POST"),
            "search": ("/Users/.search", "POST"),
            "root_search": ("/.search", "POST"),
        }[target]
        r = c.request(method, path, content=json.dumps(body))
        assert r.status_code < 500, (target, body, r.text)
        if r.status_code >= 400:
            err = r.json()
            assert err["status"] == str(r.status_code) and "Traceback" not in r.text
        for op in r.json().get("Operations", []) if target == "bulk" and r.status_code == 200 else []:
            assert int(op["status"]) < 500, op


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=60))
def test_arbitrary_filters_and_parameters_never_get_a_500(live, text):
    _, token = live.new_tenant()
    with live.client(token) as c:
        for params in (
            {"filter": text},
            {"sortBy": text},
            {"attributes": text},
            {"startIndex": text},
            {"excludedAttributes": text},
            {"cursor": text},
            {"cursor": "", "count": text},
            {"cursor": text, "sortBy": "userName"},
        ):
            r = c.get("/Users", params=params)
            assert r.status_code in (200, 400), (params, r.text)


HALF_A_PAIR = '"\\ud800"'  # a JSON string literal whose only escape names half a surrogate pair


def test_half_a_surrogate_pair_is_a_400_not_a_500(client):
    """A ``\\uXXXX`` escape may name half of a UTF-16 surrogate pair, which is no character and
    which no UTF-8 text (the database's, a response's) can hold: every place that decodes such
    escapes answers 400 with the right scimType, and nothing is stored."""
    user = create_user(client, "pair@x.com")
    for params in (
        {"filter": f"userName eq {HALF_A_PAIR}"},
        {"filter": f'emails[type eq "work" and value co {HALF_A_PAIR}]'},
        {"filter": f"title pr or displayName sw {HALF_A_PAIR}"},
    ):
        assert_scim_error(client.get("/Users", params=params), 400, "invalidFilter")
    search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}
    r = client.post("/Users/.search", json={**search, "filter": f"externalId eq {HALF_A_PAIR}"})
    assert_scim_error(r, 400, "invalidFilter")
    for path in (f"emails[value eq {HALF_A_PAIR}].type", f"{ENTERPRISE}:manager[value eq {HALF_A_PAIR}]"):
        for op in ("add", "replace", "remove"):
            body = {"schemas": [PATCH_OP], "Operations": [{"op": op, "path": path, "value": "work"}]}
            assert_scim_error(client.patch(f"/Users/{user['id']}", json=body), 400, "invalidPath")
    role = {"value": '{"value":"\\ud800","displayName":"Half"}'}  # Entra's JSON-encoded role (Q9)
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "roles", "value": [role]}]}
    assert_scim_error(client.patch(f"/Users/{user['id']}", json=body), 400, "invalidValue")
    assert_scim_error(client.post("/Users", json={**user, "userName": "r@x.com", "roles": [role]}), 400)
    after = client.get(f"/Users/{user['id']}").json()
    assert after == user  # nothing changed, version included
    assert client.get("/Users", params={"filter": 'userName eq "r@x.com"'}).json()["totalResults"] == 0
