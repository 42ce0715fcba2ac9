"""Okta's "SCIM 2.0 SPEC Test", re-stated in Python against a live `provisor serve` over loopback HTTP.

Source: okta/okta-developer-docs,
``packages/@okta/vuepress-site/.vuepress/public/standards/SCIM/SCIMFiles/Okta-SCIM-20-SPEC-Test.json``
(a Runscope / BlazeMeter API Monitoring export, ``exported_at`` 1715608731, 2024-05-13), with the
random variables of ``Initial_Script_Spec.txt`` in the same folder. Okta requires a passing run of it
before an integration is submitted to the OIN. Runscope can't run here, so every request step and
every one of its 52 assertions is written out below, in the same order, with the same headers, the
same kind of random values and the same chain of ids from one step to the next. Older exports of the
file (2017) stop after step 10: steps 11 and 12 were added later.

``test_okta_scim20_spec_test`` runs the twelve request steps in order; each ``step_NN_*`` function is
one SPEC step and carries the step's note as its docstring:

====  ======================================================  =======  ==================================
step  note in the export                                      asserts  function here
====  ======================================================  =======  ==================================
1     Required Test: Test Users endpoint                      12       step_01_users_endpoint
2     Required Test: Get Users/{{id}}                         8        step_02_get_user_by_id
3     Required Test: Test invalid User by username            3        step_03_invalid_user_by_username
4     Required Test: Test invalid User by ID                  3        step_04_invalid_user_by_id
5     Required Test: Make sure random user doesn't exist      3        step_05_random_user_does_not_exist
6     Required Test: Create Okta user with realistic values   7        step_06_create_user
7     Required Test: Verify that user was created             4        step_07_verify_user_created
8     Required Test: Expect failure when recreating user ...  1        step_08_recreate_user_conflicts
9     Required Test: Username Case Sensitivity Check          1        step_09_username_case_insensitive
10    Optional Test: Verify Groups endpoint (+ a script)      2        step_10_groups_endpoint
11    Required Test: Check status 401                         4        step_11_bad_token_is_401
12    Required Test: Check status 404                         4        step_12_unknown_user_is_404
====  ======================================================  =======  ==================================

Each SPEC assertion is one ``assert`` marked ``# SPEC``; the property paths are Runscope's and are read
with ``at()``. Checks marked ``# beyond the SPEC`` are ours (what the SPEC step plainly means, or what
RFC 7643/7644 adds), kept apart so the SPEC's own set stays countable.

How Runscope's comparisons are read: ``equal_number`` compares numbers; ``equal`` compares the
value's text (``"true"`` is JSON ``true``, ``"0"`` is ``0``); ``not_empty`` is present and not
``null``, ``""``, ``[]`` or ``{}``; ``has_value``/``contains`` on ``schemas`` is "the array holds this
URN"; ``is_a_number`` is a JSON number (Okta's SCIM 2.0 reference: integers, not strings);
``response_time`` is the time to the full response, in milliseconds. Step 11's ``has_value`` has an
empty property, i.e. the whole body: the Error URN must be in the error body, where SCIM puts it
(``schemas``).

Not re-stated: the eleven ``pause`` steps (5 s, one of 10 s; 60 s in all) that space the requests for
a hosted monitor, since Provisor reads its own writes at once; and the ``{{auth}}`` value, which here
is ``Bearer <Secret Token>`` of a fresh tenant. The SPEC test assumes the app already holds a user
with a name and an e-mail address (step 1 reads ``Resources[0]`` of the first page) and a group
(step 10): ``seed_what_the_spec_assumes`` creates them over HTTP first.

The tests after the SPEC test cover the rest of Okta's documented conversation (okta-developer-docs
``docs/reference/scim/scim-20/index.md``, "Okta and SCIM Version 2.0"), as Okta sends it: pagination
on first contact and on import (``startIndex``/``count``, integers, a stable order), user creation and
update with Okta's own bodies, deactivation by PATCH ``replace {"active": false}`` and by PUT (Okta
never sends DELETE for users), and group push (create with ``members: []``, rename by path-less
replace, member add/remove, full-push ``replace members``, ``replace members []``, DELETE).
"""

