"""Whole-tenant listings: reading every user of a tenant, as Okta's imports and Provisor's deletion
check do, on Provisor and on the scim2-server peer in one run.

    python bench/listing.py --users 100000 --peer-users 10000

1. Starts `provisor serve` (one uvicorn worker, a fresh SQLite file) and the peer
   (`../shared/bench/scim2_server_peer.py`, in memory) on 127.0.0.1, and fills each over HTTP with
   Entra-shaped users (bench/run.py's `user_body`): --users into Provisor, --peer-users into the
   peer (loading 100,000 into the peer takes minutes; the comparison favours it).
2. On each server, one client on one keep-alive connection walks the whole tenant:
   - every id, `attributes=id&count=1000` by `startIndex` (the engine's deletion check);
   - every id by cursor (RFC 9865), when the server advertises cursors;
   - every user in full, `count=100` by `startIndex` (an Okta import);
   - every id sorted by --sort-by (userName), by `startIndex` and (when the server has them) by
     cursor;
   - one page of 1,000 ids at the very end, asked cold (no earlier page just before it).
   Each walk checks that it saw every user exactly once.
3. Prints a markdown table (seconds, pages, users/s) and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from http1 import Connection, query
from run import (
    HOST,
    REQUEST_TIMEOUT_S,
    RESULTS_DIR,
    Server,
    _run_pool,
    connections,
    log,
    start_peer,
    start_provisor,
    stop_process,
    user_body,
)


async def fill(server: Server, users: int, concurrency: int = 16) -> float:
    conns = connections(server, concurrency)

    async def job(conn: Connection, i: int) -> None:
        body = json.dumps(user_body(f"lst{i:07d}", i)).encode()
        status, data = await conn.request("POST", f"{server.base_path}/Users", body)
        if status != 201:
            raise RuntimeError(f"{server.label}: POST /Users -> {status}: {data[:300]!r}")

    try:
        return await _run_pool(conns, users, job, f"{server.label} users")
    finally:
        for conn in conns:
            await conn.close()


SORTED_BY_INDEX = "ids sorted (--sort-by), by startIndex (count 1000)"
SORTED_BY_CURSOR = "ids sorted (--sort-by), by cursor (count 1000)"


async def get(conn: Connection, server: Server, params: dict[str, str]) -> dict[str, Any]:
    status, data = await conn.request("GET", f"{server.base_path}/Users?{query(params)}")
    if status != 200:
        raise RuntimeError(f"{server.label}: GET /Users?{query(params)} -> {status}: {data[:300]!r}")
    body: dict[str, Any] = json.loads(data)
    return body


async def walk(
    conn: Connection, server: Server, extra: dict[str, str], count: int, by_cursor: bool
) -> tuple[int, int]:
    """(users seen, pages) walking by cursor or by startIndex; every id exactly once."""
    seen: set[str] = set()
    start, cursor, pages = 1, "", 0
    while True:
        position = {"cursor": cursor} if by_cursor else {"startIndex": str(start)}
        body = await get(conn, server, {**extra, **position, "count": str(count)})
        pages += 1
        page = [r["id"] for r in body.get("Resources", [])]
        if seen & set(page):
            raise RuntimeError(f"{server.label}: a walk saw an id twice")
        seen.update(page)
        start += len(page)
        if by_cursor:
            if "nextCursor" not in body:
                return len(seen), pages
            cursor = body["nextCursor"]
        elif not page or start > int(body["totalResults"]):
            return len(seen), pages


async def measure(server: Server, users: int, sort_by: str = "userName") -> dict[str, Any]:
    conn = connections(server, 1)[0]
    out: dict[str, Any] = {"server": server.label, "users": users}
    try:
        status, data = await conn.request("GET", f"{server.base_path}/ServiceProviderConfig")
        spc = json.loads(data) if status == 200 else {}
        cursors = bool((spc.get("pagination") or {}).get("cursor"))
        by_name = {"attributes": "id", "sortBy": sort_by}
        walks: list[tuple[str, Any]] = [
            ("ids by startIndex (count 1000)", walk(conn, server, {"attributes": "id"}, 1000, False)),
            ("full users by startIndex (count 100)", walk(conn, server, {}, 100, False)),
            (SORTED_BY_INDEX, walk(conn, server, by_name, 1000, False)),
        ]
        if cursors:
            walks.insert(
                1, ("ids by cursor (count 1000)", walk(conn, server, {"attributes": "id"}, 1000, True))
            )
            walks.append((SORTED_BY_CURSOR, walk(conn, server, by_name, 1000, True)))
        for name, walking in walks:
            start = time.perf_counter()
            seen, pages = await walking
            seconds = time.perf_counter() - start
            if seen != users:
                raise RuntimeError(f"{server.label}: {name} saw {seen} users of {users}")
            out[name] = {"seconds": round(seconds, 3), "pages": pages, "users_per_s": round(seen / seconds)}
            log(f"{server.label}: {name}: {seconds:.2f} s, {pages} pages")
        if not cursors:
            out["ids by cursor (count 1000)"] = out[SORTED_BY_CURSOR] = None
        start = time.perf_counter()
        await get(conn, server, {"attributes": "id", "startIndex": str(max(1, users - 999)), "count": "1000"})
        out["last 1000 ids, cold"] = {"seconds": round(time.perf_counter() - start, 4)}
    finally:
        await conn.close()
    return out


WALKS = (
    "ids by startIndex (count 1000)",
    "ids by cursor (count 1000)",
    "full users by startIndex (count 100)",
    SORTED_BY_INDEX,
    SORTED_BY_CURSOR,
)


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| server | users | walk | seconds | pages | users/s |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for r in results:
        for name in WALKS:
            m = r.get(name)
            if m is None:
                rows.append(f"| {r['server']} | {r['users']:,} | {name} | not offered | | |")
            else:
                rows.append(
                    f"| {r['server']} | {r['users']:,} | {name} | {m['seconds']:.2f} | {m['pages']:,} "
                    f"| {m['users_per_s']:,} |"
                )
        cold = r["last 1000 ids, cold"]["seconds"]
        rows.append(f"| {r['server']} | {r['users']:,} | the last 1,000 ids, asked cold | {cold:.3f} | 1 | |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000, help="users loaded into Provisor")
    parser.add_argument("--peer-users", type=int, default=10_000, help="users loaded into the peer")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--sort-by", default="userName", help="the attribute of the sorted walks (userName)")
    args = parser.parse_args()
    if args.users < 1000 or args.peer_users < 1000:
        raise SystemExit("--users and --peer-users >= 1000, please")
    workdir = Path(tempfile.mkdtemp(prefix="provisor-listing-bench-"))
    servers: list[Server] = []
    results: list[dict[str, Any]] = []
    try:
        provisor = start_provisor(workdir)
        servers.append(provisor)
        log(f"Provisor: loading {args.users} users")
        asyncio.run(fill(provisor, args.users))
        peer = None
        if not args.no_peer:
            peer = start_peer(workdir)
            servers.append(peer)
            log(f"scim2-server: loading {args.peer_users} users")
            asyncio.run(fill(peer, args.peer_users))
        results.append(asyncio.run(measure(provisor, args.users, args.sort_by)))
        if peer is not None:
            results.append(asyncio.run(measure(peer, args.peer_users, args.sort_by)))
    finally:
        for server in servers:
            stop_process(server.proc)
        shutil.rmtree(workdir, ignore_errors=True)
    meta = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}",
        "command": "python bench/listing.py " + " ".join(sys.argv[1:]),
        "host": HOST,
        "timeout_s": REQUEST_TIMEOUT_S,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"listing-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print()
    print(table(results))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
