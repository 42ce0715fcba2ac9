"""``provisor demo``: the whole story on the embedded default.

Part 1, the SCIM service provider: a tenant, a running server, a user and a group going in and
coming back. Part 2, the provisioning engine: a directory tenant filled with a generated
organisation (1,000 users with managers, 50 groups, loaded over /Bulk), a Clarizen-One-style
app tenant (only the role User), a job file, the initial cycle with its progress bar, a few
changes in the directory, the incremental cycle, a provisioning-log excerpt and the job status.
The cycles run in-process through the functions ``provisor sync`` uses.
"""

from __future__ import annotations

import contextlib
import json
import random
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer

from provisor.cli.serving import BackgroundServer, configure_logging
from provisor.engine.model import ObjectKind
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
    from provisor.cli.common import fail, open_store
    from provisor.store.base import TenantNotFound

    configure_logging("warning")
    # a database it cannot use: one line, as for every command; one in memory lives as long as the demo
    with open_store(url, memory=True, create=True, upgrade=True) as store:
        name = "demo"
        others = sorted(
            t.name for t in store.list_tenants() if t.name not in (name, DIRECTORY_TENANT, APP_TENANT)
        )
        if others:  # the story deletes and refills its own tenants: never where real ones live
            shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            fail(
                f"the database {url} holds tenants the demo did not make ({shown}); the demo empties "
                f"and refills its own ({name}, {DIRECTORY_TENANT}, {APP_TENANT}): give it a database of "
                "its own, such as --db sqlite:///provisor-demo.db"
            )
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
        run_story(store, url, base, serving=not once)
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


# -- the engine story: a directory, a Clarizen-One-style app, a job, two cycles ----------------

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
DIRECTORY_TENANT = "demo-directory"
APP_TENANT = "demo-clarizen-one"
DEPARTMENTS = (
    "Engineering",
    "Product",
    "Sales",
    "Marketing",
    "Finance",
    "Human Resources",
    "Customer Support",
    "Operations",
    "Legal",
    "Research",
)
REGIONS = ("EMEA", "Americas", "APAC", "India")
#: The job's assignments (all with role User, the only role Clarizen One accepts).
ASSIGNED_GROUPS = ("Engineering", "Product", "Sales EMEA")
FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Barbara",
    "Ken",
    "Margaret",
    "Dennis",
    "Radia",
    "Tim",
    "Frances",
    "John",
    "Katherine",
    "Guido",
    "Sophie",
    "Edsger",
    "Hedy",
    "Donald",
    "Anita",
    "Niklaus",
    "Jean",
    "Bjarne",
    "Shafi",
    "Leslie",
    "Mary",
    "Claude",
    "Lynn",
    "Vint",
    "Joan",
    "Rasmus",
    "Ines",
    "Omar",
    "Yuki",
    "Priya",
    "Lars",
    "Chiara",
    "Mateo",
    "Amara",
    "Noor",
    "Hugo",
]
LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Liskov",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Perlman",
    "Berners",
    "Allen",
    "Backus",
    "Johnson",
    "Rossum",
    "Wilson",
    "Dijkstra",
    "Lamarr",
    "Knuth",
    "Borg",
    "Wirth",
    "Sammet",
    "Stroustrup",
    "Goldwasser",
    "Lamport",
    "Shaw",
    "Shannon",
    "Conway",
    "Cerf",
    "Clarke",
    "Lerdorf",
    "Moreau",
    "Haddad",
    "Tanaka",
    "Sharma",
    "Nilsson",
    "Ricci",
    "Garcia",
    "Okafor",
    "Rahman",
    "Fischer",
]


@dataclass
class Person:
    key: str  # bulkId
    upn: str
    first: str
    last: str
    department: str
    region: str
    title: str
    manager: str | None  # the manager's key
    active: bool = True


@dataclass
class Organisation:
    people: list[Person]
    groups: dict[str, list[str]]  # displayName -> member keys

    def in_scope(self) -> set[str]:
        """The keys of the users the demo job provisions (assigned through a group, or the CEO
        directly; disabled users never are)."""
        keys = {k for g in ASSIGNED_GROUPS for k in self.groups[g]} | {self.people[0].key}
        return {p.key for p in self.people if p.key in keys and p.active}


