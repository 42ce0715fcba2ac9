"""scim2-tester's full check suite against a server that declares extension schemas of its own.

scim2-tester builds its models from ``/Schemas`` and ``/ResourceTypes``, so with a declared User
extension and a declared Group extension it creates, reads, queries, replaces and patches every
custom attribute as well (167 checks instead of about 65). Every check must pass, as in
``test_scim2_tester.py``.

The extension holds the attribute types scim2-tester can generate and compare. Left out, each
checked by hand against Provisor (2026-11-30, scim2-tester in the test extra) and found to be the
tester's limit, not the server's:

- ``decimal`` and ``dateTime``: its value generator has no case for them and sends a UUID string,
  which its own models then refuse before any request is made;
- ``binary``: it compares the base64 text it sent with the bytes its model decoded from the same
  text returned;
- multi-valued attributes: its add check patches the whole extension first and the attribute
  second, then expects only the second value, where RFC 7644 section 3.5.2.1 adds it to the first.

``tests/server/test_custom_extensions.py`` covers those types over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conformance.conftest import (
    REPO_ROOT,
    ProvisorServer,
    _stop,
    _wait_healthy,
    create_tenant,
    free_port,
    provisor_cli,
    provisor_executable,
    scim2_tester_report,
)

pytest.importorskip("httpx2", reason="scim2-client's httpx2 engine is not installed")
pytest.importorskip("scim2_client.engines.httpx2")
pytest.importorskip("scim2_tester")

USER_EXTENSION: dict[str, Any] = {
    "id": "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User",
    "name": "CustomExtension",
    "description": "Custom attributes as an Entra admin adds them to a non-gallery app",
    "attributes": [
        {"name": "costCode", "type": "string"},
        {"name": "badgeNumber", "type": "integer"},
        {"name": "contractor", "type": "boolean"},
        {"name": "tier", "type": "string", "canonicalValues": ["gold", "silver"]},
        {"name": "homepage", "type": "reference", "referenceTypes": ["external"]},
        {
            "name": "badge",
            "type": "complex",
            "subAttributes": [
                {"name": "number", "type": "string", "required": True},
                {"name": "level", "type": "integer"},
            ],
        },
    ],
}
GROUP_EXTENSION: dict[str, Any] = {
    "id": "urn:example:scim:Team:2.0:Group",
    "name": "Team",
    "attributes": [{"name": "costCenter", "type": "string"}, {"name": "size", "type": "integer"}],
}


def _declare(db_url: str, workdir: Path, definition: dict[str, Any], resource_type: str) -> None:
    path = workdir / f"{definition['name']}.json"
    path.write_text(json.dumps(definition), encoding="utf-8")
    urn = provisor_cli(db_url, "schema", "add", str(path), "--resource-type", resource_type)
    assert urn == definition["id"]


@pytest.fixture(scope="module")
def extended_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProvisorServer]:
    """`provisor serve` over a database in which both extensions were declared before it started."""
    workdir = tmp_path_factory.mktemp("provisor-extended")
    db_url = f"sqlite:///{workdir / 'provisor.db'}"
    _declare(db_url, workdir, USER_EXTENSION, "User")
    _declare(db_url, workdir, GROUP_EXTENSION, "Group")
    log_path = workdir / "server.log"
    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [provisor_executable(), "serve", "--db", db_url, "--host", "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PROVISOR_DB": db_url},
            cwd=REPO_ROOT,
            start_new_session=True,
        )
    server = ProvisorServer(f"http://127.0.0.1:{port}/scim/v2", db_url, log_path)
    try:
        assert _wait_healthy(proc, f"http://127.0.0.1:{port}/healthz"), server.log_tail()
        yield server
    finally:
        _stop(proc)


def test_scim2_tester_check_server_with_declared_extensions(extended_server: ProvisorServer) -> None:
    token = create_tenant(extended_server, f"conformance-ext-{uuid.uuid4().hex[:12]}")
    # more than 150: the declared extensions' attributes were checked too (about 65 without them)
    results = scim2_tester_report(extended_server.base_url, token, minimum=151)
    urns = (USER_EXTENSION["id"], GROUP_EXTENSION["id"])
    assert any(urn in str(r.reason) for r in results for urn in urns), "no check named a declared attribute"
