"""Shared fixtures: a real Provisor server on loopback over a real SQLite file."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

SCIM = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class LiveServer:
    def __init__(self, store: Any, server: Any) -> None:
        self.store = store
        self.server = server
        self.root = f"http://127.0.0.1:{server.port}"
        self.base = f"{self.root}/scim/v2"

    def new_tenant(self, settings: dict[str, Any] | None = None) -> tuple[str, str]:
        """A fresh tenant; returns (tenant id, Secret Token)."""
        from provisor.server.auth import issue_token

        tenant = self.store.create_tenant(f"t-{uuid.uuid4().hex[:10]}", settings or {})
        token, _ = issue_token(self.store, tenant.id, label="test")
        return tenant.id, token

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Content-Type": SCIM, "Accept": SCIM}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from provisor.server import ServerConfig

    db: Path = tmp_path_factory.mktemp("live") / "provisor.db"
    config = ServerConfig(
        access_log=False,
        max_body_bytes=256 * 1024,
        bulk_max_operations=50,
        bulk_max_payload_bytes=256 * 1024,
        token_cache_seconds=0.2,
    )
    with serving(f"sqlite:///{db}", config) as server:
        yield server


@contextmanager
def serving(url: str, config: Any = None, **options: Any) -> Iterator[LiveServer]:
    """A server on loopback over the SQL store at ``url`` (opened here, closed after), with ``config``
    (a ServerConfig; the default without the access log) and uvicorn ``options`` (BackgroundServer's:
    read timeouts, connections)."""
    from provisor.cli.serving import BackgroundServer
    from provisor.server import ServerConfig, create_app
    from provisor.store.sql import SqlStore

    store = SqlStore(url)
    server = BackgroundServer(create_app(store, config or ServerConfig(access_log=False)), **options).start()
    try:
        yield LiveServer(store, server)
    finally:
        server.stop()
        store.close()


@pytest.fixture
def tenant(live: LiveServer) -> tuple[str, str]:
    return live.new_tenant()


@pytest.fixture
def client(live: LiveServer, tenant: tuple[str, str]) -> Iterator[httpx.Client]:
    with live.client(tenant[1]) as c:
        yield c


def make_user(user_name: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [USER], "userName": user_name, "active": True}
    body.update(extra)
    return body


def create_user(client: httpx.Client, user_name: str, **extra: Any) -> dict[str, Any]:
    r = client.post("/Users", json=make_user(user_name, **extra))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def create_group(client: httpx.Client, name: str, members: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [GROUP], "displayName": name}
    if members:
        body["members"] = [{"value": m} for m in members]
    r = client.post("/Groups", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def assert_scim_error(r: httpx.Response, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(SCIM), r.headers
    body = r.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == str(status)
    assert body.get("detail")
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body  # type: ignore[no-any-return]
