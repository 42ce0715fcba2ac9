"""Two `provisor serve` processes on one SQLite file, with an admin beside them: a seeded random
sequence of SCIM writes and reads sent to either server, and admin actions (through the CLI or the
store API, as another process would), after each of which both servers must agree with each other
and with a plain model of the tenant.

What is held, after every step:

- both servers list the same Users and Groups, in the same order, with the same representation and
  ETag (the base URL aside), the same ``totalResults`` on every page (and cursor pages may come
  from either), and what the model says; the counts ``tenant show`` prints are the model's;
- a write through one server is visible on the other at once, as its answer showed it;
- an ETag read from one server is honoured by the other (If-Match, If-None-Match, a Bulk
  operation's ``version``), a stale one is refused with 412; ``userName`` and a Group's
  ``displayName`` are unique across both;
- a version never goes back, and shows one representation, whichever server answers: also to a
  reader beside the sequence, and while one server writes a Group the other reads (``contend``);
- what the admin changes takes effect on both within the bound docs/user-guide.md gives: a revoked
  token, a deleted tenant's token and the tenant's settings (page size, allowed roles, allowed
  networks, compatibility switches, tracing) within a second (the token cache); extension schemas
  declared or removed within 2 s. Inside its bound a server may answer either way; after it, only
  the new way. No trace is kept once tracing is turned off.

About 25 s for the default 200 steps; PROVISOR_COHERENCE_STEPS=3000 runs longer, and
PROVISOR_COHERENCE_SEED replays one sequence (timing still varies).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.cli.test_cli import PROVISOR, free_port, last_line, run, wait_ready
from tests.conftest import GROUP, PATCH_OP, SCIM, USER

#: docs/user-guide.md: a revoked token is refused, a tenant's settings apply, "within a second".
TOKEN_BOUND = 1.0
#: docs/user-guide.md section 6: a server "looks for declarations and removals every 2 s".
SCHEMA_BOUND = 2.0
#: Added to each bound: the bound runs from the admin's commit, which comes a little before the
#: command returns here; this allows for the clocks of the processes, never for speed.
SLACK = 0.05

URN = "urn:ietf:params:scim:schemas:extension:Coherence:2.0:User"
EXTENSION = {"id": URN, "name": "Coherence", "attributes": [{"name": "costCode", "type": "string"}]}
USER_NAMES = ("ada", "bob", "cy", "dee", "eve", "fay", "gus", "hal")
GROUP_NAMES = ("Sales", "Ops", "R&D", "Staff", "Board")
DISPLAY_NAMES = ("Ada L.", "Bob", None)
GHOST = "0" * 32


def cased(rng: random.Random, name: str) -> str:
    return "".join(c.upper() if rng.random() < 0.3 else c for c in name)


def patch_body(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


@dataclass
class Window:
    """A setting the admin changes: ``new`` once the bound of each change has passed; before, any
    value it had within its bound may still show on a server."""

    new: Any
    #: (an earlier value, until when a server may still apply it: monotonic time)
    earlier: list[tuple[Any, float]] = field(default_factory=list)

    def change(self, new: Any, bound: float) -> None:
        """Record a change committed just now."""
        self.earlier.append((self.new, time.monotonic() + bound + SLACK))
        self.new = new

    def possible(self) -> list[Any]:
        """Every value a server may apply now."""
        now = time.monotonic()
        self.earlier = [(v, until) for v, until in self.earlier if until > now]
        return [self.new, *(v for v, _ in self.earlier)]

    def settled(self) -> bool:
        return len(self.possible()) == 1


@dataclass
class UserModel:
    name: str
    display: str | None = None
    active: bool = True
    roles: list[str] = field(default_factory=list)
    cost: str | None = None


@dataclass
class GroupModel:
    name: str
    members: set[str] = field(default_factory=set)


@contextmanager
def server_process(db: str, log: Path) -> Iterator[str]:
    """`provisor serve` on ``db`` (its log to ``log``: a pipe nobody reads could fill and stop it)."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*PROVISOR, "serve", "--db", db, "--port", str(port), "--no-access-log"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}/healthz")
            yield f"http://127.0.0.1:{port}/scim/v2"
        finally:
            proc.terminate()
            proc.wait(timeout=20)


