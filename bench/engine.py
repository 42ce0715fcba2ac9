"""Provisioning-engine benchmark (issue 3): an initial cycle, then incremental ones of 1,000 changes.

    python bench/engine.py --users 10000 --groups 1000
    python bench/engine.py --users 100000 --groups 1000

1. Starts one `provisor serve` (one uvicorn worker) on a free 127.0.0.1 port over a fresh SQLite file
   and creates two tenants with `provisor tenant create`: the directory, and the app
   (`--allowed-role User`, like Clarizen One).
2. Fills the directory over HTTP (concurrent POSTs on keep-alive connections, bench/http1.py):
   N users, every 10th user the manager of the next 9 (managers are created first); G groups:
   group 0 holds the first 20 % of the users (built with PATCH adds of 1,000 members), every user is
   also a member of exactly one of the other G-1 groups (round robin). Memberships: 1.2 N.
3. Writes a job file (template clarizen-one, scope assigned: every one of the G groups with role User,
   state in its own SQLite file) and runs `provisor sync --job FILE --once` as a subprocess:
   wall time, objects/s (users + groups + memberships the cycle handled) and the sync process's
   peak RSS (ru_maxrss of that child, from wait4).
4. Applies --changes changes to the directory (60 % attribute edits, 20 % disables, 10 % new users,
   each added to one of the regular groups, 10 % deletions) and runs the incremental cycle, measured
   the same way; then checks the app's counts (users, disabled users). `--rounds R` repeats step 4
   R times on fresh users each time and reports every round and the median.
5. Prints a markdown table and writes the results as JSON to bench/results/.

Only 127.0.0.1 is used; the sync runs under --sync-timeout; every process started is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from http1 import Connection, query
from run import (
    CORE,
    ENTERPRISE,
    GROUP,
    HOST,
    PATCH_OP,
    RESULTS_DIR,
    Server,
    create_tenant,
    log,
    provisor_executable,
    serve_provisor,
    start_process,
    stop_process,
)

REQUEST_TIMEOUT_S = 120.0
LOAD_CONNECTIONS = 16
MEMBER_CHUNK = 1000


# --------------------------------------------------------------------------- server and tenants


def start_server(workdir: Path) -> tuple[Server, str, str]:
    """`provisor serve` and two tenants: (server, directory token, app token)."""
    server, db_url = serve_provisor(workdir)
    return server, create_tenant(db_url, "directory"), create_tenant(db_url, "app", "--allowed-role", "User")


def conns_for(server: Server, token: str, n: int) -> list[Connection]:
    headers = {
        "Content-Type": "application/scim+json",
        "Accept": "application/scim+json",
        "Authorization": f"Bearer {token}",
    }
    return [Connection(HOST, server.port, headers, REQUEST_TIMEOUT_S) for _ in range(n)]


async def pool(conns: list[Connection], items: list[Any], job: Any, what: str) -> float:
    """job(conn, item) for every item, one worker per connection; returns the seconds taken."""
    it = iter(items)
    done = 0
    step = max(1, len(items) // 5)
    start = time.perf_counter()

    async def worker(conn: Connection) -> None:
        nonlocal done
        for item in it:
            await job(conn, item)
            done += 1
            if len(items) >= 5000 and done % step == 0:
                log(f"  {what}: {done}/{len(items)} ({done / (time.perf_counter() - start):.0f}/s)")

    await asyncio.gather(*(worker(c) for c in conns))
    return time.perf_counter() - start


async def call(
    conn: Connection, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200,)
) -> Any:
    status, data = await conn.request(method, path, None if body is None else json.dumps(body).encode())
    if status not in ok:
        raise RuntimeError(f"{method} {path} -> {status}: {data[:300]!r}")
    return json.loads(data) if data else None


# --------------------------------------------------------------------------- the directory


def user_body(i: int, manager_id: str | None) -> dict[str, Any]:
    name = f"user{i:07d}@example.com"
    ext: dict[str, Any] = {
        "employeeNumber": str(i),
        "department": f"Dept {i % 50}",
        "costCenter": f"CC{i % 7}",
    }
    if manager_id is not None:
        ext["manager"] = {"value": manager_id}
    return {
        "schemas": [CORE, ENTERPRISE],
        "userName": name,
        "externalId": f"user{i:07d}",
        "active": True,
        "displayName": f"Bench User {i}",
        "name": {"givenName": "Bench", "familyName": f"User{i}"},
        "title": "Engineer",
        "emails": [{"value": name, "type": "work", "primary": True}],
        "phoneNumbers": [{"value": f"+1 555 01{i % 100:02d}", "type": "work"}],
        "addresses": [
            {"type": "work", "streetAddress": f"{i} Main St", "locality": "Springfield", "country": "US"}
        ],
        ENTERPRISE: ext,
    }


def add_members(ids: list[str]) -> dict[str, Any]:
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": i} for i in ids]}],
    }


@dataclass
class Directory:
    user_ids: list[str] = field(default_factory=list)
    group_ids: list[str] = field(default_factory=list)
    group_names: list[str] = field(default_factory=list)
    memberships: int = 0
    seconds: float = 0.0


async def fill_directory(server: Server, token: str, users: int, groups: int) -> Directory:
    d = Directory(user_ids=[""] * users)
    base = server.base_path
    conns = conns_for(server, token, LOAD_CONNECTIONS)
    start = time.perf_counter()
    try:
        managers = list(range(0, users, 10))
        reports = [i for i in range(users) if i % 10]

        async def make_user(conn: Connection, i: int) -> None:
            manager = None if i % 10 == 0 else d.user_ids[i - i % 10]
            d.user_ids[i] = (await call(conn, "POST", f"{base}/Users", user_body(i, manager), (201,)))["id"]

        log(f"directory: {len(managers)} managers")
        await pool(conns, managers, make_user, "managers")
        log(f"directory: {len(reports)} users with a manager")
        await pool(conns, reports, make_user, "users")

        # group 0: the first 20 % of the users; groups 1..G-1: every user once, round robin
        regular = max(groups - 1, 1)
        spread: list[list[str]] = [[] for _ in range(regular)]
        for i, uid in enumerate(d.user_ids):
            spread[i % regular].append(uid)
        d.group_names = [f"Bench Group {g:04d}" for g in range(groups)]
        d.group_ids = [""] * groups

        async def make_group(conn: Connection, g: int) -> None:
            body: dict[str, Any] = {"schemas": [GROUP], "displayName": d.group_names[g]}
            if g > 0:
                body["members"] = [{"value": u} for u in spread[g - 1]]
            d.group_ids[g] = (await call(conn, "POST", f"{base}/Groups", body, (201,)))["id"]

        log(f"directory: {groups} groups")
        await pool(conns, list(range(groups)), make_group, "groups")
        d.memberships = sum(len(s) for s in spread[: groups - 1]) if groups > 1 else 0
        big = d.user_ids[: users // 5]
        for k in range(0, len(big), MEMBER_CHUNK):
            await call(
                conns[0],
                "PATCH",
                f"{base}/Groups/{d.group_ids[0]}",
                add_members(big[k : k + MEMBER_CHUNK]),
                (200, 204),
            )
        d.memberships += len(big)
    finally:
        for conn in conns:
            await conn.close()
    d.seconds = time.perf_counter() - start
    return d


@dataclass
class Changes:
    edits: int = 0
    disables: int = 0
    new_users: int = 0
    deletions: int = 0
    seconds: float = 0.0


async def apply_changes(
    server: Server, token: str, d: Directory, n: int, users: int, round_no: int = 0
) -> Changes:
    """60 % edits, 20 % disables, 10 % new users (each added to a regular group), 10 % deletions,
    on disjoint users that manage nobody (the users whose index is not a multiple of 10).

    Round ``round_no`` picks its users one place further along the same stride, so that rounds
    never touch a user an earlier round disabled or deleted."""
    c = Changes(edits=n * 6 // 10, disables=n * 2 // 10, new_users=n // 10)
    c.deletions = n - c.edits - c.disables - c.new_users
    base = server.base_path
    stride = max(1, (users * 9 // 10) // (c.edits + c.disables + c.deletions))
    if round_no >= stride:
        raise SystemExit(f"at most {stride} rounds of {n} changes fit {users} users")
    plain = [i for i in range(users) if i % 10][round_no::stride]
    if len(plain) < c.edits + c.disables + c.deletions:
        raise SystemExit("too few users for that many changes")
    edits = plain[: c.edits]
    disables = plain[c.edits : c.edits + c.disables]
    deletions = plain[c.edits + c.disables : c.edits + c.disables + c.deletions]
    conns = conns_for(server, token, LOAD_CONNECTIONS)
    start = time.perf_counter()
    try:

        async def edit(conn: Connection, i: int) -> None:
            ops = {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "title", "value": "Staff Engineer"}],
            }
            await call(conn, "PATCH", f"{base}/Users/{d.user_ids[i]}", ops, (200, 204))

        async def disable(conn: Connection, i: int) -> None:
            ops = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": False}]}
            await call(conn, "PATCH", f"{base}/Users/{d.user_ids[i]}", ops, (200, 204))

        async def remove(conn: Connection, i: int) -> None:
            await call(conn, "DELETE", f"{base}/Users/{d.user_ids[i]}", None, (204,))

        async def hire(conn: Connection, k: int) -> None:
            i = users + round_no * c.new_users + k
            created = await call(conn, "POST", f"{base}/Users", user_body(i, d.user_ids[0]), (201,))
            group = d.group_ids[1 + k % max(len(d.group_ids) - 1, 1)]
            await call(conn, "PATCH", f"{base}/Groups/{group}", add_members([created["id"]]), (200, 204))

        await pool(conns, edits, edit, "edits")
        await pool(conns, disables, disable, "disables")
        await pool(conns, list(range(c.new_users)), hire, "new users")
        await pool(conns, deletions, remove, "deletions")
    finally:
        for conn in conns:
            await conn.close()
    c.seconds = time.perf_counter() - start
    return c


async def app_counts(server: Server, token: str) -> dict[str, int]:
    conn = conns_for(server, token, 1)[0]
    try:
        out = {}
        for key, path, params in (
            ("users", "/Users", {"count": "0"}),
            ("disabled", "/Users", {"count": "0", "filter": "active eq false"}),
            ("groups", "/Groups", {"count": "0"}),
        ):
            body = await call(conn, "GET", f"{server.base_path}{path}?{query(params)}")
            out[key] = int(body["totalResults"])
        return out
    finally:
        await conn.close()


# --------------------------------------------------------------------------- the job and the cycles


def write_job(workdir: Path, server: Server, d: Directory, concurrency: int | None) -> Path:
    lines = [
        "name: bench",
        "source:",
        "  type: scim",
        f"  url: {server.base_url}",
        "  token: ${DIRECTORY_TOKEN}",
        "target:",
        f"  url: {server.base_url}",
        "  token: ${APP_TOKEN}",
    ]
    if concurrency is not None:
        lines.append(f"  concurrency: {concurrency}")
    lines += [
        "  timeout_seconds: 120",
        "template: clarizen-one",
        "scope:",
        "  mode: assigned",
        "  assignments:",
    ]
    for name in d.group_names:
        lines += [f"    - group: {name}", "      role: User"]
    lines += [f"state: sqlite:///{workdir / 'state.db'}", "interval_minutes: 40", ""]
    path = workdir / "job.yaml"
    path.write_text("\n".join(lines))
    return path


@dataclass
class CycleResult:
    kind: str
    seconds: float
    objects: int
    objects_per_s: float
    peak_rss_mb: float
    user_time_s: float
    system_time_s: float
    counts: dict[str, int]
    exit_code: int


ACTIONS = ("Create", "Update", "Disable", "Delete", "Skip", "StagedDelete")


def run_sync(
    job: Path, env: dict[str, str], log_path: Path, timeout: float, profile: Path | None = None
) -> CycleResult:
    exe = provisor_executable()
    cmd = [exe, "sync", "--job", str(job), "--once"]
    if profile is not None:  # cProfile's own cost inflates the times: for finding hot spots only
        cmd = [sys.executable, "-m", "cProfile", "-o", str(profile), *cmd]
    proc = start_process(cmd, log_path, env)
    start = time.perf_counter()
    usage = None
    status = 0
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.perf_counter() - start > timeout:
                raise RuntimeError(f"provisor sync did not finish within {timeout:.0f}s (see {log_path})")
            time.sleep(0.05)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, 0)
    seconds = time.perf_counter() - start
    code = proc.returncode
    if code != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"provisor sync exited {code}:\n{tail}")
    out = subprocess.run(
        [exe, "status", "--job", str(job), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    last = json.loads(out.stdout)["last_cycle"]
    counts = {k: int(v) for k, v in last["counts"].items()}
    objects = sum(counts.get(a, 0) for a in ACTIONS) + counts.get("memberships", 0)
    assert usage is not None
    return CycleResult(
        kind=last["kind"],
        seconds=round(seconds, 2),
        objects=objects,
        objects_per_s=round(objects / seconds, 1) if seconds else 0.0,
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        user_time_s=round(usage.ru_utime, 1),
        system_time_s=round(usage.ru_stime, 1),
        counts=counts,
        exit_code=code,
    )


# --------------------------------------------------------------------------- main


def markdown(results: dict[str, Any]) -> str:
    rows = [
        "| cycle | wall (s) | objects (users + groups + memberships) | objects/s | memberships "
        "| sync CPU user+sys (s) | sync peak RSS (MiB) | app after (users / disabled / groups) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    cycles = [("initial", results.get("initial"), results.get("app_after_initial", {}))]
    for n, r in enumerate(results.get("incremental_rounds", []), 1):
        cycles.append((f"round {n}", r, r.get("app_after", {})))
    for label, r, app in cycles:
        if not r:
            continue
        name = r["kind"] if label == "initial" else f"{r['kind']} ({label})"
        rows.append(
            f"| {name}, {results['users']:,} users / {results['groups']:,} groups "
            f"| {r['seconds']:.1f} | {r['objects']:,} | {r['objects_per_s']:,.0f} "
            f"| {r['counts'].get('memberships', 0):,} | {r['user_time_s'] + r['system_time_s']:.0f} "
            f"| {r['peak_rss_mb']:.1f} | {app.get('users', '?')} / {app.get('disabled', '?')} / "
            f"{app.get('groups', '?')} |"
        )
    return "\n".join(rows)


def _prof(where: Path | None, name: str) -> Path | None:
    if where is None:
        return None
    where.mkdir(parents=True, exist_ok=True)
    return where.resolve() / f"{name}.prof"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument(
        "--concurrency", type=int, default=None, help="job target.concurrency (default: the job default, 8)"
    )
    parser.add_argument("--sync-timeout", type=float, default=1800.0, help="seconds allowed per sync")
    parser.add_argument(
        "--rounds", type=int, default=1, help="incremental rounds, each with its own --changes (default 1)"
    )
    parser.add_argument("--initial-only", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats of each sync here")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    if args.users < 100 or args.groups < 2:
        raise SystemExit("--users >= 100 and --groups >= 2, please")

    workdir = Path(tempfile.mkdtemp(prefix="provisor-engine-bench-"))
    server = None
    results: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "users": args.users,
        "groups": args.groups,
        "changes": args.changes,
        "concurrency": args.concurrency or 8,
        "label": args.label,
        "machine": (
            f"{os.cpu_count()} CPUs, {platform.machine()}, Linux {platform.release()}, "
            f"Python {platform.python_version()}"
        ),
        "command": "python bench/engine.py " + " ".join(sys.argv[1:]),
    }
    try:
        server, dir_token, app_token = start_server(workdir)
        log(f"server on {server.origin}; filling the directory: {args.users} users, {args.groups} groups")
        d = asyncio.run(fill_directory(server, dir_token, args.users, args.groups))
        results["directory"] = {"memberships": d.memberships, "load_seconds": round(d.seconds, 1)}
        log(
            f"directory filled in {d.seconds:.0f}s ({d.memberships} memberships); "
            f"server RSS {server.rss_mb()} MiB"
        )
        job = write_job(workdir, server, d, args.concurrency)
        env = {"DIRECTORY_TOKEN": dir_token, "APP_TOKEN": app_token}

        log("initial cycle: provisor sync --once")
        initial = run_sync(
            job, env, workdir / "sync-initial.log", args.sync_timeout, _prof(args.profile, "initial")
        )
        results["initial"] = asdict(initial)
        log(
            f"initial: {initial.seconds:.1f}s, {initial.objects} objects "
            f"({initial.objects_per_s:.0f}/s), peak RSS {initial.peak_rss_mb} MiB"
        )
        results["app_after_initial"] = asyncio.run(app_counts(server, app_token))
        log(f"app after initial: {results['app_after_initial']}; counts {initial.counts}")

        if not args.initial_only:
            rounds: list[dict[str, Any]] = []
            for round_no in range(args.rounds):
                time.sleep(1.5)  # past the watermark's overlap window
                changes = asyncio.run(apply_changes(server, dir_token, d, args.changes, args.users, round_no))
                log(f"round {round_no + 1}: {args.changes} changes applied in {changes.seconds:.1f}s")
                incremental = run_sync(
                    job,
                    env,
                    workdir / f"sync-incremental-{round_no + 1}.log",
                    args.sync_timeout,
                    _prof(args.profile, f"incremental-{round_no + 1}"),
                )
                after = asyncio.run(app_counts(server, app_token))
                log(
                    f"round {round_no + 1}: incremental {incremental.seconds:.1f}s, {incremental.objects} "
                    f"objects, peak RSS {incremental.peak_rss_mb} MiB; {incremental.counts}; app {after}"
                )
                rounds.append({**asdict(incremental), "changes_applied": asdict(changes), "app_after": after})
            results["incremental"] = rounds[0]
            results["app_after_incremental"] = rounds[-1]["app_after"]
            results["incremental_rounds"] = rounds
            results["incremental_median_s"] = statistics.median(r["seconds"] for r in rounds)
            log(f"incremental median over {len(rounds)} round(s): {results['incremental_median_s']:.2f}s")
        results["server_rss_mb"] = server.rss_mb()
    finally:
        if server is not None:
            stop_process(server.proc)
        if args.keep:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"engine-{args.users}u-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(markdown(results))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