from __future__ import annotations

import json
import random
import re
import string
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_JSON = "application/scim+json"

# The headers of the SPEC's GET steps (and of step 11, with its own Authorization).
OKTA_GET_HEADERS = {
    "Accept-Charset": "utf-8",
    "Content-Type": "application/scim+json; charset=utf-8",
    "Accept": "application/scim+json",
    "User-Agent": "OKTA SCIM Integration",
}
# The headers of the SPEC's two POST steps (6 and 8): plain JSON, and no Okta User-Agent.
OKTA_POST_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/scim+json; charset=utf-8",
}
# What Okta's provisioning client itself sends (the SCIM 2.0 reference's request samples).
OKTA_CLIENT_HEADERS = {
    "Content-Type": "application/scim+json; charset=utf-8",
    "Accept": "application/scim+json",
    "User-Agent": "Okta SCIM Client 1.0.0",
}
GROUPS_MAX_MS = 600  # step 10's response_time bound


# --- Runscope's reading of a response -------------------------------------------------------------

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def at(document: Any, prop: str) -> Any:
    """The value at a Runscope property path (``Resources[0].emails[0].value``); None when absent."""
    value = document
    for name, index in _TOKEN.findall(prop):
        if name:
            value = value.get(name) if isinstance(value, dict) else None
        else:
            i = int(index)
            value = value[i] if isinstance(value, list) and i < len(value) else None
        if value is None:
            return None
    return value


def not_empty(value: Any) -> bool:
    return value is not None and value not in ("", [], {})


def is_a_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def body_of(r: httpx.Response) -> Any:
    """The response's JSON (``response_json``), which must be SCIM JSON (beyond the SPEC)."""
    assert r.headers.get("content-type", "").startswith(SCIM_JSON), describe(r)
    return r.json()


def describe(r: httpx.Response) -> str:
    return f"{r.request.method} {r.request.url} -> {r.status_code} {r.headers.get('content-type')}\n{r.text}"


def filter_url(resource: str, expression: str, extra: str = "") -> str:
    """``/Users?filter=userName eq "x"`` as Runscope sends it: spaces and quotes percent-encoded."""
    return f"/{resource}?filter={quote(expression, safe='')}{extra}"


def user_name_eq(value: str) -> str:
    return f'userName eq "{value}"'


# --- the SPEC test's variables (Initial_Script_Spec.txt) ------------------------------------------


def runscope_variables(rng: random.Random) -> dict[str, str]:
    """The initial script's variables, drawn the same way: ``Runscope`` + 3 digits for the given name,
    one capital + 8 small letters + 3 digits for the family name, both joined for the address at
    atko.com, which is also the userName; fixed values for the user that doesn't exist."""
    given = "Runscope" + "".join(rng.choice(string.digits) for _ in range(3))
    family = (
        rng.choice(string.ascii_uppercase)
        + "".join(rng.choice(string.ascii_lowercase) for _ in range(8))
        + "".join(rng.choice(string.digits) for _ in range(3))
    )
    email = f"{given}{family}@atko.com"
    return {
        "randomGivenName": given,
        "randomFamilyName": family,
        "randomEmail": email,
        "randomUsername": email,
        "InvalidUserEmail": "abcdefgh@atko.com",
        "UserIdThatDoesNotExist": "010101001010101011001010101011",
        "randomUsernameCaps": email.upper(),
        "randomGroupName": "Runscope" + "".join(rng.choice(string.digits) for _ in range(3)),
    }


