"""ScimTarget against a real Provisor server on loopback (entra-behaviour.md 1.2-1.6)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from tests.conftest import ENTERPRISE, GROUP, USER, LiveServer

from provisor.engine.targets import (
    Conflict,
    InvalidCredentials,
    NotFoundError,
    PatchOperation,
    RequestRejected,
    ScimTarget,
)

pytestmark = pytest.mark.slow
T = TypeVar("T")


def with_target(
    live: LiveServer, action: Callable[[ScimTarget], Awaitable[T]], *, settings: dict | None = None, **kw: Any
) -> T:
    _, token = live.new_tenant(settings)

    async def main() -> T:
        async with ScimTarget(live.base, token, **kw) as target:
            return await action(target)

    return asyncio.run(main())


def user_body(name: str) -> dict[str, Any]:
    return {
        "schemas": [USER, ENTERPRISE],
        "externalId": name,
        "userName": f"{name}@contoso.com",
        "active": True,
        "displayName": name.title(),
        "emails": [{"primary": True, "type": "work", "value": f"{name}@contoso.com"}],
        "name": {"givenName": name.title(), "familyName": "Old"},
        ENTERPRISE: {"department": "Sales"},
    }


def test_test_connection_succeeds(live: LiveServer) -> None:
    async def action(target: ScimTarget) -> Any:
        await target.test_connection()
        await target.test_connection(user_matching_attr="externalId", groups=False)
        return target.stats

    stats = with_target(live, action)
    assert stats.count("GET", 200) == 3 and stats.total_retries == 0


def test_wrong_token_is_invalid_credentials(live: LiveServer) -> None:
    async def main() -> None:
        async with ScimTarget(live.base, "not-a-token") as target:
            await target.test_connection()

    with pytest.raises(InvalidCredentials) as info:
        asyncio.run(main())
    assert info.value.code == "Unauthorized" and info.value.quarantine
    assert "not-a-token" not in str(info.value)


def test_query_before_create_get_conflict_and_delete(live: LiveServer) -> None:
    async def action(target: ScimTarget) -> None:
        name = f"q{uuid.uuid4().hex[:8]}"
        assert await target.find("user", "userName", f"{name}@contoso.com") == []
        made = await target.create("user", user_body(name))
        found = await target.find("user", "userName", f"{name}@contoso.com")
        assert [u["id"] for u in found] == [made["id"]]
        by_email = await target.find("user", 'emails[type eq "work"].value', f"{name}@contoso.com")
        assert [u["id"] for u in by_email] == [made["id"]]
        assert (await target.get("user", made["id"]))["userName"] == f"{name}@contoso.com"  # type: ignore[index]
        with pytest.raises(Conflict):
            await target.create("user", user_body(name))
        assert await target.delete("user", made["id"]) is True
        assert await target.delete("user", made["id"]) is False
        assert await target.get("user", made["id"]) is None
        with pytest.raises(NotFoundError):
            await target.patch("user", made["id"], [PatchOperation("replace", "title", "x")])

    with_target(live, action)


def test_filter_value_with_quote_and_backslash_round_trips(live: LiveServer) -> None:
    async def action(target: ScimTarget) -> None:
        odd = f'o"dd\\{uuid.uuid4().hex[:6]}'
        made = await target.create("user", {"schemas": [USER], "userName": odd, "active": True})
        assert [u["id"] for u in await target.find("user", "userName", odd)] == [made["id"]]
        assert await target.find("user", "userName", odd + "x") == []

    with_target(live, action)


CHANGES = [
    PatchOperation("replace", 'emails[type eq "work"].value', "new@contoso.com"),
    PatchOperation("replace", "name.familyName", "Smith"),
    PatchOperation("replace", "displayName", "Alice Smith"),
    PatchOperation("replace", f"{ENTERPRISE}:employeeNumber", "701984"),
    PatchOperation("replace", f"{ENTERPRISE}:department", "Marketing"),
    PatchOperation("add", "nickName", "Al"),
    PatchOperation("replace", "active", False),
]


@pytest.mark.parametrize(
    ("dialect", "settings"),
    [("entra", None), ("aadOptscim062020", None), ("rfc", {"strict": True})],
)
def test_patch_in_each_dialect_changes_the_resource(
    dialect: str, settings: dict | None, live: LiveServer
) -> None:
    async def action(target: ScimTarget) -> dict[str, Any] | None:
        made = await target.create("user", user_body(f"p{uuid.uuid4().hex[:8]}"))
        await target.patch("user", made["id"], CHANGES)
        return await target.get("user", made["id"])

    user = with_target(live, action, settings=settings, dialect=dialect)
    assert user is not None
    assert user["active"] is False
    assert user["displayName"] == "Alice Smith"
    assert user["nickName"] == "Al"
    assert user["name"]["familyName"] == "Smith" and user["name"]["givenName"].startswith("P")
    assert [e["value"] for e in user["emails"] if e.get("type") == "work"] == ["new@contoso.com"]
    assert user[ENTERPRISE]["employeeNumber"] == "701984"
    assert user[ENTERPRISE]["department"] == "Marketing"


ADSCIM = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


@pytest.mark.parametrize(
    ("dialect", "settings"),
    [("entra", None), ("aadOptscim062020", None), ("rfc", {"strict": True})],
)
def test_group_lifecycle_with_members_in_batches(
    dialect: str, settings: dict | None, live: LiveServer
) -> None:
    _, token = live.new_tenant(settings)

    def members(group_id: str) -> set[str]:
        with live.client(token) as client:
            body = client.get(f"/Groups/{group_id}").json()
        return {m["value"] for m in body.get("members", [])}

    async def main() -> None:
        async with ScimTarget(live.base, token, dialect=dialect, member_batch=5) as target:
            ids = []
            for i in range(12):
                body = {"schemas": [USER], "userName": f"m{i}-{uuid.uuid4().hex[:6]}", "active": True}
                ids.append((await target.create("user", body))["id"])
            schemas = [GROUP] if settings else [GROUP, ADSCIM]  # Q9: Entra adds the ADSCIM URI
            name = f"Sales {uuid.uuid4().hex[:6]}"
            group = await target.create(
                "group", {"schemas": schemas, "externalId": str(uuid.uuid4()), "displayName": name}
            )
            assert [g["id"] for g in await target.find("group", "displayName", name)] == [group["id"]]

            before = target.stats.count("PATCH", 204) + target.stats.count("PATCH", 200)
            assert await target.add_members(group["id"], ids) == 3  # 5 + 5 + 2
            assert members(group["id"]) == set(ids)
            assert await target.remove_members(group["id"], ids[:7]) == 2  # 5 + 2
            assert members(group["id"]) == set(ids[7:])
            after = target.stats.count("PATCH", 204) + target.stats.count("PATCH", 200)
            assert after - before == 5

            await target.patch(
                "group", group["id"], [PatchOperation("replace", "displayName", name + " EMEA")]
            )
            fetched = await target.get("group", group["id"])
            assert fetched is not None and fetched["displayName"] == name + " EMEA"
            assert "members" not in fetched  # read with excludedAttributes=members (1.6)
            assert await target.delete("group", group["id"]) is True
            assert await target.get("group", group["id"]) is None

    asyncio.run(main())


@pytest.mark.parametrize("dialect", ["entra", "aadOptscim062020"])
def test_a_strict_rfc_server_refuses_entras_dialects_but_not_rfc(dialect: str, live: LiveServer) -> None:
    """Why the ``rfc`` dialect exists: a strict server rejects Q1/Q2/Q6 (capitalised ops, string
    booleans, dotted keys in a path-less value)."""

    async def action(target: ScimTarget) -> None:
        made = await target.create("user", user_body(f"s{uuid.uuid4().hex[:8]}"))
        await target.patch("user", made["id"], CHANGES)

    with pytest.raises(RequestRejected) as info:
        with_target(live, action, settings={"strict": True}, dialect=dialect)
    assert info.value.status == 400 and info.value.detail
