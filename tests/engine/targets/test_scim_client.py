"""ScimTarget against httpx.MockTransport: requests on the wire and answers mapped to Entra's error
codes (entra-behaviour.md 1.2-1.6, 1.8)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from provisor.engine.jobs.model import PatchDialect, Secret, TargetConfig
from provisor.engine.model import ObjectKind
from provisor.engine.targets import (
    Conflict,
    InvalidCredentials,
    MultipleEntries,
    NotFoundError,
    PatchOperation,
    RequestRejected,
    ScimComplianceError,
    ScimTarget,
    ServiceIncompatible,
    TargetError,
)

TOKEN = "s3cr3t-token-value"
BASE = "https://app.example/scim/v2"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def empty_list(_: object = None) -> httpx.Response:
    return httpx.Response(200, json={"schemas": [LIST], "totalResults": 0, "Resources": []})


def scim_error(status: int, detail: str, scim_type: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"schemas": [ERROR], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return httpx.Response(status, json=body)


class Recorder:
    """A MockTransport handler that records requests and answers from a function."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    def query(self, i: int = 0) -> list[tuple[str, str]]:
        return parse_qsl(self.requests[i].url.query.decode())

    def body(self, i: int = 0) -> Any:
        return json.loads(self.requests[i].content)


def run(
    answer: Callable[[httpx.Request], httpx.Response],
    action: Callable[[ScimTarget], Any],
    **options: Any,
) -> tuple[Any, Recorder]:
    recorder = Recorder(answer)

    async def main() -> Any:
        async def no_sleep(_: float) -> None:
            return None

        options.setdefault("sleep", no_sleep)
        async with ScimTarget(BASE, TOKEN, transport=httpx.MockTransport(recorder), **options) as target:
            return await action(target)

    return asyncio.run(main()), recorder


def test_find_sends_the_match_query_section_1_3() -> None:
    result, rec = run(empty_list, lambda t: t.find("user", "userName", 'al"ice\\x'))
    assert result == []
    request = rec.requests[0]
    assert request.method == "GET"
    assert request.url.path == "/scim/v2/Users"
    assert rec.query() == [("filter", 'userName eq "al\\"ice\\\\x"')]
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Accept"] == "application/scim+json"


def test_find_groups_excludes_members_section_1_6() -> None:
    _, rec = run(empty_list, lambda t: t.find(ObjectKind.GROUP, "displayName", "Sales"))
    assert rec.requests[0].url.path == "/scim/v2/Groups"
    assert rec.query() == [("excludedAttributes", "members"), ("filter", 'displayName eq "Sales"')]


def test_find_returns_resources() -> None:
    found = {"schemas": [LIST], "totalResults": 1, "Resources": [{"id": "u1", "userName": "a"}]}
    result, _ = run(lambda r: httpx.Response(200, json=found), lambda t: t.find("user", "userName", "a"))
    assert result == [{"id": "u1", "userName": "a"}]


def test_group_query_answered_with_members_is_multiple_entries() -> None:
    body = {"schemas": [LIST], "totalResults": 1, "Resources": [{"id": "g", "members": [{"value": "u"}]}]}
    with pytest.raises(MultipleEntries) as info:
        run(lambda r: httpx.Response(200, json=body), lambda t: t.find("group", "displayName", "S"))
    assert info.value.code == "SystemForCrossDomainIdentityManagementMultipleEntriesInResponse"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, content=b"<html>hi</html>"),
        httpx.Response(200, json=[{"id": "x"}]),
        httpx.Response(200, json={"id": "x", "userName": "a"}),
        httpx.Response(
            200, json={"schemas": [LIST], "totalResults": 1, "Resources": [{"userName": "no id"}]}
        ),
        httpx.Response(200, json={"schemas": ["urn:other"], "totalResults": 0}),
    ],
)
def test_query_answer_that_is_not_a_list_response_is_service_incompatible(answer: httpx.Response) -> None:
    with pytest.raises(ServiceIncompatible) as info:
        run(lambda r: answer, lambda t: t.find("user", "userName", "a"))
    assert info.value.code == "SystemForCrossDomainIdentityManagementServiceIncompatible"
    assert not info.value.retryable


def test_test_connection_queries_a_random_guid_for_users_and_groups_section_1_2() -> None:
    _, rec = run(empty_list, lambda t: t.test_connection(user_matching_attr="externalId"))
    assert [r.url.path for r in rec.requests] == ["/scim/v2/Users", "/scim/v2/Groups"]
    user_filter = dict(rec.query(0))["filter"]
    assert user_filter.startswith('externalId eq "') and len(user_filter) == len('externalId eq ""') + 36
    assert rec.query(1)[0] == ("excludedAttributes", "members")
    assert dict(rec.query(1))["filter"].startswith('displayName eq "')