@dataclass
class SpecRun:
    """One run of the SPEC test: where, with what, and the variables it extracts on the way."""

    http: httpx.Client
    auth: str  # the {{auth}} variable: the whole Authorization header value
    var: dict[str, str]
    extracted: dict[str, Any] = field(default_factory=dict)

    def get(self, url: str, authorization: str | None = None) -> httpx.Response:
        headers = {**OKTA_GET_HEADERS, "Authorization": authorization or self.auth}
        return self.http.get(url, headers=headers)

    def post(self, url: str, body: dict[str, Any]) -> httpx.Response:
        headers = {**OKTA_POST_HEADERS, "Authorization": self.auth}
        return self.http.post(url, content=json.dumps(body), headers=headers)

    def realistic_user(self, email_value: str) -> dict[str, Any]:
        """The body of steps 6 and 8 (step 8 puts randomUsername where step 6 puts randomEmail)."""
        v = self.var
        return {
            "schemas": [USER],
            "userName": v["randomUsername"],
            "name": {"givenName": v["randomGivenName"], "familyName": v["randomFamilyName"]},
            "emails": [{"primary": True, "value": email_value, "type": "work"}],
            "displayName": f"{v['randomGivenName']} {v['randomFamilyName']}",
            "active": True,
        }


@pytest.fixture
def okta(live_server: tuple[str, str]) -> Iterator[tuple[httpx.Client, str]]:
    """(an HTTP client on the Tenant URL, the {{auth}} value) for a fresh tenant of a live server."""
    base_url, token = live_server
    with httpx.Client(base_url=base_url, timeout=30) as http:
        yield http, f"Bearer {token}"


# --- seeding what the SPEC test takes for granted -------------------------------------------------


def seed_what_the_spec_assumes(run: SpecRun) -> dict[str, Any]:
    """A user with a name and an e-mail address (step 1 reads them from the first page) and a group
    holding that user (step 10 expects at least one group). Returns the seeded user."""
    suffix = uuid.uuid4().hex[:8]
    user = {
        "schemas": [USER],
        "userName": f"bjensen.{suffix}@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"primary": True, "value": f"bjensen.{suffix}@example.com", "type": "work"}],
        "displayName": "Barbara Jensen",
        "active": True,
    }
    r = run.post("/Users", user)
    assert r.status_code == 201, describe(r)
    seeded = r.json()
    group = {"schemas": [GROUP], "displayName": f"Seeded {suffix}", "members": [{"value": seeded["id"]}]}
    r = run.post("/Groups", group)
    assert r.status_code == 201, describe(r)
    return seeded  # type: ignore[no-any-return]


# --- the twelve request steps ---------------------------------------------------------------------


def step_01_users_endpoint(run: SpecRun) -> None:
    """Required Test: Test Users endpoint. GET {{SCIMBaseURL}}/Users?count=1&startIndex=1."""
    r = run.get("/Users?count=1&startIndex=1")
    assert r.status_code == 200, describe(r)  # SPEC
    body = body_of(r)
    assert not_empty(at(body, "Resources")), body  # SPEC
    assert LIST_RESPONSE in at(body, "schemas"), body  # SPEC
    assert is_a_number(at(body, "itemsPerPage")), body  # SPEC
    assert is_a_number(at(body, "startIndex")), body  # SPEC
    assert is_a_number(at(body, "totalResults")), body  # SPEC
    assert not_empty(at(body, "Resources[0].id")), body  # SPEC
    assert not_empty(at(body, "Resources[0].name.familyName")), body  # SPEC
    assert not_empty(at(body, "Resources[0].name.givenName")), body  # SPEC
    assert not_empty(at(body, "Resources[0].userName")), body  # SPEC
    assert not_empty(at(body, "Resources[0].active")), body  # SPEC
    assert not_empty(at(body, "Resources[0].emails[0].value")), body  # SPEC
    # beyond the SPEC: count=1 is honoured, and the page says so (RFC 7644 section 3.4.2.4)
    assert len(body["Resources"]) == 1 and body["itemsPerPage"] == 1 and body["startIndex"] == 1, body
    assert body["totalResults"] >= 1, body
    run.extracted["ISVUserid"] = at(body, "Resources[0].id")
    run.extracted["usersBefore"] = body["totalResults"]