class Versions:
    """Every representation seen, by id and version, from both threads: a version shows one
    representation, whichever server answers and whatever is written meanwhile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int], Any] = {}
        self.conflicts: list[str] = []

    def add(self, rid: str, rep: dict[str, Any], where: str) -> None:
        version = int(rep["meta"]["version"][3:-1])
        body = {k: v for k, v in rep.items() if k != "meta"}
        with self._lock:
            held = self._seen.setdefault((rid, version), body)
            if held != body:
                self.conflicts.append(f"{rid} version {version} ({where}):\n{held}\n{body}")


class Coherence:
    """The servers, the admin's store, the model and the steps."""

    def __init__(self, rng: random.Random, db: str, bases: list[str], store: Any, tmp: Path) -> None:
        self.rng = rng
        self.db = db
        self.bases = bases
        self.http = [httpx.Client(base_url=b, timeout=30, headers={"Accept": SCIM}) for b in bases]
        self.store = store
        self.tmp = tmp
        self.log: list[str] = []
        self.tenants = 0
        self.users: dict[str, UserModel] = {}
        self.groups: dict[str, GroupModel] = {}
        self.versions: dict[str, tuple[int, Any]] = {}  # id -> (version, representation sans meta)
        self.etags: dict[str, list[str]] = {}  # id -> every ETag seen, oldest first
        self.everything = Versions()
        self.revoked: list[tuple[str, float]] = []  # (token, refused by both from then on)
        self.page = Window(None)
        self.roles = Window(None)
        self.no_content = Window(True)
        self.string_booleans = Window(True)
        self.schema = Window(False)
        self.trace = Window(None)
        self.new_tenant()

    def close(self) -> None:
        for c in self.http:
            c.close()

    # ---- plumbing ----------------------------------------------------------------------------

    def note(self, text: str) -> None:
        self.log.append(text)

    def send(self, i: int, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", **kw.pop("headers", {})}
        if "json" in kw:
            headers["Content-Type"] = SCIM
        r = self.http[i].request(method, path, headers=headers, **kw)
        assert r.status_code != 500, (method, path, r.text)
        return r

    def rep(self, i: int, r: httpx.Response) -> Any:
        """The body with server ``i``'s base URL taken out (it differs by port only)."""
        return json.loads(r.text.replace(self.bases[i], "BASE"))

    def admin(self, via_cli: bool, args: list[str], api: Callable[[], Any]) -> Any:
        """An admin action through the CLI (another process) or the store API; returns the CLI's
        output or the API's result."""
        self.note(f"  admin {'cli' if via_cli else 'api'}: {' '.join(args)}")
        if via_cli:
            return run(*args, db=self.db).stdout
        return api()

    def new_tenant(self) -> None:
        from provisor.server.auth import issue_token

        self.tenants += 1
        self.tenant = f"coherent-{self.tenants}"
        if self.rng.random() < 0.5:
            self.token = last_line(run("tenant", "create", self.tenant, db=self.db))
        else:
            self.token = issue_token(self.store, self.store.create_tenant(self.tenant, {}).id)[0]
        self.tenant_id = self.store.get_tenant(self.tenant).id
        self.users.clear()
        self.groups.clear()
        # a new tenant's token is read afresh by both servers: its settings apply at once
        self.page, self.roles = Window(None), Window(None)
        self.no_content, self.string_booleans = Window(True), Window(True)
        self.trace = Window(None)

    # ---- the model ---------------------------------------------------------------------------

    def user_taken(self, name: str, but: str | None = None) -> bool:
        return any(u.name.lower() == name.lower() for k, u in self.users.items() if k != but)

    def group_taken(self, name: str, but: str | None = None) -> bool:
        return any(g.name.lower() == name.lower() for k, g in self.groups.items() if k != but)

    def groups_of(self, rid: str) -> dict[str, str]:
        direct = {g for g, m in self.groups.items() if rid in m.members}
        reached, todo = set(direct), list(direct)
        while todo:
            inner = todo.pop()
            for g, m in self.groups.items():
                if inner in m.members and g not in reached:
                    reached.add(g)
                    todo.append(g)
        return {g: "direct" if g in direct else "indirect" for g in reached}

    def shown(self, rid: str) -> str:
        if rid in self.users:
            u = self.users[rid]
            return u.display if u.display is not None else u.name
        return self.groups[rid].name

    def roles_allowed(self, roles: list[str]) -> list[bool]:
        """Whether a resource holding ``roles`` passes, under each allowed-roles value in force."""
        return [
            allowed is None or all(r.lower() in {a.lower() for a in allowed} for r in roles)
            for allowed in self.roles.possible()
        ]

    def check_user(self, uid: str, rep: dict[str, Any]) -> None:
        u = self.users[uid]
        assert rep["userName"] == u.name, rep
        assert rep.get("displayName") == u.display, rep
        assert rep.get("active") == u.active, rep
        assert [r["value"] for r in rep.get("roles", [])] == u.roles, rep
        assert rep.get(URN, {}).get("costCode") == u.cost, rep
        assert (URN in rep["schemas"]) == (u.cost is not None), rep
        groups = {g["value"]: g["type"] for g in rep.get("groups", [])}
        assert groups == self.groups_of(uid), (rep, self.groups)
        for g in rep.get("groups", []):
            assert g["display"] == self.groups[g["value"]].name, rep

    def check_group(self, gid: str, rep: dict[str, Any]) -> None:
        g = self.groups[gid]
        assert rep["displayName"] == g.name, rep
        members = {m["value"]: (m["type"], m.get("display")) for m in rep.get("members", [])}
        expected = {m: ("User" if m in self.users else "Group", self.shown(m)) for m in g.members}
        assert members == expected, (rep, g)

    def seen(self, rid: str, rep: dict[str, Any], etag: str | None = None) -> None:
        """A representation read from either server: its version never goes back, and the same
        version always shows the same representation."""
        tag = rep["meta"]["version"]
        if etag is not None:
            assert etag == tag, (etag, rep)
        version = int(tag[3:-1])
        body = {k: v for k, v in rep.items() if k != "meta"}
        held = self.versions.get(rid)
        if held is not None:
            assert version >= held[0], f"{rid}: version {version} after {held[0]}"
            if version == held[0]:
                assert body == held[1], f"{rid}: the representation changed under {tag}: {held[1]} -> {body}"
        self.versions[rid] = (version, body)
        self.everything.add(rid, rep, "the sequence")
        tags = self.etags.setdefault(rid, [])
        if not tags or tags[-1] != tag:
            tags.append(tag)

    # ---- what both servers must agree on -----------------------------------------------------

    def listing(self, i: int, kind: str, count: int) -> list[dict[str, Any]]:
        """Every resource of ``kind`` by startIndex pages of ``count`` (the tenant's page size may
        make them shorter), each page's totalResults the model's."""
        model = self.users if kind == "Users" else self.groups
        sizes = {1000 if p is None else p for p in self.page.possible()}
        out: list[dict[str, Any]] = []
        start = 1
        while True:
            r = self.send(i, "GET", f"/{kind}", params={"startIndex": start, "count": count})
            assert r.status_code == 200, r.text
            body = self.rep(i, r)
            assert body["totalResults"] == len(model), (i, kind, body["totalResults"], len(model))
            left = len(model) - len(out)
            assert body["itemsPerPage"] == len(body["Resources"]), body
            assert body["itemsPerPage"] in {min(count, size, left) for size in sizes}, (i, body, sizes)
            out.extend(body["Resources"])
            if not body["Resources"] or len(out) >= body["totalResults"]:
                break
            start += body["itemsPerPage"]
        return out

    def agree(self) -> None:
        count = self.rng.randint(1, 6)
        for kind, model, check in (
            ("Users", self.users, self.check_user),
            ("Groups", self.groups, self.check_group),
        ):
            a, b = self.listing(0, kind, count), self.listing(1, kind, count)
            assert a == b, f"the servers list different {kind}:\n{a}\n{b}"
            assert {x["id"] for x in a} == set(model)
            if self.rng.random() < 0.3:
                assert self.cursor_walk(kind, count) == sorted(model)  # cursors page in id order
            for x in a:
                check(x["id"], x)
                self.seen(x["id"], x)
        # one resource by id from both: the listing's representation, and its ETag
        everything = [("Users", k) for k in self.users] + [("Groups", k) for k in self.groups]
        if everything:
            kind, rid = self.rng.choice(everything)
            got = [self.send(i, "GET", f"/{kind}/{rid}") for i in (0, 1)]
            assert [g.status_code for g in got] == [200, 200]
            reps = [self.rep(i, g) for i, g in enumerate(got)]
            assert reps[0] == reps[1] and got[0].headers["ETag"] == got[1].headers["ETag"]
            self.seen(rid, reps[0], got[0].headers["ETag"])
            # an ETag from one server makes the other answer 304
            i = self.rng.randint(0, 1)
            r = self.send(i, "GET", f"/{kind}/{rid}", headers={"If-None-Match": got[1 - i].headers["ETag"]})
            assert r.status_code == 304, r.text
            r = self.send(i, "GET", f"/{kind}/{rid}", headers={"If-Match": got[1 - i].headers["ETag"]})
            assert r.status_code == 200, r.text
        # the counts `tenant show` prints, kept by whichever server wrote
        held = self.store.count_resources(self.tenant_id)
        assert (held.get("User", 0), held.get("Group", 0)) == (len(self.users), len(self.groups)), held
        self.check_settings()

    def cursor_walk(self, kind: str, count: int) -> list[str]:
        """The ids of ``kind`` by cursor (RFC 9865), each page from the other server than the last."""
        ids: list[str] = []
        cursor, i = "", self.rng.randint(0, 1)
        while True:
            r = self.send(i, "GET", f"/{kind}", params={"cursor": cursor, "count": count})
            assert r.status_code == 200, r.text
            body = r.json()
            ids.extend(x["id"] for x in body["Resources"])
            if "nextCursor" not in body:
                return ids
            cursor, i = body["nextCursor"], 1 - i

    def check_settings(self) -> None:
        """Revoked tokens refused by both once their bound has passed; the page size advertised."""
        now = time.monotonic()
        for token, until in list(self.revoked):
            codes = {
                self.send(i, "GET", "/Users", token=token, params={"count": 0}).status_code for i in (0, 1)
            }
            assert codes <= ({401} if now >= until else {200, 401}), (codes, until - now)
            if now >= until:  # refused by both after its bound: for good (a token is never restored)
                self.revoked.remove((token, until))
        i = self.rng.randint(0, 1)
        spc = self.send(i, "GET", "/ServiceProviderConfig").json()
        sizes = [1000 if p is None else p for p in self.page.possible()]
        assert spc["filter"]["maxResults"] in sizes, (spc["filter"], sizes)
        # the extension schema in discovery, and in a filter
        codes = {200 if declared else 404 for declared in self.schema.possible()}
        for j in (0, 1):
            r = self.send(j, "GET", f"/Schemas/{URN}")
            assert r.status_code in codes, (j, r.status_code, codes)
        # `tenant set --no-trace` stops tracing and deletes the traces: none is kept after it, even
        # of the requests a server answered while it still had tracing on; on, at most N are kept
        kept = len(self.store.traces(self.tenant_id))
        if self.trace.new is None:
            assert kept == 0, f"{kept} traces kept after tracing was turned off"
        else:
            assert kept <= max(k for k in self.trace.possible() if k is not None), kept

    # ---- conditions --------------------------------------------------------------------------

    def condition(self, i: int, kind: str, rid: str) -> tuple[dict[str, str], bool]:
        """If-Match for a write to server ``i``: none, the current ETag read from the other server,
        or an older one (then True: the write must be refused with 412)."""
        roll = self.rng.random()
        if roll < 0.5:
            return {}, False
        tags = self.etags.get(rid, [])
        if roll < 0.8 or len(tags) < 2:
            r = self.send(1 - i, "GET", f"/{kind}/{rid}")
            if r.status_code != 200:
                return {}, False
            self.seen(rid, self.rep(1 - i, r), r.headers["ETag"])
            self.note(f"  If-Match {r.headers['ETag']} from server {1 - i}")
            return {"If-Match": r.headers["ETag"]}, False
        self.note(f"  If-Match {tags[-2]} (stale)")
        return {"If-Match": tags[-2]}, True

    def visible_on_the_other(self, i: int, kind: str, rid: str, r: httpx.Response) -> None:
        """The resource a write on server ``i`` answered is what the other server shows at once."""
        other = self.send(1 - i, "GET", f"/{kind}/{rid}")
        assert other.status_code == 200, other.text
        assert other.headers["ETag"] == r.headers["ETag"], (r.headers, other.headers)
        if r.status_code != 204:
            assert self.rep(1 - i, other) == self.rep(i, r), (
                "a write's answer is not what the other server shows"
            )

    # ---- SCIM steps --------------------------------------------------------------------------

    def pick(self, model: dict[str, Any]) -> str:
        """An id of ``model``, or now and then one that is gone."""
        if not model or self.rng.random() < 0.08:
            return GHOST
        return self.rng.choice(sorted(model))

    def cost_code(self) -> tuple[bool, str | None]:
        """Whether to send a costCode now (only while every server surely knows the extension)."""
        if self.schema.settled() and self.schema.new and self.rng.random() < 0.5:
            return True, self.rng.choice(("CC-1", "CC-2"))
        return False, None

    def create_user(self, i: int) -> None:
        name = cased(self.rng, self.rng.choice(USER_NAMES))
        body: dict[str, Any] = {"schemas": [USER], "userName": name, "active": True}
        display = self.rng.choice(DISPLAY_NAMES)
        if display is not None:
            body["displayName"] = display
        send_cost, cost = self.cost_code()
        if send_cost:
            body[URN] = {"costCode": cost}
        r = self.send(i, "POST", "/Users", json=body)
        if self.user_taken(name):
            assert r.status_code == 409, r.text
            return
        assert r.status_code == 201, r.text
        uid = r.json()["id"]
        self.users[uid] = UserModel(name, display, True, [], cost)
        self.visible_on_the_other(i, "Users", uid, r)

    def create_user_with_role(self, i: int) -> None:
        name = cased(self.rng, self.rng.choice(USER_NAMES))
        role = self.rng.choice(("User", "Admin"))
        body = {"schemas": [USER], "userName": name, "roles": [{"value": role}]}
        r = self.send(i, "POST", "/Users", json=body)
        ok = self.roles_allowed([role])
        codes = {400 if not allowed else (409 if self.user_taken(name) else 201) for allowed in ok}
        assert r.status_code in codes, (r.status_code, codes, r.text)
        if r.status_code == 201:
            uid = r.json()["id"]
            self.users[uid] = UserModel(name, None, True, [role])
            self.visible_on_the_other(i, "Users", uid, r)

    def patch_user(self, i: int) -> None:
        uid = self.pick(self.users)
        ops: list[dict[str, Any]] = []
        new: dict[str, Any] = {}
        for _ in range(self.rng.randint(1, 2)):
            what = self.rng.choice(("display", "active", "userName", "cost"))
            if what == "display":
                new["display"] = self.rng.choice(DISPLAY_NAMES)
                if new["display"] is None:
                    ops.append({"op": "remove", "path": "displayName"})
                else:
                    ops.append({"op": "replace", "path": "displayName", "value": new["display"]})
            elif what == "active":
                new["active"] = self.rng.random() < 0.5
                ops.append({"op": "replace", "path": "active", "value": new["active"]})
            elif what == "userName":
                new["name"] = cased(self.rng, self.rng.choice(USER_NAMES))
                ops.append({"op": "replace", "path": "userName", "value": new["name"]})
            else:
                send_cost, cost = self.cost_code()
                if send_cost:
                    new["cost"] = cost
                    ops.append({"op": "replace", "path": f"{URN}:costCode", "value": cost})
        if not ops:
            return
        headers, stale = self.condition(i, "Users", uid) if uid in self.users else ({}, False)
        r = self.send(i, "PATCH", f"/Users/{uid}", json=patch_body(*ops), headers=headers)
        if uid not in self.users:
            assert r.status_code == 404, r.text
            return
        if stale:
            assert r.status_code == 412, r.text
            return
        u = self.users[uid]
        clash = "name" in new and self.user_taken(new["name"], but=uid)
        # the PATCH gives no role: the tenant's allowed roles judge none (those the user holds pass)
        codes = {409 if clash else 200}
        assert r.status_code in codes, (r.status_code, codes, r.text)
        if r.status_code != 200:
            return
        u.name = new.get("name", u.name)
        u.display = new.get("display", u.display)
        u.active = new.get("active", u.active)
        u.cost = new.get("cost", u.cost)
        self.visible_on_the_other(i, "Users", uid, r)

    def patch_active_as_text(self, i: int) -> None:
        """``"active": "False"``: accepted with ``string_booleans`` on, 400 with it off."""
        if not self.users:
            return
        uid = self.rng.choice(sorted(self.users))
        value = self.rng.random() < 0.5
        op = {"op": "replace", "path": "active", "value": str(value)}
        r = self.send(i, "PATCH", f"/Users/{uid}", json=patch_body(op))
        u = self.users[uid]
        codes = {200 if on else 400 for on in self.string_booleans.possible()}  # roles: see patch_user
        assert r.status_code in codes, (r.status_code, codes, r.text)
        if r.status_code == 200:
            u.active = value
            self.visible_on_the_other(i, "Users", uid, r)

    def put_user(self, i: int) -> None:
        uid = self.pick(self.users)
        name = cased(self.rng, self.rng.choice(USER_NAMES))
        display = self.rng.choice(DISPLAY_NAMES)
        active = self.rng.random() < 0.7
        body: dict[str, Any] = {"schemas": [USER], "userName": name, "active": active}
        if display is not None:
            body["displayName"] = display
        send_cost, cost = self.cost_code()
        if send_cost:
            body[URN] = {"costCode": cost}
        headers, stale = self.condition(i, "Users", uid) if uid in self.users else ({}, False)
        r = self.send(i, "PUT", f"/Users/{uid}", json=body, headers=headers)
        if uid not in self.users:
            assert r.status_code == 404, r.text
            return
        if stale:
            assert r.status_code == 412, r.text
            return
        if self.user_taken(name, but=uid):
            assert r.status_code == 409, r.text
            return
        assert r.status_code == 200, r.text
        self.users[uid] = UserModel(name, display, active, [], cost)
        self.visible_on_the_other(i, "Users", uid, r)

    def delete(self, i: int, kind: str) -> None:
        model: dict[str, Any] = self.users if kind == "Users" else self.groups
        rid = self.pick(model)
        headers, stale = self.condition(i, kind, rid) if rid in model else ({}, False)
        r = self.send(i, "DELETE", f"/{kind}/{rid}", headers=headers)
        if rid not in model:
            assert r.status_code == 404, r.text
            return
        if stale:
            assert r.status_code == 412, r.text
            return
        assert r.status_code == 204, r.text
        del model[rid]
        for g in self.groups.values():
            g.members.discard(rid)
        for j in (0, 1):  # gone from both at once
            assert self.send(j, "GET", f"/{kind}/{rid}").status_code == 404

    def some_members(self, but: str | None = None) -> list[str]:
        pool = sorted(self.users) + [g for g in sorted(self.groups) if g != but] + [GHOST]
        return self.rng.sample(pool, self.rng.randint(0, min(3, len(pool))))

    def create_group(self, i: int) -> None:
        name = cased(self.rng, self.rng.choice(GROUP_NAMES))
        members = self.some_members()
        body = {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members]}
        r = self.send(i, "POST", "/Groups", json=body)
        if self.group_taken(name):
            assert r.status_code == 409, r.text
            return
        assert r.status_code == 201, r.text
        gid = r.json()["id"]
        self.groups[gid] = GroupModel(name, {m for m in members if m != GHOST})
        self.visible_on_the_other(i, "Groups", gid, r)

    def patch_group(self, i: int) -> None:
        gid = self.pick(self.groups)
        ops: list[dict[str, Any]] = []
        add = [m for m in self.some_members(but=gid) if m != gid]
        remove = self.groups[gid].members if gid in self.groups else set()
        gone = self.rng.sample(sorted(remove), min(len(remove), self.rng.randint(0, 2)))
        name = None
        if add:
            ops.append({"op": "add", "path": "members", "value": [{"value": m} for m in add]})
        for m in gone:
            ops.append({"op": "remove", "path": f'members[value eq "{m}"]'})
        if self.rng.random() < 0.3 or not ops:
            name = cased(self.rng, self.rng.choice(GROUP_NAMES))
            ops.append({"op": "replace", "path": "displayName", "value": name})
        headers, stale = self.condition(i, "Groups", gid) if gid in self.groups else ({}, False)
        r = self.send(i, "PATCH", f"/Groups/{gid}", json=patch_body(*ops), headers=headers)
        if gid not in self.groups:
            assert r.status_code == 404, r.text
            return
        if stale:
            assert r.status_code == 412, r.text
            return
        if name is not None and self.group_taken(name, but=gid):
            assert r.status_code == 409, r.text
            return
        codes = {204 if quiet else 200 for quiet in self.no_content.possible()}
        assert r.status_code in codes, (r.status_code, codes, r.text)
        g = self.groups[gid]
        g.members = (g.members | {m for m in add if m in self.users or m in self.groups}) - set(gone)
        g.name = name if name is not None else g.name
        self.visible_on_the_other(i, "Groups", gid, r)

    def put_group(self, i: int) -> None:
        gid = self.pick(self.groups)
        name = cased(self.rng, self.rng.choice(GROUP_NAMES))
        members = [m for m in self.some_members(but=gid) if m != gid]
        body = {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members]}
        headers, stale = self.condition(i, "Groups", gid) if gid in self.groups else ({}, False)
        r = self.send(i, "PUT", f"/Groups/{gid}", json=body, headers=headers)
        if gid not in self.groups:
            assert r.status_code == 404, r.text
            return
        if stale:
            assert r.status_code == 412, r.text
            return
        if self.group_taken(name, but=gid):
            assert r.status_code == 409, r.text
            return
        assert r.status_code == 200, r.text
        self.groups[gid] = GroupModel(name, {m for m in members if m != GHOST})
        self.visible_on_the_other(i, "Groups", gid, r)

    def find_by_user_name(self, i: int) -> None:
        name = cased(self.rng, self.rng.choice(USER_NAMES))
        found = [self.send(j, "GET", "/Users", params={"filter": f'userName eq "{name}"'}) for j in (0, 1)]
        reps = [self.rep(j, r) for j, r in enumerate(found)]
        assert reps[0] == reps[1], reps
        assert reps[0]["totalResults"] == int(self.user_taken(name))
        if self.schema.settled() and self.schema.new:
            code = self.rng.choice(("CC-1", "CC-2"))
            query = {"filter": f'{URN}:costCode eq "{code}"', "count": 1000}
            found = [self.send(j, "GET", "/Users", params=query) for j in (0, 1)]
            holders = {k for k, u in self.users.items() if u.cost == code}
            for r in found:
                assert r.status_code == 200, r.text
                assert r.json()["totalResults"] == len(holders)  # (the page: the tenant's page size)
                assert {x["id"] for x in r.json()["Resources"]} <= holders

    def search(self, i: int) -> None:
        """POST /.search and /Users/.search: the same answer from both."""
        name = cased(self.rng, self.rng.choice(USER_NAMES))
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": f'userName sw "{name[0]}" or displayName eq "{name}"',
            "count": 1000,
        }
        path = self.rng.choice(("/.search", "/Users/.search"))
        found = [self.send(j, "POST", path, json=body) for j in (0, 1)]
        assert [r.status_code for r in found] == [200, 200], found[0].text
        reps = [self.rep(j, r) for j, r in enumerate(found)]
        assert reps[0] == reps[1], reps
        expected = {
            k
            for k, u in self.users.items()
            if u.name.lower().startswith(name[0].lower()) or (u.display or "").lower() == name.lower()
        } | {k for k, g in self.groups.items() if g.name.lower() == name.lower()}
        if path != "/.search":
            expected &= set(self.users)
        assert reps[0]["totalResults"] == len(expected)  # the page: at most the tenant's page size
        assert {x["id"] for x in reps[0]["Resources"]} <= expected

    def bulk(self, i: int) -> None:
        """A Bulk request of a few operations, some with a ``version`` (the If-Match of an
        operation) read from the other server: each result as the model says, in order."""
        ops: list[dict[str, Any]] = []
        expected: list[str] = []
        created: list[tuple[int, UserModel]] = []
        changes: dict[int, tuple[str, Callable[[], None]]] = {}  # op -> (its success, what it does)
        taken = {u.name.lower() for u in self.users.values()}
        alive = set(self.users)
        touched: set[str] = set()
        for n in range(self.rng.randint(1, 4)):
            what = self.rng.choice(("POST", "PATCH", "DELETE"))
            if what == "POST":
                name = cased(self.rng, self.rng.choice(USER_NAMES))
                ops.append(
                    {
                        "method": "POST",
                        "path": "/Users",
                        "bulkId": f"b{n}",
                        "data": {"schemas": [USER], "userName": name},
                    }
                )
                expected.append("409" if name.lower() in taken else "201")
                if name.lower() not in taken:
                    taken.add(name.lower())
                    created.append((n, UserModel(name)))
                continue
            uid = self.pick(self.users)
            op: dict[str, Any] = {"method": what, "path": f"/Users/{uid}"}
            stale = False
            # (a version read before the Bulk: of an id no earlier operation of it touched)
            if uid in alive and uid not in touched and self.rng.random() < 0.5:
                headers, stale = self.condition(i, "Users", uid)
                if headers:
                    op["version"] = headers["If-Match"]
            touched.add(uid)
            if what == "PATCH":
                display = self.rng.choice(("Bulk", "Bulk 2"))
                op["data"] = patch_body({"op": "replace", "path": "displayName", "value": display})
                if uid not in alive:
                    expected.append("404")
                elif stale:
                    expected.append("412")
                else:
                    u = self.users[uid]
                    expected.append("200")  # gives no role: the allowed roles judge none
                    changes[n] = ("200", lambda u=u, display=display: setattr(u, "display", display))
            else:
                if uid not in alive:
                    expected.append("404")
                elif stale:
                    expected.append("412")
                else:
                    expected.append("204")
                    alive.discard(uid)
                    taken.discard(self.users[uid].name.lower())  # a later POST may take it
                    changes[n] = ("204", lambda uid=uid: self.forget(uid))
            ops.append(op)
        r = self.send(
            i,
            "POST",
            "/Bulk",
            json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops},
        )
        assert r.status_code == 200, r.text
        results = r.json()["Operations"]
        statuses = [x["status"] for x in results]
        assert len(statuses) == len(expected) and all(
            got in want.split("|") for got, want in zip(statuses, expected, strict=True)
        ), (statuses, expected, ops)
        for n, (success, change) in changes.items():
            if statuses[n] == success:
                change()
        for n, user in created:
            self.users[results[n]["location"].rsplit("/", 1)[1]] = user

    def forget(self, rid: str) -> None:
        self.users.pop(rid, None)
        self.groups.pop(rid, None)
        for g in self.groups.values():
            g.members.discard(rid)

    # ---- admin steps -------------------------------------------------------------------------

    def rotate_token(self, via_cli: bool) -> None:
        """A new token works on both at once; the old one, revoked, is refused within the bound."""
        from provisor.server.auth import issue_token

        tenant = self.store.get_tenant(self.tenant)
        old = self.token
        old_id = next(t.id for t in self.store.list_tokens(tenant.id) if t.revoked is None)
        if via_cli:
            out = run("token", "create", self.tenant, db=self.db).stdout
            self.token = out.strip().splitlines()[-1]
        else:
            self.token = issue_token(self.store, tenant.id)[0]
        for i in (0, 1):
            assert self.send(i, "GET", "/Users", params={"count": 0}).status_code == 200
        self.admin(via_cli, ["token", "revoke", old_id], lambda: self.store.revoke_token(old_id))
        self.revoked.append((old, time.monotonic() + TOKEN_BOUND + SLACK))

    def set_setting(self, via_cli: bool) -> None:
        from provisor.scim.compat import QUIRK_NAMES

        what = self.rng.choice(("page", "roles", "no_content", "string_booleans", "trace"))
        if what == "trace":
            keep = None if self.trace.new is not None else self.rng.choice((1, 3))

            def api() -> None:  # as the CLI does it: the setting, then the traces kept
                tenant = self.store.update_settings(self.tenant, {"trace": keep})
                if keep is None:
                    self.store.delete_traces(tenant.id)

            args = ["--no-trace"] if keep is None else ["--trace", str(keep)]
            self.admin(via_cli, ["tenant", "set", self.tenant, *args], api)
            self.trace.change(keep, TOKEN_BOUND)
        elif what == "page":
            size = self.rng.choice((None, 1, 2, 3, 5))
            via_cli = via_cli and size is not None  # the CLI cannot unset it
            self.admin(
                via_cli,
                ["tenant", "set", self.tenant, "--max-page-size", str(size)],
                lambda: self.store.update_settings(self.tenant, {"max_page_size": size}),
            )
            self.page.change(size, TOKEN_BOUND)
        elif what == "roles":
            roles = None if self.roles.new is not None else ["User"]
            via_cli = via_cli and roles is not None
            self.admin(
                via_cli,
                ["tenant", "set", self.tenant, "--allowed-role", "User"],
                lambda: self.store.update_settings(self.tenant, {"allowed_roles": roles}),
            )
            self.roles.change(roles, TOKEN_BOUND)
        else:
            name = "group_patch_no_content" if what == "no_content" else "string_booleans"
            assert name in QUIRK_NAMES
            window = self.no_content if what == "no_content" else self.string_booleans
            on = not window.new
            current = dict(self.store.get_tenant(self.tenant).settings.get("compat") or {})
            self.admin(
                via_cli,
                ["tenant", "set", self.tenant, "--compat", f"{name}={'on' if on else 'off'}"],
                lambda: self.store.update_settings(self.tenant, {"compat": {**current, name: on}}),
            )
            window.change(on, TOKEN_BOUND)

    def fence(self, via_cli: bool) -> None:
        """Allowed networks that leave loopback out: both servers refuse the tenant's requests
        (403) once the bound has passed; with any network again, both serve them."""
        self.admin(
            via_cli,
            ["tenant", "set", self.tenant, "--allow-network", "192.0.2.0/24"],
            lambda: self.store.update_settings(self.tenant, {"allowed_networks": ["192.0.2.0/24"]}),
        )
        time.sleep(TOKEN_BOUND + SLACK)
        for i in (0, 1):
            r = self.send(i, "GET", "/Users", params={"count": 0})
            assert r.status_code == 403, r.text
        self.admin(
            via_cli,
            ["tenant", "set", self.tenant, "--any-network"],
            lambda: self.store.update_settings(self.tenant, {"allowed_networks": None}),
        )
        time.sleep(TOKEN_BOUND + SLACK)
        for i in (0, 1):
            assert self.send(i, "GET", "/Users", params={"count": 0}).status_code == 200

    def toggle_schema(self, via_cli: bool) -> None:
        from provisor.scim.schema.extensions import parse_extension

        if not self.schema.settled():
            return  # one change at a time: the costCode held by the model must be sure
        if not self.schema.new:
            path = self.tmp / "extension.json"
            path.write_text(json.dumps(EXTENSION))
            self.admin(
                via_cli,
                ["schema", "add", str(path)],
                lambda: self.store.add_schema_extension(
                    parse_extension(EXTENSION, self.store.registry, "User")
                ),
            )
            self.schema.change(True, SCHEMA_BOUND)
            return
        holders = [k for k, u in self.users.items() if u.cost is not None]
        purge = self.rng.random() < 0.7
        if holders and not purge:  # refused, and nothing changes
            if via_cli:
                p = run("schema", "remove", URN, db=self.db, check=False)
                assert p.returncode != 0 and "--purge" in p.stderr, p.stderr
            else:
                from provisor.store.base import SchemaExtensionInUse

                with pytest.raises(SchemaExtensionInUse):
                    self.store.remove_schema_extension(URN)
            self.note("  schema remove refused: values held")
            return
        self.admin(
            via_cli,
            ["schema", "remove", URN, *(["--purge"] if purge else [])],
            lambda: self.store.remove_schema_extension(URN, purge=purge),
        )
        for u in self.users.values():
            u.cost = None
        self.schema.change(False, SCHEMA_BOUND)

    def delete_tenant(self, via_cli: bool) -> None:
        old = self.token
        self.admin(
            via_cli,
            ["tenant", "delete", self.tenant, "--yes"],
            lambda: self.store.delete_tenant(self.tenant),
        )
        self.revoked.append((old, time.monotonic() + TOKEN_BOUND + SLACK))
        gone = self.tenant_id
        # a server may still honour the old token for a second: a write then stores nothing
        i = self.rng.randint(0, 1)
        r = self.send(i, "POST", "/Users", token=old, json={"schemas": [USER], "userName": "late"})
        self.note(f"  write after the deletion: {r.status_code} {r.text[:200]}")
        assert r.status_code in (401, 404, 400), r.text
        with self.store.engine.connect() as conn:
            left = conn.exec_driver_sql(
                "SELECT COUNT(*) FROM resources WHERE tenant_id = ?", (gone,)
            ).scalar()
        assert left == 0, left
        self.new_tenant()

    def contend(self, i: int) -> None:
        """Writes to one Group through the other server while server ``i`` reads it as Entra and
        Okta find it (``displayName eq``, members and all): every answer shows a state the Group
        was in, its members those of its version. A User goes in and out of it, and ends as it was."""
        outside = [u for u in sorted(self.users) if not any(u in g.members for g in self.groups.values())]
        if not self.groups or not outside:
            return
        gid = self.rng.choice(sorted(self.groups))
        uid = self.rng.choice(outside)
        name = self.groups[gid].name
        statuses: list[int] = []

        def toggle() -> None:
            with httpx.Client(base_url=self.bases[1 - i], timeout=30) as c:
                headers = {"Authorization": f"Bearer {self.token}", "Content-Type": SCIM}
                for op in [
                    {"op": "add", "path": "members", "value": [{"value": uid}]},
                    {"op": "remove", "path": f'members[value eq "{uid}"]'},
                ] * 8:
                    statuses.append(
                        c.patch(f"/Groups/{gid}", json=patch_body(op), headers=headers).status_code
                    )

        writer = threading.Thread(target=toggle)
        writer.start()
        try:
            while writer.is_alive():
                r = self.send(i, "GET", "/Groups", params={"filter": f'displayName eq "{name}"'})
                assert r.status_code == 200, r.text
                for rep in self.rep(i, r)["Resources"]:
                    self.everything.add(rep["id"], rep, f"contend: displayName eq on server {i}")
        finally:
            writer.join(timeout=60)
        assert set(statuses) <= {200, 204}, statuses

    def read_along(self, stop: threading.Event, rng: random.Random) -> None:
        """Beside the sequence, until ``stop``: Entra's and Okta's match lookups and reads by id on
        either server, each representation held to :class:`Versions`. A read that takes several
        statements (a Group's members, the groups above nested groups) must show one state."""
        found: list[tuple[str, str]] = []
        clients = [httpx.Client(base_url=b, timeout=30, headers={"Accept": SCIM}) for b in self.bases]
        try:
            while not stop.is_set():
                i = rng.randint(0, 1)
                roll = rng.random()
                if roll < 0.4:
                    name = rng.choice(GROUP_NAMES)
                    path, params = "/Groups", {"filter": f'displayName eq "{name}"'}
                elif roll < 0.8 or not found:
                    name = rng.choice(USER_NAMES)
                    path, params = "/Users", {"filter": f'userName eq "{name}"'}
                else:
                    kind, rid = rng.choice(found)
                    path, params = f"/{kind}/{rid}", {}
                r = clients[i].get(path, params=params, headers={"Authorization": f"Bearer {self.token}"})
                if r.status_code == 500:
                    self.everything.conflicts.append(f"500 on {path}: {r.text}")
                if r.status_code != 200:  # a token revoked meanwhile, a resource deleted
                    continue
                body = json.loads(r.text.replace(self.bases[i], "BASE"))
                for rep in body.get("Resources", [body]):
                    self.everything.add(rep["id"], rep, f"read along: {path} {params} on server {i}")
                    found.append((path.split("/")[1], rep["id"]))
                del found[:-50]
        finally:
            for c in clients:
                c.close()

    # ---- the run -----------------------------------------------------------------------------

    def step(self) -> None:
        i = self.rng.randint(0, 1)
        cli = self.rng.random() < 0.25  # an admin action through the CLI, else the store API
        steps: dict[str, tuple[float, Callable[[], None]]] = {
            "create_user": (8, lambda: self.create_user(i)),
            "create_user_with_role": (2, lambda: self.create_user_with_role(i)),
            "patch_user": (8, lambda: self.patch_user(i)),
            "patch_active_as_text": (2, lambda: self.patch_active_as_text(i)),
            "put_user": (4, lambda: self.put_user(i)),
            "delete_user": (4, lambda: self.delete(i, "Users")),
            "create_group": (5, lambda: self.create_group(i)),
            "patch_group": (7, lambda: self.patch_group(i)),
            "put_group": (3, lambda: self.put_group(i)),
            "delete_group": (3, lambda: self.delete(i, "Groups")),
            "find_by_user_name": (3, lambda: self.find_by_user_name(i)),
            "search": (2, lambda: self.search(i)),
            "bulk": (3, lambda: self.bulk(i)),
            "contend": (1, lambda: self.contend(i)),
            "rotate_token": (1.2, lambda: self.rotate_token(cli)),
            "set_setting": (2.5, lambda: self.set_setting(cli)),
            "toggle_schema": (1.2, lambda: self.toggle_schema(cli)),
            "delete_tenant": (0.3, lambda: self.delete_tenant(cli)),
            "fence": (0.1, lambda: self.fence(cli)),
        }
        name = self.rng.choices(list(steps), [w for w, _ in steps.values()])[0]
        self.note(f"{name} on server {i}")
        steps[name][1]()
        self.agree()
        assert not self.everything.conflicts, "a version showed two representations:\n" + "\n".join(
            self.everything.conflicts[:3]
        )


def test_two_servers_on_one_database_agree_with_each_other_and_the_model(tmp_path: Path) -> None:
    from provisor.store.sql import SqlStore

    seed = int(os.environ.get("PROVISOR_COHERENCE_SEED", str(random.randrange(1 << 32))))
    steps = int(os.environ.get("PROVISOR_COHERENCE_STEPS", "200"))
    db = f"sqlite:///{tmp_path / 'provisor.db'}"
    store = SqlStore(db)  # the admin's store: migrates the file before the servers open it
    try:
        with (
            server_process(db, tmp_path / "a.log") as a,
            server_process(db, tmp_path / "b.log") as b,
        ):
            model = Coherence(random.Random(seed), db, [a, b], store, tmp_path)
            stop = threading.Event()
            reader = threading.Thread(target=model.read_along, args=(stop, random.Random(seed + 1)))
            reader.start()
            try:
                for _ in range(steps):
                    model.step()
            except AssertionError as exc:
                tail = "\n".join(model.log[-25:])
                raise AssertionError(f"seed {seed}; the last steps:\n{tail}\n{exc}") from exc
            finally:
                stop.set()
                reader.join(timeout=60)
                model.close()
    finally:
        store.close()