def organisation(users: int = 1000, seed: int = 7) -> Organisation:
    """A generated company: a CEO, a head per department, a lead per regional team and their
    staff, everyone with a manager; 10 department and 40 regional team groups; 2% disabled."""
    rng = random.Random(seed)
    people: list[Person] = []
    taken: set[str] = set()

    def hire(department: str, region: str, title: str, manager: str | None) -> Person:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        base = f"{first}.{last}".lower()
        upn, n = f"{base}@contoso.example", 1
        while upn in taken:
            n += 1
            upn = f"{base}{n}@contoso.example"
        taken.add(upn)
        person = Person(f"u{len(people)}", upn, first, last, department, region, title, manager)
        people.append(person)
        return person

    ceo = hire("Operations", "EMEA", "Chief Executive Officer", None)
    heads = {d: hire(d, rng.choice(REGIONS), f"Head of {d}", ceo.key) for d in DEPARTMENTS}
    leads = {(d, r): hire(d, r, f"{d} Lead {r}", heads[d].key) for d in DEPARTMENTS for r in REGIONS}
    teams = list(leads)
    while len(people) < users:
        d, r = rng.choice(teams)
        hire(d, r, rng.choice(("Specialist", "Senior Specialist", "Analyst", "Engineer")), leads[d, r].key)
    for person in rng.sample(people[len(leads) + 11 :], len(people) // 50):
        person.active = False
    groups: dict[str, list[str]] = {d: [] for d in DEPARTMENTS}
    groups.update({f"{d} {r}": [] for d in DEPARTMENTS for r in REGIONS})
    for person in people[1:]:
        groups[person.department].append(person.key)
        if not person.title.startswith("Head of"):
            groups[f"{person.department} {person.region}"].append(person.key)
    return Organisation(people, groups)


def _user_body(person: Person, manager_id: str | None) -> dict[str, Any]:
    ext: dict[str, Any] = {"department": person.department, "employeeNumber": person.key[1:].zfill(5)}
    if manager_id is not None:
        ext["manager"] = {"value": manager_id}
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "userName": person.upn,
        "externalId": person.upn.split("@")[0],
        "active": person.active,
        "displayName": f"{person.first} {person.last}",
        "name": {"givenName": person.first, "familyName": person.last},
        "title": person.title,
        "emails": [{"type": "work", "value": person.upn, "primary": True}],
        "addresses": [
            {
                "type": "work",
                "country": {"EMEA": "DE", "Americas": "US", "APAC": "JP", "India": "IN"}[person.region],
            }
        ],
        ENTERPRISE: ext,
    }


def _bulk(client: httpx.Client, operations: list[dict[str, Any]]) -> dict[str, str]:
    """POST /Bulk; the created ids by bulkId."""
    response = client.post("/Bulk", json={"schemas": [BULK], "Operations": operations})
    response.raise_for_status()
    ids: dict[str, str] = {}
    for result in response.json()["Operations"]:
        if not str(result.get("status", "")).startswith("2"):
            raise RuntimeError(f"bulk operation {result.get('bulkId')} failed: {result.get('response')}")
        ids[result["bulkId"]] = str(result["location"]).rstrip("/").rsplit("/", 1)[-1]
    return ids


def load_organisation(client: httpx.Client, org: Organisation, *, chunk: int = 250) -> dict[str, str]:
    """The organisation into the directory over /Bulk; returns user and group ids by key/name."""
    ids: dict[str, str] = {}
    for start in range(0, len(org.people), chunk):
        ops = []
        for person in org.people[start : start + chunk]:
            manager = None if person.manager is None else ids.get(person.manager, f"bulkId:{person.manager}")
            ops.append(
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": person.key,
                    "data": _user_body(person, manager),
                }
            )
        ids.update(_bulk(client, ops))
    ops = [
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": f"g{i}",
            "data": {
                "schemas": [GROUP_SCHEMA],
                "displayName": name,
                "members": [{"value": ids[k]} for k in keys],
            },
        }
        for i, (name, keys) in enumerate(org.groups.items())
    ]
    created = _bulk(client, ops)
    ids.update({name: created[f"g{i}"] for i, name in enumerate(org.groups)})
    return ids