def step_02_get_user_by_id(run: SpecRun) -> None:
    """Required Test: Get Users/{{id}}. GET {{SCIMBaseURL}}/Users/{{ISVUserid}}."""
    isv_user_id = run.extracted["ISVUserid"]
    r = run.get(f"/Users/{isv_user_id}")
    assert r.status_code == 200, describe(r)  # SPEC
    body = body_of(r)
    assert not_empty(at(body, "id")), body  # SPEC
    assert not_empty(at(body, "name.familyName")), body  # SPEC
    assert not_empty(at(body, "name.givenName")), body  # SPEC
    assert not_empty(at(body, "userName")), body  # SPEC
    assert not_empty(at(body, "active")), body  # SPEC
    assert not_empty(at(body, "emails[0].value")), body  # SPEC
    assert at(body, "id") == isv_user_id, body  # SPEC


def step_03_invalid_user_by_username(run: SpecRun) -> None:
    """Required Test: Test invalid User by username.
    GET {{SCIMBaseURL}}/Users?filter=userName eq "{{InvalidUserEmail}}"."""
    r = run.get(filter_url("Users", user_name_eq(run.var["InvalidUserEmail"])))
    assert r.status_code == 200, describe(r)  # SPEC
    body = body_of(r)
    assert LIST_RESPONSE in at(body, "schemas"), body  # SPEC
    assert at(body, "totalResults") == 0, body  # SPEC
    assert at(body, "Resources") in (None, []), body  # beyond the SPEC


def step_04_invalid_user_by_id(run: SpecRun) -> None:
    """Required Test: Test invalid User by ID. GET {{SCIMBaseURL}}/Users/{{UserIdThatDoesNotExist}}."""
    r = run.get(f"/Users/{run.var['UserIdThatDoesNotExist']}")
    assert r.status_code == 404, describe(r)  # SPEC
    body = body_of(r)
    assert not_empty(at(body, "detail")), body  # SPEC
    assert ERROR in at(body, "schemas"), body  # SPEC
    assert at(body, "status") == "404", body  # beyond the SPEC (step 12 asks it; RFC 7644 3.12)


def step_05_random_user_does_not_exist(run: SpecRun) -> None:
    """Required Test: Make sure random user doesn't exist.
    GET {{SCIMBaseURL}}/Users?filter=userName eq "{{randomEmail}}"."""
    r = run.get(filter_url("Users", user_name_eq(run.var["randomEmail"])))
    assert r.status_code == 200, describe(r)  # SPEC
    body = body_of(r)
    assert is_a_number(at(body, "totalResults")) and at(body, "totalResults") == 0, body  # SPEC
    assert LIST_RESPONSE in at(body, "schemas"), body  # SPEC


def step_06_create_user(run: SpecRun) -> None:
    """Required Test: Create Okta user with realistic values. POST {{SCIMBaseURL}}/Users."""
    v = run.var
    r = run.post("/Users", run.realistic_user(v["randomEmail"]))
    assert r.status_code == 201, describe(r)  # SPEC
    body = body_of(r)
    assert at(body, "active") is True, body  # SPEC
    assert not_empty(at(body, "id")), body  # SPEC
    assert at(body, "name.familyName") == v["randomFamilyName"], body  # SPEC
    assert at(body, "name.givenName") == v["randomGivenName"], body  # SPEC
    assert USER in at(body, "schemas"), body  # SPEC
    assert at(body, "userName") == v["randomUsername"], body  # SPEC
    run.extracted["idUserOne"] = at(body, "id")
    run.extracted["randomUserEmail"] = at(body, "emails[0].value")
    # beyond the SPEC: the extracted address is the one sent, and the new id is new
    assert run.extracted["randomUserEmail"] == v["randomEmail"], body
    assert run.extracted["idUserOne"] != run.extracted["ISVUserid"], body


