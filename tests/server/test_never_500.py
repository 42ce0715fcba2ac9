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


#: What a hand-made key cursor may hold: any JSON scalar or array, an id of any text
KEY_PARTS = st.recursive(
    SCALARS | st.integers(-(2**80), 2**80) | st.sampled_from(["\ud800", "a\udfff"]) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=4,
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    key=st.tuples(KEY_PARTS, st.sampled_from(["u1", "\udfff"]) | st.text(min_size=1, max_size=5)).map(list)
    | st.lists(KEY_PARTS, max_size=3),
    sort=st.sampled_from(["title", "userName", "id", "active", "emails"]),
)
def test_hand_made_sorted_cursors_never_get_a_500(live, key, sort):
    """A sorted cursor holds a JSON [value, id] (scim/cursor.py): whatever one is made to hold,
    the answer is a page or 400 invalidCursor."""
    import base64

    _, token = live.new_tenant()
    with live.client(token) as c:
        for i in range(3):
            create_user(c, f"k{i}@x.com", title=f"t{i}")
        first = c.get("/Users", params={"sortBy": sort, "count": 1, "cursor": ""}).json()
        digest = base64.urlsafe_b64decode(first["nextCursor"] + "==").decode().split(".")[1]
        payload = json.dumps(key)  # half a surrogate pair as its escape, as a client would send it
        cursor = base64.urlsafe_b64encode(f"1.{digest}.k.{payload}".encode()).decode().rstrip("=")
        r = c.get("/Users", params={"sortBy": sort, "count": 1, "cursor": cursor})
        if r.status_code != 200:
            assert_scim_error(r, 400, "invalidCursor")


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
