"""``provisor demo``: a tenant, a running server, and a user and a group going in and coming back."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import typer

from provisor.cli.serving import BackgroundServer, configure_logging
from provisor.server import ServerConfig, create_app
from provisor.server.auth import issue_token

SCIM = "application/scim+json"


def _show(title: str, response: httpx.Response, body: Any = None) -> dict[str, Any]:
    request = response.request
    typer.secho(f"\n== {title}", bold=True)
    typer.echo(f"{request.method} {request.url}")
    if body is not None:
        typer.echo(json.dumps(body, indent=2))
    typer.echo(f"-> {response.status_code}")
    data: dict[str, Any] = response.json() if response.content else {}
    if data:
        typer.echo(json.dumps(data, indent=2))
    return data


def run_demo(url: str, *, port: int, once: bool) -> None:
    from provisor.store.base import TenantNotFound
    from provisor.store.sql import SqlStore

    configure_logging("warning")
    store = SqlStore(url)
    try:
        name = "demo"
        try:
            tenant = store.get_tenant(name)
        except TenantNotFound:
            tenant = store.create_tenant(name, {})
        token, _ = issue_token(store, tenant.id, label="demo")
        server = BackgroundServer(create_app(store, ServerConfig(access_log=False)), port=port).start()
        base = f"http://127.0.0.1:{server.port}/scim/v2"
        typer.secho("Provisor is serving SCIM 2.0.", bold=True)
        typer.echo(f"Database:     {url}")
        typer.echo(f"Tenant URL:   {base}")
        typer.echo(f"Secret Token: {token}")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM, "Accept": SCIM}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            stamp = time.strftime("%H%M%S")
            probe = client.get(
                "/Users", params={"filter": 'userName eq "6f1c2b38-5d9e-4c61-9f0a-2b7d3e8c1a40"'}
            )
            _show("Test Connection (what Entra sends first)", probe)
            user = {
                "schemas": [
                    "urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                ],
                "externalId": f"ada-{stamp}",
                "userName": f"ada.{stamp}@example.com",
                "active": True,
                "displayName": "Ada Lovelace",
                "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
                "emails": [{"primary": True, "type": "work", "value": f"ada.{stamp}@example.com"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Engineering"},
            }
            created = _show("Create a user", client.post("/Users", json=user), user)
            group = {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": f"Engineering {stamp}",
                "members": [{"value": created["id"]}],
            }
            made = _show("Create a group with the user in it", client.post("/Groups", json=group), group)
            _show(
                "Find the user as Entra does",
                client.get("/Users", params={"filter": f'userName eq "{user["userName"]}"'}),
            )
            _show("Read the group back", client.get(f"/Groups/{made['id']}"))
        if once:
            server.stop()
            return
        typer.secho(
            f"\nServing on {base} until Ctrl-C. Point Entra or Okta at it with the Secret Token above.",
            bold=True,
        )
        try:
            while server.thread.is_alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            typer.echo("stopping")
        server.stop()
    finally:
        store.close()
