"""No client input ever gets a 500 or a traceback: arbitrary JSON at every write endpoint."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import PATCH_OP, USER, create_user

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
        ]
    ),
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