def test_test_connection_without_groups() -> None:
    _, rec = run(empty_list, lambda t: t.test_connection(groups=False))
    assert len(rec.requests) == 1


@pytest.mark.parametrize(("status", "code"), [(401, "Unauthorized"), (403, "InsufficientRights")])
def test_test_connection_bad_credentials(status: int, code: str) -> None:
    with pytest.raises(InvalidCredentials) as info:
        run(lambda r: scim_error(status, "token expired"), lambda t: t.test_connection())
    assert info.value.code == code
    assert info.value.quarantine and not info.value.retryable
    assert "token expired" in str(info.value)


def test_test_connection_404_is_a_compliance_problem_q14() -> None:
    with pytest.raises(ScimComplianceError) as info:
        run(lambda r: scim_error(404, "no such user"), lambda t: t.test_connection())
    assert info.value.quarantine
    assert "404 instead of 200" in str(info.value)


def test_test_connection_when_filter_is_ignored() -> None:
    body = {"schemas": [LIST], "totalResults": 1, "Resources": [{"id": "u1"}]}
    with pytest.raises(ServiceIncompatible, match="ignores the filter"):
        run(lambda r: httpx.Response(200, json=body), lambda t: t.test_connection())


def test_get_and_404_is_none() -> None:
    user = {"id": "u 1", "userName": "a"}
    result, rec = run(lambda r: httpx.Response(200, json=user), lambda t: t.get("user", "u 1"))
    assert result == user
    assert rec.requests[0].url.raw_path == b"/scim/v2/Users/u%201"
    result, _ = run(lambda r: scim_error(404, "gone"), lambda t: t.get("user", "u1"))
    assert result is None


def test_get_group_excludes_members() -> None:
    _, rec = run(lambda r: httpx.Response(200, json={"id": "g"}), lambda t: t.get("group", "g"))
    assert rec.query() == [("excludedAttributes", "members")]


def test_create_posts_scim_json_and_returns_the_resource() -> None:
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a", "active": True}
    made = {**body, "id": "new-id"}
    result, rec = run(lambda r: httpx.Response(201, json=made), lambda t: t.create("user", body))
    assert result == made
    assert rec.requests[0].method == "POST"
    assert rec.requests[0].headers["Content-Type"] == "application/scim+json"
    assert rec.body() == body


def test_create_without_id_is_service_incompatible() -> None:
    with pytest.raises(ServiceIncompatible):
        run(lambda r: httpx.Response(201, json={"userName": "a"}), lambda t: t.create("user", {}))


def test_create_conflict_is_entry_conflict_with_detail() -> None:
    with pytest.raises(Conflict) as info:
        run(lambda r: scim_error(409, "userName taken", "uniqueness"), lambda t: t.create("user", {}))
    assert info.value.code == "EntryConflict" and info.value.status == 409
    assert "userName taken" in str(info.value) and info.value.detail == "userName taken"
    with pytest.raises(Conflict):
        run(lambda r: scim_error(400, "dup", "uniqueness"), lambda t: t.create("user", {}))


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "BadRequest"), (405, "MethodNotAllowed"), (422, "UnprocessableEntity"), (501, "NotImplemented")],
)
def test_other_client_errors_are_rejected_not_retried(status: int, code: str) -> None:
    with pytest.raises(RequestRejected) as info:
        run(lambda r: scim_error(status, "nope"), lambda t: t.create("user", {}))
    assert info.value.code == code and not info.value.retryable


@pytest.mark.parametrize("status", [200, 204])
def test_patch_accepts_200_and_204_and_sends_the_dialect(status: int) -> None:
    ops = [PatchOperation("replace", "active", False)]
    _, rec = run(lambda r: httpx.Response(status), lambda t: t.patch("user", "u1", ops))
    assert rec.requests[0].method == "PATCH" and rec.requests[0].url.path == "/scim/v2/Users/u1"
    assert rec.body()["Operations"] == [{"op": "Replace", "path": "active", "value": "False"}]
    _, rec = run(lambda r: httpx.Response(status), lambda t: t.patch("user", "u1", ops), dialect="rfc")
    assert rec.body()["Operations"] == [{"op": "replace", "path": "active", "value": False}]