def step_07_verify_user_created(run: SpecRun) -> None:
    """Required Test: Verify that user was created. GET {{SCIMBaseURL}}/Users/{{idUserOne}}."""
    v = run.var
    r = run.get(f"/Users/{run.extracted['idUserOne']}")
    assert r.status_code == 200, describe(r)  # SPEC
    body = body_of(r)
    assert at(body, "userName") == v["randomUsername"], body  # SPEC
    assert at(body, "name.familyName") == v["randomFamilyName"], body  # SPEC
    assert at(body, "name.givenName") == v["randomGivenName"], body  # SPEC
    assert at(body, "id") == run.extracted["idUserOne"], body  # beyond the SPEC


def step_08_recreate_user_conflicts(run: SpecRun) -> None:
    """Required Test: Expect failure when recreating user with same values. POST {{SCIMBaseURL}}/Users
    (the same user, with randomUsername as the e-mail value)."""
    r = run.post("/Users", run.realistic_user(run.var["randomUsername"]))
    assert r.status_code == 409, describe(r)  # SPEC
    # beyond the SPEC: a SCIM error with scimType uniqueness (RFC 7644 section 3.3)
    body = body_of(r)
    assert ERROR in body["schemas"] and body["status"] == "409" and body.get("scimType") == "uniqueness", body


def step_09_username_case_insensitive(run: SpecRun) -> None:
    """Required Test: Username Case Sensitivity Check.
    GET {{SCIMBaseURL}}/Users?filter=userName eq "{{randomUsernameCaps}}"."""
    r = run.get(filter_url("Users", user_name_eq(run.var["randomUsernameCaps"])))
    assert r.status_code == 200, describe(r)  # SPEC
    # beyond the SPEC, what the step is named for: userName is caseExact false (RFC 7643 section 4.1),
    # so the upper-cased name finds the user of step 6
    body = body_of(r)
    assert body["totalResults"] == 1, body
    assert [u["id"] for u in body["Resources"]] == [run.extracted["idUserOne"]], body


def step_10_groups_endpoint(run: SpecRun) -> None:
    """Optional Test: Verify Groups endpoint. GET {{SCIMBaseURL}}/Groups, then the step's script."""
    r = run.get("/Groups")
    assert r.status_code == 200, describe(r)  # SPEC
    elapsed_ms = r.elapsed.total_seconds() * 1000
    assert elapsed_ms < GROUPS_MAX_MS, f"GET /Groups took {elapsed_ms:.0f} ms"  # SPEC
    # The script: the body must parse as JSON; with totalResults 0 it only notes "No Groups found",
    # with totalResults >= 1 it asserts Resources is an array. Our tenant holds the seeded group.
    body = body_of(r)
    assert is_a_number(body["totalResults"]) and body["totalResults"] >= 1, body
    assert isinstance(body["Resources"], list) and body["Resources"], body


def step_11_bad_token_is_401(run: SpecRun) -> None:
    """Required Test: Check status 401. GET {{SCIMBaseURL}}/Users?filter=userName eq
    "{{randomUsernameCaps}}" with the header ``Authorization: non-token``."""
    r = run.get(filter_url("Users", user_name_eq(run.var["randomUsernameCaps"])), authorization="non-token")
    assert r.status_code == 401, describe(r)  # SPEC
    body = body_of(r)
    assert not_empty(at(body, "detail")), body  # SPEC
    assert at(body, "status") == "401", body  # SPEC
    assert ERROR in at(body, "schemas"), body  # SPEC (has_value on the whole body)
    assert "Resources" not in body, body  # beyond the SPEC: nothing of the tenant leaks


def step_12_unknown_user_is_404(run: SpecRun) -> None:
    """Required Test: Check status 404. GET {{SCIMBaseURL}}/Users/00919288221112222."""
    r = run.get("/Users/00919288221112222")
    assert r.status_code == 404, describe(r)  # SPEC
    body = body_of(r)
    assert not_empty(at(body, "detail")), body  # SPEC
    assert at(body, "status") == "404", body  # SPEC
    assert ERROR in at(body, "schemas"), body  # SPEC


SPEC_STEPS = (
    step_01_users_endpoint,
    step_02_get_user_by_id,
    step_03_invalid_user_by_username,
    step_04_invalid_user_by_id,
    step_05_random_user_does_not_exist,
    step_06_create_user,
    step_07_verify_user_created,
    step_08_recreate_user_conflicts,
    step_09_username_case_insensitive,
    step_10_groups_endpoint,
    step_11_bad_token_is_401,
    step_12_unknown_user_is_404,
)


