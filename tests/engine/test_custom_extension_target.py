"""Both halves together on a custom attribute: a job maps a source column to an extension URN the
app declared (``provisor schema add``), and Provisor's engine creates and then patches it in
Provisor's server as Entra would (entra-behaviour.md 1.3: the URN is left out of ``schemas``; 1.4:
the change is a PATCH on the URN path)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import LiveServer, serving
from tests.engine.test_file_source_cycles import run

from provisor.engine.jobs import Job, parse_job
from provisor.engine.memory_state import MemoryEngineState
from provisor.engine.sources.files import CsvSource
from provisor.engine.state import LogQuery
from provisor.scim.schema import default_registry
from provisor.scim.schema.extensions import parse_extension
from provisor.store.sql import SqlStore

URN = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"
JOB = """
name: custom-attributes
source:
  type: csv
  path: {path}
target:
  url: {base}
  token: ${{APP_TOKEN}}
template: clarizen-one
scope:
  mode: all
mappings:
  - {{target: "{urn}:costCode", source: costCenterCode}}
  - {{target: "{urn}:badge", type: expression, expression: 'Join("-", "B", [badge])'}}
state: sqlite:///unused.db
"""
HEADER = "objectId,objectType,userPrincipalName,displayName,givenName,surname,mail,costCenterCode,badge"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[LiveServer]:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    declare = SqlStore(url)
    definition = {
        "id": URN,
        "attributes": [{"name": "costCode", "type": "string"}, {"name": "badge", "type": "string"}],
    }
    declare.add_schema_extension(parse_extension(definition, default_registry(), "User"))
    declare.close()
    with serving(url) as live:
        yield live


def write(path: Path, cost_code: str, badge: str) -> None:
    row = f"u1,user,ada@example.com,Ada L,Ada,L,ada@example.com,{cost_code},{badge}"
    path.write_text(f"{HEADER}\n{row}\n", encoding="utf-8")


def failures(job: Job, state: MemoryEngineState) -> list[Any]:
    return [r for r in state.logs(job.name, LogQuery(status="Failure"))]


def the_user(client: Any) -> dict[str, Any]:
    found = client.get("/Users", params={"filter": 'userName eq "ada@example.com"'}).json()
    assert found["totalResults"] == 1, found
    return found["Resources"][0]  # type: ignore[no-any-return]


def test_a_mapped_custom_attribute_is_created_and_updated_in_the_app(app: LiveServer, tmp_path: Path) -> None:
    _, token = app.new_tenant()
    path = tmp_path / "hr.csv"
    job = parse_job(JOB.format(path=path, base=app.base, urn=URN), {"APP_TOKEN": token}, source_name="j.yaml")
    source = CsvSource(path, snapshot_path=tmp_path / "hr.snapshot")
    state = MemoryEngineState()
    write(path, "CC-100", "7")
    report = run(job, source, state)
    assert report.result == "Succeeded", failures(job, state)
    with app.client(token) as client:
        user = the_user(client)
        assert URN in user["schemas"]
        assert user[URN] == {"costCode": "CC-100", "badge": "B-7"}
        version = user["meta"]["version"]

        write(path, "CC-200", "7")
        report = run(job, source, state)
        assert report.result == "Succeeded", failures(job, state)
        user = the_user(client)
        assert user[URN] == {"costCode": "CC-200", "badge": "B-7"}
        assert user["meta"]["version"] != version
        found = client.get("/Users", params={"filter": f'{URN}:costCode eq "cc-200"'}).json()
        assert found["totalResults"] == 1
