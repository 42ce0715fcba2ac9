"""One page of Users who are in very many groups: its time, response size and peak memory.

    PYTHONPATH=src python bench/user_groups.py --shape nested
    PYTHONPATH=src python bench/user_groups.py --shape direct

1. Builds a fresh SQLite store in a temporary folder, straight through the store: --users Users
   (default 1,000), each in --groups groups (default 1,000), in one of two shapes:
   - ``nested``: one group holds every User, and that group is a member of each of the other
     groups, so each User is in one group directly and in the others indirectly (RFC 7643
     section 4.1.2); the store walks nested groups for every User of the page;
   - ``direct``: every group holds every User directly (a million membership rows).
2. In a fresh process (so the build's memory does not count), calls the app in process (ASGI, no
   socket) with one ``GET /Users?count=<users>`` (``--params`` adds to the query string, e.g.
   ``excludedAttributes=groups``; ``--page-group-refs`` sets the server's budget of group
   references a page, ``ServerConfig.page_group_refs``), and prints the seconds it took, ``itemsPerPage`` and
   ``totalResults``, how many group references the page carried, the response's size, and the
   process's peak resident memory (``ru_maxrss``) before and after the request.

To compare with another commit, run the same command with that commit's sources on the path.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

import orjson


def build_store(url: str, users: int, groups: int, shape: str) -> None:
    """``users`` Users, each in ``groups`` groups (``shape``: nested or direct)."""
    from provisor.store.base import Member
    from provisor.store.sql import SqlStore

    store = SqlStore(url)
    try:
        tenant = store.create_tenant("bench").id
        ids: list[str] = []
        with store.batch():
            for i in range(users):
                ids.append(store.create(tenant, "User", {"userName": f"user{i:05d}@example.com"}).id)
        everyone = [Member(value=id, type="User") for id in ids]
        if shape == "nested":
            inner = store.create(tenant, "Group", {"displayName": "Group 0"}, everyone).id
            with store.batch():
                for g in range(1, groups):
                    group = {"displayName": f"Group {g}"}
                    store.create(tenant, "Group", group, [Member(value=inner, type="Group")])
        else:
            for g in range(groups):
                store.create(tenant, "Group", {"displayName": f"Group {g}"}, everyone)
    finally:
        store.close()


def peak_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def one_page(url: str, count: int, params: str, page_group_refs: int | None) -> None:
    from provisor.server import ServerConfig, create_app
    from provisor.server.auth import issue_token
    from provisor.store.sql import SqlStore

    store = SqlStore(url)
    try:
        tenant = store.list_tenants()[0]
        token, _ = issue_token(store, tenant.id, label="bench")
        # the default budget unless one is given (the option is for code that has one)
        budget = {} if page_group_refs is None else {"page_group_refs": page_group_refs}
        app = create_app(store, ServerConfig(access_log=False, **budget))
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        query = f"count={count}" + (f"&{params}" if params else "")
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/scim/v2/Users",
            "root_path": "",
            "query_string": query.encode(),
            "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {token}".encode())],
            "scheme": "http",
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "http_version": "1.1",
        }
        before = peak_mb()
        started = time.perf_counter()
        await app(scope, receive, send)
        seconds = time.perf_counter() - started
        after = peak_mb()
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        page = orjson.loads(body)
        refs = sum(len(r.get("groups", ())) for r in page.get("Resources", ()))
        print(
            f"GET /Users?{query}: {status} in {seconds:.2f} s; itemsPerPage {page.get('itemsPerPage')}, "
            f"totalResults {page.get('totalResults')}, {refs:,} group references, "
            f"{len(body) / 1e6:.1f} MB; peak RSS {before:.0f} MB before, {after:.0f} MB after"
        )
        app.close()
    finally:
        store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=("nested", "direct"), default="nested")
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--groups", type=int, default=1000)
    ap.add_argument("--params", default="", help="more query parameters, e.g. excludedAttributes=groups")
    ap.add_argument(
        "--page-group-refs",
        type=int,
        help="the server's budget of group references a page (ServerConfig.page_group_refs); "
        "its default unless given",
    )
    ap.add_argument("--measure", help=argparse.SUPPRESS)  # the child process: the store to read
    args = ap.parse_args()
    if args.measure:
        asyncio.run(one_page(args.measure, args.users, args.params, args.page_group_refs))
        return 0
    with tempfile.TemporaryDirectory(prefix="provisor-user-groups-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        started = time.perf_counter()
        build_store(url, args.users, args.groups, args.shape)
        print(
            f"built {args.users} users in {args.groups} groups ({args.shape}) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        child = [sys.executable, __file__, "--users", str(args.users), "--measure", url]
        child += ["--params", args.params]
        if args.page_group_refs is not None:
            child += ["--page-group-refs", str(args.page_group_refs)]
        return subprocess.run(child, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