def test_okta_scim20_spec_test(okta: tuple[httpx.Client, str]) -> None:
    """The SPEC test's twelve request steps, in order, on a tenant seeded with a user and a group."""
    http, auth = okta
    run = SpecRun(http, auth, runscope_variables(random.Random()))
    seeded = seed_what_the_spec_assumes(run)
    for step in SPEC_STEPS:
        step(run)
    # the chain: on the fresh tenant, step 1 found the seeded user and step 6 made the second
    if run.extracted["usersBefore"] == 1:
        assert run.extracted["ISVUserid"] == seeded["id"]
    assert run.extracted["idUserOne"] not in (None, seeded["id"])
    r = run.get("/Users?count=1&startIndex=1")
    assert body_of(r)["totalResults"] == run.extracted["usersBefore"] + 1


def test_the_spec_assertions_are_all_restated() -> None:
    """52 assertions in the export; one ``# SPEC`` line each here."""
    import inspect

    counts = {f.__name__: inspect.getsource(f).count("# SPEC") for f in SPEC_STEPS}
    assert list(counts.values()) == [12, 8, 3, 3, 3, 7, 4, 1, 1, 2, 4, 4], counts
    assert sum(counts.values()) == 52


# --- the rest of Okta's documented conversation (SCIM 2.0 reference) ------------------------------


def okta_client(okta: tuple[httpx.Client, str]) -> httpx.Client:
    http, auth = okta
    http.headers.update({**OKTA_CLIENT_HEADERS, "Authorization": auth})
    return http