JOB_FILE = """\
# Written by 'provisor demo': the directory tenant provisioned into a Clarizen-One-style app.
name: clarizen-one
source:
  type: scim
  url: {base}
  token: ${{DIRECTORY_TOKEN}}
target:
  url: {base}
  token: ${{APP_TOKEN}}
template: clarizen-one
scope:
  mode: assigned
  assignments:
{assignments}
state: sqlite:///clarizen-one.state.db
"""


def _work_dir(url: str) -> Path:
    if url.startswith("sqlite:///") and ":memory:" not in url:
        return Path(url.removeprefix("sqlite:///")).resolve().parent / "provisor-demo"
    return Path.cwd() / "provisor-demo"


def _fresh_tenant(store: Any, name: str, settings: dict[str, Any]) -> str:
    from provisor.server.auth import issue_token
    from provisor.store.base import TenantNotFound

    with contextlib.suppress(TenantNotFound):
        store.delete_tenant(name)
    tenant = store.create_tenant(name, settings)
    token, _ = issue_token(store, tenant.id, label="demo")
    return str(token)


def _count(client: httpx.Client, endpoint: str, filter_: str | None = None) -> int:
    params = {"count": "0"} | ({"filter": filter_} if filter_ else {})
    return int(client.get(endpoint, params=params).json()["totalResults"])


def _patch(client: httpx.Client, path: str, *operations: dict[str, Any]) -> None:
    client.patch(path, json={"schemas": [PATCH], "Operations": list(operations)}).raise_for_status()