def test_patch_with_no_operations_sends_nothing() -> None:
    _, rec = run(lambda r: httpx.Response(204), lambda t: t.patch("user", "u1", []))
    assert rec.requests == []


def test_patch_404_is_not_found_invalid_anchor() -> None:
    with pytest.raises(NotFoundError) as info:
        run(
            lambda r: scim_error(404, "gone"),
            lambda t: t.patch("user", "u1", [PatchOperation("remove", "x")]),
        )
    assert info.value.code == "InvalidAnchor"


def test_delete_reports_already_gone() -> None:
    result, rec = run(lambda r: httpx.Response(204), lambda t: t.delete("group", "g1"))
    assert result is True and rec.requests[0].method == "DELETE"
    assert rec.requests[0].url.path == "/scim/v2/Groups/g1"
    result, _ = run(lambda r: scim_error(404, "gone"), lambda t: t.delete("user", "u1"))
    assert result is False


def test_members_go_in_batches_section_1_6() -> None:
    ids = [f"u{i}" for i in range(7)]
    sent, rec = run(lambda r: httpx.Response(204), lambda t: t.add_members("g1", ids), member_batch=3)
    assert sent == 3
    values = [[m["value"] for m in rec.body(i)["Operations"][0]["value"]] for i in range(3)]
    assert values == [ids[0:3], ids[3:6], ids[6:7]]
    assert rec.body(0)["Operations"][0]["op"] == "Add"

    sent, rec = run(
        lambda r: httpx.Response(204),
        lambda t: t.remove_members("g1", ids),
        member_batch=4,
        dialect="aadOptscim062020",
    )
    assert sent == 2
    assert [o["path"] for o in rec.body(1)["Operations"]] == [f'members[value eq "u{i}"]' for i in (4, 5, 6)]


def test_flag_in_the_tenant_url_selects_the_dialect_and_is_not_sent_section_1_1() -> None:
    rec = Recorder(lambda r: httpx.Response(204))

    async def main() -> None:
        target = ScimTarget(
            "https://app.example/scim/v2/?aadOptscim062020=true", TOKEN, transport=httpx.MockTransport(rec)
        )
        assert target.dialect is PatchDialect.AAD_OPT_SCIM_062020
        await target.patch("user", "u1", [PatchOperation("replace", "title", "x")])
        await target.aclose()

    asyncio.run(main())
    assert str(rec.requests[0].url) == "https://app.example/scim/v2/Users/u1"
    assert rec.body()["Operations"] == [{"op": "replace", "value": {"title": "x"}}]
    assert ScimTarget(BASE, TOKEN).dialect is PatchDialect.ENTRA
    assert ScimTarget(BASE + "?aadOptscim062020=true", TOKEN, dialect="rfc").dialect is PatchDialect.RFC


def test_from_config() -> None:
    config = TargetConfig(url=BASE, token=Secret(TOKEN), patch_dialect=PatchDialect.RFC, timeout_seconds=5)
    target = ScimTarget.from_config(config)
    assert target.dialect is PatchDialect.RFC and target.base_url == BASE


def test_the_token_is_never_in_reprs_or_errors() -> None:
    target = ScimTarget(BASE, TOKEN)
    assert TOKEN not in repr(target) and TOKEN not in str(target)
    try:
        run(lambda r: scim_error(401, "bad"), lambda t: t.find("user", "userName", "a"))
    except TargetError as exc:
        assert TOKEN not in str(exc) and TOKEN not in repr(exc)
        assert TOKEN not in repr(exc.__dict__)
    else:
        pytest.fail("expected InvalidCredentials")


def test_the_url_flag_selects_the_compliant_dialect_when_the_job_keeps_the_default() -> None:
    from provisor.engine.jobs.model import PatchDialect, Secret, TargetConfig
    from provisor.engine.targets import ScimTarget

    flagged = TargetConfig(url="http://127.0.0.1:1/scim/v2?aadOptscim062020", token=Secret("t"))
    assert ScimTarget.from_config(flagged).dialect is PatchDialect.AAD_OPT_SCIM_062020
    plain = TargetConfig(url="http://127.0.0.1:1/scim/v2", token=Secret("t"))
    assert ScimTarget.from_config(plain).dialect is PatchDialect.ENTRA
    explicit = TargetConfig(
        url="http://127.0.0.1:1/scim/v2?aadOptscim062020", token=Secret("t"), patch_dialect=PatchDialect.RFC
    )
    assert ScimTarget.from_config(explicit).dialect is PatchDialect.RFC