def patch_body(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


def assert_list_response(body: dict[str, Any], start_index: int) -> None:
    """Okta pages with startIndex, count and totalResults, which must be integers."""
    assert LIST_RESPONSE in body["schemas"], body
    for key in ("totalResults", "startIndex", "itemsPerPage"):
        assert is_a_number(body[key]), (key, body)
    assert body["startIndex"] == start_index, body
    assert body["itemsPerPage"] == len(body.get("Resources", [])), body


def page_ids(http: httpx.Client, resource: str, count: int, total: int) -> list[str]:
    """Every id, page by page as Okta's import does: startIndex 1, 1+count, ... while below totalResults."""
    ids: list[str] = []
    start = 1
    while start <= total:
        r = http.get(f"/{resource}?startIndex={start}&count={count}")
        assert r.status_code == 200, describe(r)
        body = body_of(r)
        assert_list_response(body, start)
        assert body["totalResults"] == total, body
        assert len(body["Resources"]) == min(count, total - start + 1), body
        ids.extend(resource_["id"] for resource_ in body["Resources"])
        start += count
    return ids


def test_first_contact_on_an_empty_tenant_is_an_empty_list(okta: tuple[httpx.Client, str]) -> None:
    """Okta's connection test lists users with count and startIndex before any exist: an empty, well-
    formed ListResponse (this is also why the SPEC test needs a seeded user)."""
    http = okta_client(okta)
    for url in (
        "/Users?count=1&startIndex=1",
        "/Users?startIndex=1&count=100",
        "/Groups?startIndex=1&count=100",
    ):
        r = http.get(url)
        assert r.status_code == 200, describe(r)
        body = body_of(r)
        assert_list_response(body, 1)
        assert body["totalResults"] == 0 and body.get("Resources", []) == [], body


def test_import_pages_by_start_index_and_count_in_a_stable_order(okta: tuple[httpx.Client, str]) -> None:
    """ "Retrieve Users"/"Retrieve Groups": count=100, then startIndex+100 until totalResults; the
    order must be the same whatever count and startIndex are."""
    http = okta_client(okta)
    users = 130
    for i in range(users):
        r = http.post("/Users", json={"schemas": [USER], "userName": f"import.{i:03d}@okta.local"})
        assert r.status_code == 201, describe(r)
    groups = 5
    for i in range(groups):
        r = http.post("/Groups", json={"schemas": [GROUP], "displayName": f"Import {i}", "members": []})
        assert r.status_code == 201, describe(r)

    by_100 = page_ids(http, "Users", 100, users)
    assert len(by_100) == users == len(set(by_100))
    assert page_ids(http, "Users", 100, users) == by_100  # the same pages twice
    assert page_ids(http, "Users", 7, users) == by_100  # the same order with another page size
    # a startIndex beyond the end is an empty page, not an error
    r = http.get(f"/Users?startIndex={users + 1}&count=100")
    assert (
        r.status_code == 200 and body_of(r)["totalResults"] == users and body_of(r).get("Resources", []) == []
    )

    groups_by_100 = page_ids(http, "Groups", 100, groups)
    assert len(set(groups_by_100)) == groups
    assert page_ids(http, "Groups", 2, groups) == groups_by_100


def test_okta_user_lifecycle_deactivates_and_never_deletes(okta: tuple[httpx.Client, str]) -> None:
    """ "SCIM User operations": match by userName (with startIndex/count), create with Okta's body, read,
    update by PUT, deactivate and reactivate by PATCH (OIN integrations) and by PUT (AIW integrations).
    Okta never sends DELETE for users: a deactivated user stays readable and listed."""
    http = okta_client(okta)
    name = "test.user@okta.local"
    match = filter_url("Users", user_name_eq(name), "&startIndex=1&count=100")
    r = http.get(match)
    assert r.status_code == 200, describe(r)
    assert body_of(r)["totalResults"] == 0

    create = {
        "schemas": [USER],
        "userName": name,
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": name, "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }
    r = http.post("/Users", json=create)
    assert r.status_code == 201, describe(r)
    user = body_of(r)
    uid = user["id"]
    assert not_empty(uid) and user["active"] is True
    for key in ("userName", "name", "emails", "displayName", "locale", "externalId"):
        assert user[key] == create[key], key
    assert "password" not in user  # returned never (RFC 7643 section 4.1.1)

    r = http.get(match)
    assert [u["id"] for u in body_of(r)["Resources"]] == [uid]
    r = http.get(f"/Users/{uid}")
    assert r.status_code == 200 and body_of(r)["id"] == uid

    # Update a specific User (PUT): Okta GETs, changes what changed, PUTs the whole body back
    put = {
        "schemas": [USER],
        "id": uid,
        "userName": name,
        "name": {"givenName": "Another", "middleName": "Excited", "familyName": "User"},
        "emails": [{"primary": True, "value": name, "type": "work", "display": name}],
        "active": True,
        "groups": [],
        "meta": {"resourceType": "User"},
    }
    r = http.put(f"/Users/{uid}", json=put)
    assert r.status_code == 200, describe(r)
    updated = body_of(r)
    assert updated["id"] == uid and updated["name"] == put["name"] and updated["emails"] == put["emails"]
    assert updated["active"] is True

    def assert_still_there(active: bool) -> None:
        r = http.get(f"/Users/{uid}")
        assert r.status_code == 200, describe(r)
        assert body_of(r)["active"] is active
        r = http.get(match)
        assert [(u["id"], u["active"]) for u in body_of(r)["Resources"]] == [(uid, active)]
        r = http.get("/Users?startIndex=1&count=100")
        assert uid in [u["id"] for u in body_of(r)["Resources"]]

    # Deactivate (OIN): PATCH replace with a path-less value {"active": false}; 200 with the user or 204
    r = http.patch(f"/Users/{uid}", json=patch_body({"op": "replace", "value": {"active": False}}))
    assert r.status_code in (200, 204), describe(r)
    if r.status_code == 200:
        assert body_of(r)["id"] == uid and body_of(r)["active"] is False
    assert_still_there(active=False)
    # Reactivate (OIN): the same with true
    r = http.patch(f"/Users/{uid}", json=patch_body({"op": "replace", "value": {"active": True}}))
    assert r.status_code in (200, 204), describe(r)
    assert_still_there(active=True)
    # Deactivate (AIW): PUT the whole user with active false
    r = http.put(f"/Users/{uid}", json={**put, "active": False})
    assert r.status_code == 200, describe(r)
    assert body_of(r)["active"] is False and body_of(r)["name"] == put["name"]
    assert_still_there(active=False)
    # Reactivate (AIW)
    r = http.put(f"/Users/{uid}", json=put)
    assert r.status_code == 200 and body_of(r)["active"] is True
    assert_still_there(active=True)


def test_okta_group_push(okta: tuple[httpx.Client, str]) -> None:
    """ "SCIM Group operations": push (POST with members []), read, rename by path-less replace with the
    id, remove and add members in one PATCH, full push by replace members, replace members [] to
    empty, PUT (AIW), and DELETE when the admin unlinks with "Delete the group in the target app"."""
    http = okta_client(okta)
    uids = []
    for i in range(3):
        r = http.post("/Users", json={"schemas": [USER], "userName": f"member{i}@okta.local"})
        assert r.status_code == 201, describe(r)
        uids.append(body_of(r)["id"])

    r = http.post("/Groups", json={"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []})
    assert r.status_code == 201, describe(r)
    group = body_of(r)
    gid = group["id"]
    assert not_empty(gid) and group["displayName"] == "Test SCIMv2" and group.get("members", []) == []

    r = http.get("/Groups?startIndex=1&count=100")
    assert r.status_code == 200 and [g["id"] for g in body_of(r)["Resources"]] == [gid]

    def members() -> list[str]:
        r = http.get(f"/Groups/{gid}")
        assert r.status_code == 200, describe(r)
        return sorted(m["value"] for m in body_of(r).get("members", []))

    def patch_group(*ops: dict[str, Any]) -> None:
        r = http.patch(f"/Groups/{gid}", json=patch_body(*ops))
        assert r.status_code in (200, 204), describe(r)  # Okta takes the group back, or 204
        if r.status_code == 200:
            assert body_of(r)["id"] == gid

    # Update a specific Group name (sent again before every membership update)
    patch_group({"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv20"}})
    assert body_of(http.get(f"/Groups/{gid}"))["displayName"] == "Test SCIMv20"

    # Update specific Group membership: add, then remove one and add another in one request
    patch_group(
        {"op": "add", "path": "members", "value": [{"value": uids[0], "display": "member0@okta.local"}]}
    )
    assert members() == [uids[0]]
    patch_group(
        {"op": "remove", "path": f'members[value eq "{uids[0]}"]'},
        {"op": "add", "path": "members", "value": [{"value": uids[1], "display": "member1@okta.local"}]},
    )
    assert members() == [uids[1]]
    # a full push of the membership
    patch_group(
        {
            "op": "replace",
            "path": "members",
            "value": [{"value": u, "display": f"member{i}@okta.local"} for i, u in enumerate(uids[1:], 1)],
        }
    )
    assert members() == sorted(uids[1:])
    # the last member unassigned: replace members with an empty list
    patch_group({"op": "replace", "path": "members", "value": []})
    assert members() == []
    assert body_of(http.get(f"/Groups/{gid}"))["displayName"] == "Test SCIMv20"

    # AIW integrations update groups by PUT
    r = http.put(
        f"/Groups/{gid}",
        json={
            "schemas": [GROUP],
            "id": gid,
            "displayName": "Test SCIMv2 AIW",
            "members": [{"value": uids[2]}],
        },
    )
    assert r.status_code == 200, describe(r)
    assert body_of(r)["displayName"] == "Test SCIMv2 AIW" and members() == [uids[2]]

    r = http.delete(f"/Groups/{gid}")
    assert r.status_code == 204 and r.content == b"", describe(r)
    r = http.get(f"/Groups/{gid}")
    assert r.status_code == 404 and ERROR in body_of(r)["schemas"]
    # the members themselves are untouched
    for uid in uids:
        assert http.get(f"/Users/{uid}").status_code == 200