def run_story(store: Any, url: str, base: str, *, serving: bool = True) -> None:
    """The provisioning engine end to end on the embedded server (entra-behaviour.md section 2)."""
    from provisor.cli.engine import open_job, sync_once
    from provisor.cli.jobs import ProgressDisplay, expected_total
    from provisor.engine.state import LogQuery

    began = time.monotonic()
    typer.secho("\n\n=== Part 2: Provisor as Entra's provisioning service", bold=True)
    dir_token = _fresh_tenant(store, DIRECTORY_TENANT, {})
    app_token = _fresh_tenant(store, APP_TENANT, {"allowed_roles": ["User"]})
    org = organisation()
    headers = {"Content-Type": SCIM, "Accept": SCIM}
    directory = httpx.Client(
        base_url=base, headers={**headers, "Authorization": f"Bearer {dir_token}"}, timeout=60
    )
    app = httpx.Client(base_url=base, headers={**headers, "Authorization": f"Bearer {app_token}"}, timeout=60)
    with directory, app:
        ids = load_organisation(directory, org)
        disabled = sum(not p.active for p in org.people)
        typer.echo(
            f"Directory tenant {DIRECTORY_TENANT}: {len(org.people)} users with managers "
            f"({disabled} disabled) and {len(org.groups)} groups, loaded over /Bulk "
            f"in {time.monotonic() - began:.1f} s"
        )
        typer.echo(f"App tenant {APP_TENANT}: a Clarizen-One-style app that accepts only the role User")

        work = _work_dir(url)
        work.mkdir(parents=True, exist_ok=True)
        for stale in work.glob("clarizen-one.state.db*"):
            stale.unlink()
        ceo = org.people[0]
        lines = [f"    - group: {g}\n      role: User" for g in ASSIGNED_GROUPS]
        lines.append(f"    - user: {ceo.upn}\n      role: User")
        job_path = work / "clarizen-one.yaml"
        job_path.write_text(JOB_FILE.format(base=base, assignments="\n".join(lines)))
        env = {"DIRECTORY_TOKEN": dir_token, "APP_TOKEN": app_token}
        typer.echo(
            f"Job file: {job_path}\n  (template clarizen-one; assigned with role User: "
            f"{', '.join(ASSIGNED_GROUPS)} and {ceo.upn})"
        )

        loaded = open_job(job_path, env)
        try:
            typer.secho("\n== Initial cycle", bold=True)
            with ProgressDisplay(
                total=expected_total(loaded) or len(org.in_scope()) + len(ASSIGNED_GROUPS)
            ) as show:
                report, state = sync_once(loaded, progress=show)
            _report(report)
            users = _count(app, "/Users")
            groups = _count(app, "/Groups")
            typer.echo(f"The app now holds {users} users and {groups} groups.")

            typer.secho("\n== Changes in the directory", bold=True)
            engineers = [
                p
                for p in org.people
                if p.key in org.groups["Engineering"] and p.active and p.manager != ceo.key
            ]
            renamed, leaver, mover = engineers[5], engineers[6], engineers[7]
            _patch(
                directory,
                f"/Users/{ids[renamed.key]}",
                {"op": "replace", "path": "name.familyName", "value": f"{renamed.last}-Okoye"},
                {"op": "replace", "path": "displayName", "value": f"{renamed.first} {renamed.last}-Okoye"},
            )
            typer.echo(
                f"renamed   {renamed.upn}: {renamed.first} {renamed.last} -> "
                f"{renamed.first} {renamed.last}-Okoye"
            )
            _patch(
                directory, f"/Users/{ids[leaver.key]}", {"op": "replace", "path": "active", "value": False}
            )
            typer.echo(f"disabled  {leaver.upn}")
            _patch(
                directory,
                f"/Groups/{ids['Engineering']}",
                {"op": "remove", "path": f'members[value eq "{ids[mover.key]}"]'},
            )
            typer.echo(f"removed   {mover.upn} from Engineering")
            newcomer = Person(
                f"u{len(org.people)}",
                "new.hire@contoso.example",
                "Nia",
                "Newton",
                "Engineering",
                "EMEA",
                "Engineer",
                renamed.manager,
            )
            created = directory.post("/Users", json=_user_body(newcomer, ids[renamed.manager or ceo.key]))
            created.raise_for_status()
            _patch(
                directory,
                f"/Groups/{ids['Engineering']}",
                {"op": "add", "path": "members", "value": [{"value": created.json()["id"]}]},
            )
            typer.echo(f"hired     {newcomer.upn} into Engineering")

            typer.secho("\n== Incremental cycle", bold=True)
            with ProgressDisplay(total=expected_total(loaded)) as show:
                report, state = sync_once(loaded, progress=show)
            _report(report)
            assert report is not None
            typer.secho(
                "\n== Provisioning log of the incremental cycle (provisor logs --cycle ...)", bold=True
            )
            for record in loaded.state.logs(loaded.job.name, LogQuery(cycle=report.cycle)):
                typer.echo(
                    f"{record.action:8} {record.status:8} {record.kind.value:5} "
                    f"{record.display[:34]:34} {record.reason}"
                )
                for attribute, old, new in record.modified[:4]:
                    typer.echo(f"{'':8} {attribute}: {old} -> {new}")

            typer.secho("\n== Job status (provisor status)", bold=True)
            name = loaded.job.name
            active = _count(app, "/Users", "active eq true")
            typer.echo(f"status             {state.status.value}")
            typer.echo(f"users              {loaded.state.count_connections(name, ObjectKind.USER)}")
            typer.echo(f"groups             {loaded.state.count_connections(name, ObjectKind.GROUP)}")
            typer.echo(f"escrows            {len(loaded.state.escrows(name))}")
            typer.echo(
                f"app tenant         {_count(app, '/Users')} users ({active} active), "
                f"{_count(app, '/Groups')} groups"
            )
        finally:
            loaded.close()
    if serving:
        typer.echo(f"\nThe story took {time.monotonic() - began:.1f} s. Try it yourself:")
    else:  # --once: the server is stopped when this is read, and the job's URLs are its
        typer.echo(
            f"\nThe story took {time.monotonic() - began:.1f} s. While `provisor demo` serves "
            "(without --once), try it yourself:"
        )
    typer.echo(f"  export DIRECTORY_TOKEN={dir_token} APP_TOKEN={app_token}")
    typer.echo(f"  provisor logs --job {shlex.quote(str(job_path))} --format json")
    typer.echo(f"  provisor provision --job {shlex.quote(str(job_path))} --user {shlex.quote(ceo.upn)}")


def _report(report: Any) -> None:
    if report is None:
        return
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
    typer.echo(f"cycle {report.cycle} ({report.kind.value}): {report.result}; {counts}")
