"""Per-tenant allowed networks: a tenant's requests from any other address are 403, after its
token was checked; a stored setting that cannot be read allows nothing (fails closed)."""

from __future__ import annotations

import time
from ipaddress import ip_network
from typing import Any

import httpx
import pytest
from tests.conftest import LiveServer, assert_scim_error

from provisor.server.networks import client_allowed, compile_networks, parse_networks
from provisor.server.tenancy import context_for
from provisor.store.base import Tenant
from provisor.store.sql.tables import tenants


def test_parse_networks_reads_cidr_and_bare_addresses() -> None:
    assert parse_networks(["10.1.2.3/8", " 192.0.2.7 ", "2001:db8::/32"]) == (
        ip_network("10.0.0.0/8"),
        ip_network("192.0.2.7/32"),
        ip_network("2001:db8::/32"),
    )
    for bad in ("10.0.0.300/8", "example.com", "", "10.0.0.0/33"):
        with pytest.raises(ValueError, match="CIDR"):
            parse_networks([bad])


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (None, None),  # no setting: any address
        (["127.0.0.0/8"], (ip_network("127.0.0.0/8"),)),
        ([], ()),  # an empty list allows nothing
        ("127.0.0.0/8", ()),  # hand-edited into a string: fails closed
        (["127.0.0.0/8", 7], ()),
        (["not a network"], ()),
    ],
)
def test_a_stored_setting_compiles_or_fails_closed(setting: Any, expected: Any) -> None:
    assert compile_networks(setting) == expected


@pytest.mark.parametrize(
    ("client", "allowed"),
    [
        (("10.9.8.7", 5000), True),
        (("::ffff:10.9.8.7", 5000), True),  # an IPv4 client on a dual-stack socket
        (("2001:db8::1", 443), True),
        (("192.0.2.1", 5000), False),
        (("2001:db9::1", 443), False),
        (None, False),  # a UNIX socket: no address to check
        (("not-an-address", 1), False),
    ],
)
def test_client_allowed(client: Any, allowed: bool) -> None:
    networks = (ip_network("10.0.0.0/8"), ip_network("2001:db8::/32"))
    assert client_allowed(networks, client) is allowed


def test_context_for_carries_the_networks() -> None:
    from datetime import UTC, datetime

    tenant = Tenant(
        id="t", name="t", settings={"allowed_networks": ["10.0.0.0/8"]}, created=datetime.now(UTC)
    )
    assert context_for(tenant, 100).networks == (ip_network("10.0.0.0/8"),)


def get_users(live: LiveServer, token: str) -> httpx.Response:
    with live.client(token) as client:
        return client.get("/Users")


def test_requests_from_outside_a_tenants_networks_are_403(live: LiveServer) -> None:
    _, outside = live.new_tenant({"allowed_networks": ["10.0.0.0/8", "2001:db8::/32"]})
    body = assert_scim_error(get_users(live, outside), 403)
    assert "allowed networks" in body["detail"] and "10.0.0.0" not in body["detail"]  # the list is not told
    with live.client(outside) as client:  # writes too
        assert_scim_error(client.post("/Users", json={"userName": "x@x.com"}), 403)
    _, loopback = live.new_tenant({"allowed_networks": ["127.0.0.0/8"]})
    assert get_users(live, loopback).status_code == 200
    _, anywhere = live.new_tenant()
    assert get_users(live, anywhere).status_code == 200
    # a bad token is still 401 first: the network check comes after authentication
    with live.client("pvs_not-a-token") as stranger:
        assert_scim_error(stranger.get("/Users"), 401)


def test_a_setting_that_cannot_be_read_allows_nothing(live: LiveServer) -> None:
    _, token = live.new_tenant({"allowed_networks": "127.0.0.0/8"})
    assert_scim_error(get_users(live, token), 403)


@pytest.mark.parametrize("text", ["{not json", '["10.0.0.0/8"]', "null"])
def test_a_tenant_whose_settings_cannot_be_read_accepts_nothing_until_they_are_set(
    live: LiveServer, text: str
) -> None:
    """Fails closed (its allowed networks are unknown) and says why; other tenants go on; `tenant
    set` repairs it, within the token cache's second."""
    tenant_id, token = live.new_tenant({"allowed_networks": ["127.0.0.0/8"]})
    _, other = live.new_tenant()
    with live.store.engine.begin() as conn:
        conn.execute(tenants.update().where(tenants.c.id == tenant_id).values(settings=text))
    with live.client(token) as client:
        body = assert_scim_error(client.get("/Users"), 403)
        assert "stored settings cannot be read" in body["detail"] and "provisor tenant set" in body["detail"]
        assert_scim_error(client.post("/Users", json={"userName": "u@x.com"}), 403)
        assert_scim_error(client.get("/ServiceProviderConfig"), 403)
    assert live.store.count_resources(tenant_id) == {}
    assert get_users(live, other).status_code == 200
    live.store.update_settings(tenant_id, {"allowed_networks": ["127.0.0.0/8"]})
    deadline = time.monotonic() + 10  # the server's token cache holds what it read for a second
    while (status := get_users(live, token).status_code) == 403 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status == 200


def test_the_outside_tenant_stored_nothing(live: LiveServer) -> None:
    tenant_id, token = live.new_tenant({"allowed_networks": ["10.0.0.0/8"]})
    with live.client(token) as client:
        assert_scim_error(client.post("/Users", json={"userName": "y@x.com"}), 403)
    assert live.store.count_resources(tenant_id) == {}


def test_a_refused_request_does_not_count_as_the_tokens_use(live: LiveServer) -> None:
    """`token list`'s "used" means a request was accepted: one from outside the networks was not."""
    outside_id, outside = live.new_tenant({"allowed_networks": ["10.0.0.0/8"]})
    inside_id, inside = live.new_tenant({"allowed_networks": ["127.0.0.0/8"]})
    assert_scim_error(get_users(live, outside), 403)
    assert get_users(live, inside).status_code == 200
    assert [t.last_used for t in live.store.list_tokens(outside_id)] == [None]
    assert all(t.last_used is not None for t in live.store.list_tokens(inside_id))
