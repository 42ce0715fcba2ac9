"""The SCIM app's own cost per request, without HTTP: the ASGI app called in process.

    python bench/inprocess.py --users 100000 --workload get_filter --rounds 5

1. Builds a fresh SQLite store in a temporary folder with --users Entra-shaped Users (bench/run.py's
   ``user_body``) in one tenant, straight through the store (no HTTP), and every user in one of
   --groups groups (kept at --save when given); or opens --db, a store kept by --save or by
   ``bench/run.py --keep`` (its tenant gets a new token; ``post`` adds users to it).
2. Calls the app (``provisor.server.create_app``) with ASGI scopes, one request at a time, or for
   writes 16 at a time (one group commit, as 16 connections give): --requests per round, --rounds
   rounds. No socket, no uvicorn: what is left is what Provisor's own code and SQLite cost.
3. Prints microseconds per request: the best round and every round. The best is the figure to
   compare: this machine's noise only ever adds time.

Workloads: ``get_filter`` (``userName eq``, a random user), ``get_id`` (a random user by id),
``post`` (create a User), ``patch_user`` (replace a random user's ``displayName``, 16 at a time),
``page`` (the next page of 100 full Users, in order, as an Okta import
reads them), ``count`` (``count=0``: totalResults alone), ``member_add`` (Entra's PATCH adding one
member to the largest group, 16 at a time; each request adds the next user not in it, so a
store serves as many requests as it has such users: build it with --ungrouped, e.g.
``--users 110000 --groups 1 --ungrouped 10000`` for a group of 100,000 and 10,000 to add, and
run it on a copy of a saved store, as it adds them for good).

To compare with another commit, run the same command with that commit's sources first on the
path; each run builds its own store, so each version migrates and writes in its own format:

    git worktree add /tmp/base <commit>
    PYTHONPATH=/tmp/base/src python bench/inprocess.py --workload post
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from run import user_body

WORKLOADS = ("get_filter", "get_id", "post", "patch_user", "page", "count", "member_add")
#: the workloads that write, sent 16 at a time (one group commit, as 16 connections give)
WRITES = ("post", "patch_user", "member_add")


def build_store(url: str, users: int, groups: int, ungrouped: int = 0) -> None:
    """``users`` Users and ``groups`` groups of one tenant, written through the store (batched);
    the last ``ungrouped`` users are in no group."""
    from provisor.scim.compat import CompatSettings
    from provisor.scim.resources import parse_resource
    from provisor.scim.schema.model import default_registry
    from provisor.store.base import Member
    from provisor.store.sql import SqlStore

    rt = default_registry().resource_type("User")
    assert rt is not None
    compat = CompatSettings.default()
    store = SqlStore(url)
    try:
        tenant = store.create_tenant("bench").id
        ids: list[str] = []
        for start in range(0, users, 1000):
            with store.batch():
                for i in range(start, min(users, start + 1000)):
                    data = parse_resource(rt, user_body(f"ip{i:07d}", i), compat)
                    ids.append(store.create(tenant, "User", data).id)
        grouped = ids[: len(ids) - ungrouped]
        for g in range(groups):
            members = [Member(value=id, type="User") for id in grouped[g::groups]]
            store.create(tenant, "Group", {"displayName": f"Group {g}"}, members)
    finally:
        store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", choices=WORKLOADS, default="get_filter")
    ap.add_argument("--users", type=int, default=100_000, help="users of a fresh store (default 100,000)")
    ap.add_argument("--groups", type=int, default=100, help="groups of a fresh store (default 100)")
    ap.add_argument(
        "--ungrouped", type=int, default=0, help="of --users, how many are in no group (for member_add)"
    )
    ap.add_argument("--db", help="an existing Provisor SQLite file instead of a fresh store")
    ap.add_argument("--save", help="build the fresh store at this path and keep it (for later --db runs)")
    ap.add_argument(
        "--synchronous",
        choices=["normal", "full"],
        default="normal",
        help="how durable a commit is (the database URL's synchronous; default normal, the store's)",
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=10_000, help="requests per round (default 10,000)")
    ap.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (Provisor's default; to standard error, so redirect it), off by default",
    )
    args = ap.parse_args()
    if args.rounds < 1 or args.requests < 16:
        ap.error("--rounds must be at least 1 and --requests at least 16")
    with tempfile.TemporaryDirectory(prefix="provisor-inprocess-") as tmp:
        if args.db:
            if not Path(args.db).is_file():
                ap.error(f"no such file: {args.db}")
            url = f"sqlite:///{args.db}"
        else:
            if args.save and Path(args.save).exists():
                ap.error(f"--save: {args.save} exists already")
            url = f"sqlite:///{args.save or f'{tmp}/bench.db'}"
            started = time.perf_counter()
            build_store(url, args.users, args.groups, args.ungrouped)
            print(f"built {args.users} users, {args.groups} groups in {time.perf_counter() - started:.1f} s")
        if args.synchronous != "normal":
            url += f"?synchronous={args.synchronous}"
        rounds = asyncio.run(measure(url, args.workload, args.rounds, args.requests, args.access_log))
    import provisor

    print(f"provisor from {Path(provisor.__file__).parent}")
    print(
        f"{args.workload}: {min(rounds):.1f} us a request (best of {len(rounds)}; median "
        f"{statistics.median(rounds):.1f}; rounds: {' '.join(f'{r:.1f}' for r in rounds)})"
    )
    return 0


async def measure(url: str, workload: str, rounds: int, requests: int, access_log: bool) -> list[float]:
    from provisor.store.sql import SqlStore

    store = SqlStore(url)
    try:
        app, tenant_id, token, users = serve_store(store, "inprocess", access_log=access_log)
        joining = _joining(store, tenant_id) if workload == "member_add" else None
        headers = [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/scim+json"),
        ]
        sent: list[dict[str, Any]] = []
        call = _caller(app, headers, sent)
        request = _workload(workload, users, call, joining)
        for _ in range(200):  # warm up
            await request()
        _check(sent)
        out = []
        batch = 16 if workload in WRITES else 1
        for _ in range(rounds):
            sent.clear()
            started = time.perf_counter()
            for _ in range(requests // batch):
                if batch == 1:
                    await request()
                else:
                    await asyncio.gather(*(request() for _ in range(batch)))
            out.append((time.perf_counter() - started) / (requests // batch * batch) * 1e6)
            _check(sent)
        app.close()
        return out
    finally:
        store.close()


def serve_store(
    store: Any, label: str, *, access_log: bool = False
) -> tuple[Any, str, str, list[tuple[str, str]]]:
    """The app over ``store`` and what a workload needs of it: (app, the first tenant's id, a new
    token of it labelled ``label``, the (id, userName) of each of its Users)."""
    from provisor.server import ServerConfig, create_app
    from provisor.server.auth import issue_token

    tenant = store.list_tenants()[0]
    token, _ = issue_token(store, tenant.id, label=label)
    app = create_app(store, ServerConfig(access_log=access_log))
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT id, user_name FROM resources WHERE tenant_id = ? AND resource_type = 'User'",
            (tenant.id,),
        ).all()
    return app, tenant.id, token, [(str(r[0]), str(r[1])) for r in rows]


Call = Callable[[str, str, bytes, bytes], Awaitable[None]]


def _caller(app: Any, headers: list[tuple[bytes, bytes]], sent: list[dict[str, Any]]) -> Call:
    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def call(method: str, path: str, query_string: bytes, body: bytes) -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "root_path": "",
            "query_string": query_string,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
            "scheme": "http",
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "http_version": "1.1",
        }
        await app(scope, receive, send)

    return call


def _joining(store: Any, tenant_id: str) -> tuple[str, list[str]]:
    """(the id of the tenant's largest group, the ids of the users not in it), for member_add."""
    with store.engine.connect() as conn:
        group = conn.exec_driver_sql(
            "SELECT pk, id FROM resources WHERE tenant_id = ? AND resource_type = 'Group' ORDER BY "
            "(SELECT count(*) FROM memberships WHERE group_pk = resources.pk) DESC LIMIT 1",
            (tenant_id,),
        ).one()
        rows = conn.exec_driver_sql(
            "SELECT id FROM resources WHERE tenant_id = ? AND resource_type = 'User' AND pk NOT IN "
            "(SELECT member_pk FROM memberships WHERE group_pk = ?) ORDER BY pk",
            (tenant_id, group[0]),
        ).all()
    return str(group[1]), [str(r[0]) for r in rows]


def _workload(
    name: str, users: list[tuple[str, str]], call: Call, joining: tuple[str, list[str]] | None = None
) -> Callable[[], Awaitable[None]]:
    base = "/scim/v2/Users"
    made = iter(range(10**9))
    pages = iter(range(10**9))
    tag = f"{random.randrange(16**6):06x}"

    async def get_filter() -> None:
        user_name = random.choice(users)[1]
        await call("GET", base, ("filter=" + quote(f'userName eq "{user_name}"')).encode(), b"")

    async def get_id() -> None:
        await call("GET", f"{base}/{random.choice(users)[0]}", b"", b"")

    async def post() -> None:
        body = orjson.dumps(user_body(f"ip{tag}-{next(made)}", 0))
        await call("POST", base, b"", body)

    async def patch_user() -> None:
        op = {"op": "replace", "path": "displayName", "value": f"Renamed {next(made)}"}
        body = orjson.dumps(
            {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op]}
        )
        await call("PATCH", f"{base}/{random.choice(users)[0]}", b"", body)

    async def page() -> None:
        start = 1 + 100 * (next(pages) % max(1, len(users) // 100))
        await call("GET", base, f"count=100&startIndex={start}".encode(), b"")

    async def count() -> None:
        await call("GET", base, b"count=0", b"")

    group, newcomers = joining or ("", [])
    left = iter(newcomers)

    async def member_add() -> None:
        member = next(left, None)
        if member is None:
            raise SystemExit(f"member_add: all {len(newcomers)} users not in the group were added")
        op = {"op": "add", "path": "members", "value": [{"value": member}]}
        patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op]}
        await call("PATCH", f"/scim/v2/Groups/{group}", b"", orjson.dumps(patch))

    return {
        "get_filter": get_filter,
        "get_id": get_id,
        "post": post,
        "patch_user": patch_user,
        "page": page,
        "count": count,
        "member_add": member_add,
    }[name]


def _check(sent: list[dict[str, Any]]) -> None:
    """Every response of the round was a success (a benchmark of errors measures nothing)."""
    statuses = {m["status"] for m in sent if m["type"] == "http.response.start"}
    if not statuses or not statuses <= {200, 201, 204}:
        bodies = [m.get("body", b"")[:300] for m in sent if m["type"] == "http.response.body"]
        raise SystemExit(f"unexpected statuses {sorted(statuses)}: {bodies[-1:]!r}")


if __name__ == "__main__":
    sys.exit(main())
