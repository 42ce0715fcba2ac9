"""Side-by-side benchmark: Provisor vs the scim2-server peer vs a bare Starlette app, in one run.

    python bench/run.py --users 100000 --groups 100 --duration 10

1. Starts, each on its own free 127.0.0.1 port (uvicorn, one worker, no access log; with
   --access-log, each logs every request as it does by default: uvicorn's access log, Provisor's
   JSON access log):
   `provisor serve` over a fresh SQLite file, with a tenant made by `provisor tenant create`;
   scim2-server's ASGI app over its in-memory storage (../shared/bench/scim2_server_peer.py, SCIM_ENTRA=1);
   bench/bare_app.py (a constant 1 KB JSON on GET /bare);
   once Provisor is loaded, bench/floor_app.py over Provisor's SQLite file (the floor under the
   filtered GET: one indexed lookup, raw ASGI, no authentication and no rendering).
2. Loads users and groups over HTTP into Provisor (--users) and the peer (--peer-users): one group with
   10 members, one with every loaded user (built with PATCH adds of --batch members), the rest with 5.
   It also makes extra users that belong to no group, for the member-add workloads.
3. Measures each workload with wrk (-t1 -c<connections> -d<duration>s, bench/wrk/scim.lua), or with a
   Python asyncio load generator when wrk cannot be had; the output says which. Before each
   measurement it waits until no server is still working through earlier requests. The bare app
   is measured first and again at the end: the difference is how far the box drifted in the run.
4. Prints a table (req/s, p50, p99, Provisor/peer and Provisor/bare ratios, and Provisor/floor for
   the filtered GET; RSS after loading and after every workload), writes the results as JSON to
   bench/results/, and prints a markdown table for docs/benchmarks.md.

Only 127.0.0.1 is used; every loop is bounded in count and time; every server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from http1 import Connection, HTTPError, query

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
PEER_DIR = REPO_ROOT.parent / "shared" / "bench"
WRK_SCRIPT = BENCH_DIR / "wrk" / "scim.lua"
RESULTS_DIR = BENCH_DIR / "results"
HOST = "127.0.0.1"

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

STARTUP_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 60.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- set-up


def ensure_python_deps() -> None:
    """Provisor itself (with httpx and uvicorn) and, for the peer, scim2-server (the `bench` extra)."""
    try:
        import httpx  # noqa: F401
        import scim2_server  # noqa: F401
        import uvicorn  # noqa: F401

        import provisor  # noqa: F401
    except ImportError:
        log("installing the bench extra: pip install -e '.[bench]'")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "-e", f"{REPO_ROOT}[bench]"],
            check=True,
            timeout=900,
            stdin=subprocess.DEVNULL,
        )


def provisor_executable() -> str:
    candidate = Path(sys.executable).with_name("provisor")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("provisor")
    if found is None:
        raise SystemExit("the `provisor` command is not installed: run `pip install -e .` first")
    return found


def ensure_wrk() -> str | None:
    """wrk's path, installing it with apt-get when missing and root; None if it cannot be had."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for update_first in (False, True):
        try:
            if update_first:
                subprocess.run(
                    ["apt-get", "update", "-q"],
                    env=env,
                    timeout=300,
                    check=False,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                )
            log("installing wrk with apt-get")
            subprocess.run(
                ["apt-get", "install", "-y", "-q", "wrk"],
                env=env,
                timeout=300,
                check=False,
                stdin=subprocess.DEVNULL,
                capture_output=True,
            )
        except subprocess.TimeoutExpired:
            return None
        if found := shutil.which("wrk"):
            return found
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    name: str  # "provisor" | "peer" | "floor" | "bare" | "bare_c"
    label: str
    port: int
    base_path: str  # SCIM base path, or the bare app's route
    token: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.origin + self.base_path

    def _group(self) -> Iterator[tuple[Path, list[str]]]:
        """(/proc/PID, the fields of its stat after the command) of each process of the server's
        process group (the server is started in a session of its own)."""
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.proc.pid:  # field 5 of /proc/PID/stat: the process group
                    yield stat.parent, fields
            except (OSError, IndexError, ValueError):
                continue

    def rss_mb(self) -> float | None:
        """Resident memory of the server's whole process group, in MiB."""
        total_kb = 0
        found = False
        for proc_dir, _ in self._group():
            try:
                status = (proc_dir / "status").read_text()
            except OSError:
                continue
            if m := re.search(r"^VmRSS:\s+(\d+)\s+kB", status, re.MULTILINE):
                total_kb += int(m.group(1))
                found = True
        return round(total_kb / 1024, 1) if found else None

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server's process group has used so far."""
        ticks = sum(int(fields[11]) + int(fields[12]) for _, fields in self._group())  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")


def wait_idle(servers: list[Server], *, quiet_s: float = 0.5, limit_s: float = 60.0) -> float:
    """Wait until no server uses CPU for ``quiet_s`` (at most ``limit_s``); the seconds waited.

    A load generator stops sending when its time is up, but a slow server still works through the
    requests in flight (the peer's member adds take seconds each), and that work would land on the
    next measurement, of another server. Returns how long the wait took.
    """
    started = time.monotonic()
    before = sum(s.cpu_seconds() for s in servers)
    while time.monotonic() - started < limit_s:
        time.sleep(quiet_s)
        now = sum(s.cpu_seconds() for s in servers)
        if now - before < 0.05 * quiet_s:  # under 5 % of a core: idle
            break
        before = now
    return time.monotonic() - started


def start_process(
    cmd: list[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as out:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


def wait_ready(server: Server, path: str, headers: dict[str, str] | None = None) -> None:
    import httpx

    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            break
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.origin + path, headers=headers, timeout=2.0).status_code == 200:
                return
        time.sleep(0.2)
    tail = server.log_path.read_text(errors="replace")[-3000:] if server.log_path.exists() else ""
    raise RuntimeError(f"{server.label} did not answer 200 on {path} (exit {server.proc.poll()}):\n{tail}")


#: Whether the servers log every request (``--access-log``); off, every server runs without.
ACCESS_LOG = False


def serve_provisor(workdir: Path) -> tuple[Server, str]:
    """`provisor serve` over a fresh SQLite file in ``workdir``: (server, database URL)."""
    exe = provisor_executable()
    db_url = f"sqlite:///{workdir / 'provisor.db'}"
    port = free_port()
    log_path = workdir / "provisor.log"
    quiet = [] if ACCESS_LOG else ["--no-access-log"]
    proc = start_process(
        [exe, "serve", "--db", db_url, "--host", HOST, "--port", str(port), *quiet],
        log_path,
        {"PROVISOR_DB": db_url},
    )
    server = Server("provisor", "Provisor", port, "/scim/v2", "", proc, log_path)
    wait_ready(server, "/healthz")
    return server, db_url


def create_tenant(db_url: str, name: str, *extra: str) -> str:
    """`provisor tenant create NAME` (the CLI contract): its Secret Token, the last line of stdout."""
    out = subprocess.run(
        [provisor_executable(), "tenant", "create", name, "--db", db_url, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd=REPO_ROOT,
    )
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise RuntimeError(
            f"provisor tenant create {name} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
        )
    return lines[-1].strip()


def start_provisor(workdir: Path) -> Server:
    server, db_url = serve_provisor(workdir)
    server.token = create_tenant(db_url, "bench")
    return server


def uvicorn_cmd(app_dir: Path, app: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(app_dir),
        app,
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--access-log" if ACCESS_LOG else "--no-access-log",
    ]


def start_peer(workdir: Path) -> Server:
    if not (PEER_DIR / "scim2_server_peer.py").is_file():
        raise RuntimeError(f"the peer script is missing: {PEER_DIR / 'scim2_server_peer.py'}")
    token = secrets.token_urlsafe(24)
    port = free_port()
    log_path = workdir / "peer.log"
    proc = start_process(
        uvicorn_cmd(PEER_DIR, "scim2_server_peer:app", port),
        log_path,
        {"SCIM_ENTRA": "1", "SCIM_TOKEN": token},
    )
    # scim2-server's ASGI app serves under /v2 (its VERSION_PREFIX).
    server = Server("peer", "scim2-server", port, "/v2", token, proc, log_path)
    wait_ready(server, "/v2/ServiceProviderConfig", {"Authorization": f"Bearer {token}"})
    return server


def start_bare(workdir: Path) -> Server:
    port = free_port()
    log_path = workdir / "bare.log"
    proc = start_process(uvicorn_cmd(BENCH_DIR, "bare_app:app", port), log_path)
    server = Server("bare", "bare Starlette", port, "/bare", "", proc, log_path)
    wait_ready(server, "/bare")
    return server


def start_floor(workdir: Path, tenant: str) -> Server:
    """bench/floor_app.py over the SQLite file of ``serve_provisor`` (read-only), for ``tenant``."""
    port = free_port()
    log_path = workdir / "floor.log"
    env = {"FLOOR_DB": str(workdir / "provisor.db"), "FLOOR_TENANT": tenant}
    proc = start_process(uvicorn_cmd(BENCH_DIR, "floor_app:app", port), log_path, env)
    server = Server("floor", "floor (one lookup)", port, "/scim/v2", "", proc, log_path)
    wait_ready(server, "/scim/v2/Users?filter=userName%20eq%20%22nobody%22")
    return server


def start_bare_one_write(workdir: Path) -> Server:
    """The bare app on Provisor's serving stack (uvicorn with ``provisor serve``'s coalescing)."""
    port = free_port()
    log_path = workdir / "bare-one-write.log"
    logged = ["--access-log"] if ACCESS_LOG else []
    proc = start_process(
        [sys.executable, str(BENCH_DIR / "bare_app.py"), "--port", str(port), *logged], log_path
    )
    server = Server("bare_c", "bare Starlette, one write", port, "/bare", "", proc, log_path)
    wait_ready(server, "/bare")
    return server


# --------------------------------------------------------------------------- data


def user_body(user_name: str, i: int) -> dict[str, Any]:
    """An Entra-shaped user: core attributes plus the enterprise extension."""
    return {
        "schemas": [CORE, ENTERPRISE],
        "userName": user_name,
        "externalId": f"ext-{user_name}",
        "active": True,
        "displayName": f"Bench User {i}",
        "name": {"givenName": "Bench", "familyName": f"User{i}", "formatted": f"Bench User{i}"},
        "title": "Engineer",
        "emails": [{"value": f"{user_name}@example.com", "type": "work", "primary": True}],
        "phoneNumbers": [{"value": f"+1 555 01{i % 100:02d}", "type": "work"}],
        "addresses": [
            {
                "type": "work",
                "streetAddress": f"{i} Main St",
                "locality": "Springfield",
                "postalCode": "12345",
                "country": "US",
                "primary": True,
            }
        ],
        ENTERPRISE: {"employeeNumber": str(i), "department": f"Dept {i % 50}", "costCenter": f"CC{i % 7}"},
    }


def patch_members(ids: list[str]) -> dict[str, Any]:
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": i} for i in ids]}],
    }


@dataclass
class Loaded:
    users: int = 0
    extra_users: int = 0
    groups: int = 0
    big_group_members: int = 0
    seconds: float = 0.0
    user_post_rate: float = 0.0
    user_names: list[str] = field(default_factory=list, repr=False)
    user_ids: list[str] = field(default_factory=list, repr=False)
    extra_ids: list[str] = field(default_factory=list, repr=False)
    small_group: str = ""
    big_group: str = ""


def connections(server: Server, n: int) -> list[Connection]:
    headers = {"Content-Type": "application/scim+json", "Accept": "application/scim+json"}
    if server.token:
        headers["Authorization"] = f"Bearer {server.token}"
    return [Connection(HOST, server.port, headers, REQUEST_TIMEOUT_S) for _ in range(n)]


async def _run_pool(
    conns: list[Connection], n: int, job: Callable[[Connection, int], Awaitable[None]], what: str
) -> float:
    """Run job(conn, 0..n-1) on one worker per connection; returns the elapsed seconds. Logs progress."""
    counter = iter(range(n))
    done = 0
    step = max(1, n // 10)
    start = time.perf_counter()

    async def worker(conn: Connection) -> None:
        nonlocal done
        for i in counter:
            await job(conn, i)
            done += 1
            if done % step == 0 and n >= 1000:
                rate = done / (time.perf_counter() - start)
                log(f"  {what}: {done}/{n} ({rate:.0f}/s)")

    await asyncio.gather(*(worker(c) for c in conns[: max(1, min(len(conns), n))]))
    return time.perf_counter() - start


async def load_server(
    server: Server,
    users: int,
    extras: int | None,
    groups: int,
    batch: int,
    duration: int,
    concurrency: int,
    tag: str,
) -> Loaded:
    loaded = Loaded()
    base = server.base_path
    conns = connections(server, concurrency)
    start = time.perf_counter()

    async def post(conn: Connection, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, data = await conn.request("POST", base + path, json.dumps(body).encode())
        if status != 201:
            raise RuntimeError(f"{server.label}: POST {path} -> {status}: {data[:500]!r}")
        result: dict[str, Any] = json.loads(data)
        return result

    async def make_users(n: int, prefix: str, names: list[str], ids: list[str]) -> float:
        names.extend(f"{prefix}{i:07d}" for i in range(n))
        ids.extend([""] * n)

        async def job(conn: Connection, i: int) -> None:
            ids[i] = (await post(conn, "/Users", user_body(names[i], i)))["id"]

        return await _run_pool(conns, n, job, f"{server.label} users")

    try:
        log(f"{server.label}: creating {users} users")
        seconds = await make_users(users, f"{tag}u", loaded.user_names, loaded.user_ids)
        loaded.users = users
        loaded.user_post_rate = users / seconds if seconds > 0 else 0.0
        # Enough non-member users for the member-add workloads at 1.5x the load rate, unless given.
        if extras is None:
            extras = min(max(users, 1000), max(1000, int(loaded.user_post_rate * duration * 1.5)))
        log(f"{server.label}: creating {extras} extra users (members of no group)")
        await make_users(extras, f"{tag}x", [], loaded.extra_ids)
        loaded.extra_users = extras

        ids = loaded.user_ids
        small = {
            "schemas": [GROUP],
            "displayName": f"{tag} small",
            "members": [{"value": i} for i in ids[:10]],
        }
        loaded.small_group = (await post(conns[0], "/Groups", small))["id"]
        everyone = {"schemas": [GROUP], "displayName": f"{tag} everyone"}
        loaded.big_group = (await post(conns[0], "/Groups", everyone))["id"]
        others = max(0, groups - 2)

        async def other_group(conn: Connection, g: int) -> None:
            members = [{"value": ids[(g * 5 + k) % len(ids)]} for k in range(5)]
            await post(
                conn, "/Groups", {"schemas": [GROUP], "displayName": f"{tag} group {g}", "members": members}
            )

        await _run_pool(conns, others, other_group, f"{server.label} groups")
        loaded.groups = 2 + others
        chunks = [ids[k : k + batch] for k in range(0, len(ids), batch)]
        log(f"{server.label}: adding {len(ids)} members to the big group in {len(chunks)} PATCH requests")
        for n, chunk in enumerate(chunks, 1):  # sequential: every batch changes the same group
            path = f"{base}/Groups/{loaded.big_group}"
            status, data = await conns[0].request("PATCH", path, json.dumps(patch_members(chunk)).encode())
            if status not in (200, 204):
                raise RuntimeError(f"{server.label}: PATCH {path} -> {status}: {data[:500]!r}")
            if n % max(1, len(chunks) // 5) == 0:
                log(f"  {server.label} big group: {min(n * batch, len(ids))} members")
        loaded.big_group_members = len(ids)
    finally:
        for conn in conns:
            await conn.close()
    loaded.seconds = time.perf_counter() - start
    return loaded


# --------------------------------------------------------------------------- workloads


@dataclass
class Workload:
    key: str
    title: str
    wrk_name: str
    data: list[str] | None = None  # what the request picks from (names or ids)
    group: str = ""
    consumes: bool = False  # patch_member: each value used once


@dataclass
class Result:
    workload: str
    title: str
    server: str
    loadgen: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    note: str = ""


def workloads_for(loaded: Loaded, size_label: str) -> list[Workload]:
    small_candidates = loaded.user_ids[10:]  # users not in the 10-member group
    return [
        Workload("get_filter", 'GET /Users?filter=userName eq "…"', "get_filter", loaded.user_names),
        Workload("get_id", "GET /Users/{id}", "get_id", loaded.user_ids),
        Workload("post_user", "POST /Users", "post_user"),
        Workload("patch_user", "PATCH /Users/{id} (replace displayName)", "patch_user", loaded.user_ids),
        Workload(
            "patch_small_group",
            "PATCH /Groups/{id} add 1 member (10-member group)",
            "patch_member",
            small_candidates,
            loaded.small_group,
            consumes=True,
        ),
        Workload(
            "patch_big_group",
            f"PATCH /Groups/{{id}} add 1 member ({size_label}-member group)",
            "patch_member",
            loaded.extra_ids,
            loaded.big_group,
            consumes=True,
        ),
    ]


def run_wrk(
    wrk: str, server: Server, workload: Workload, args: argparse.Namespace, tmp: Path, body_file: Path
) -> Result:
    data_file = tmp / f"{server.name}-{workload.key}.txt"
    values = list(workload.data or [])
    if workload.consumes:
        random.shuffle(values)
    data_file.write_text("\n".join(values) + "\n")
    env = {
        **os.environ,
        "BENCH_WORKLOAD": workload.wrk_name,
        "BENCH_BASE": server.base_path,
        "BENCH_DATA": str(data_file) if workload.data is not None else "",
        "BENCH_BODY": str(body_file),
        "BENCH_PREFIX": f"wrk{secrets.token_hex(3)}{server.name}",
        "BENCH_GROUP": workload.group,
    }
    cmd = [
        wrk,
        "-t1",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
    ]
    if server.token:
        cmd += ["-H", f"Authorization: Bearer {server.token}"]
    cmd.append(server.origin + "/")
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env=env,
        timeout=args.duration + 60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    m = re.search(r"^BENCH_JSON (\{.*\})$", out.stdout, re.MULTILINE)
    if out.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    stats = json.loads(m.group(1))
    seconds = stats["duration_us"] / 1e6
    if stats.get("ran_us"):  # patch_member ran out of non-members and stopped early
        seconds = stats["ran_us"] / 1e6
    errors = sum(stats[k] for k in ("connect", "read", "write", "status", "timeout"))
    note = ""
    if workload.consumes and stats["used"] > len(values):
        note = f"all {len(values)} non-members used: stopped after {seconds:.1f}s"
    return Result(
        workload.key,
        workload.title,
        server.name,
        "wrk",
        stats["requests"],
        round(seconds, 2),
        round(stats["requests"] / seconds, 1) if seconds else 0.0,
        round(stats["p50_us"] / 1000, 2),
        round(stats["p99_us"] / 1000, 2),
        errors,
        note,
    )


def run_python_load(
    server: Server, workload: Workload, args: argparse.Namespace, body_template: str
) -> Result:
    """The fallback load generator: asyncio, a keep-alive connection per worker, bounded in time and count."""
    values = list(workload.data or [])
    if workload.consumes:
        random.shuffle(values)
    consumed = iter(values)
    prefix = f"py{secrets.token_hex(3)}{server.name}"
    base = server.base_path
    latencies: list[float] = []
    errors = 0
    exhausted = False
    counter = 0
    max_requests = 5_000_000

    def next_request() -> tuple[str, str, bytes | None] | None:
        nonlocal counter
        counter += 1
        kind = workload.wrk_name
        if kind == "get_filter":
            return "GET", f"{base}/Users?" + query({"filter": f'userName eq "{random.choice(values)}"'}), None
        if kind == "get_id":
            return "GET", f"{base}/Users/{random.choice(values)}", None
        if kind == "post_user":
            return (
                "POST",
                f"{base}/Users",
                body_template.replace("@@USERNAME@@", f"{prefix}{counter}").encode(),
            )
        if kind == "patch_user":
            op = {"op": "replace", "path": "displayName", "value": f"Renamed {counter}"}
            body = json.dumps({"schemas": [PATCH_OP], "Operations": [op]}).encode()
            return "PATCH", f"{base}/Users/{random.choice(values)}", body
        if kind == "patch_member":
            member = next(consumed, None)
            if member is None:
                return None
            return "PATCH", f"{base}/Groups/{workload.group}", json.dumps(patch_members([member])).encode()
        return "GET", base, None

    async def main() -> float:
        nonlocal errors, exhausted
        conns = connections(server, args.connections)
        deadline = time.perf_counter() + args.duration

        async def worker(conn: Connection) -> None:
            nonlocal errors, exhausted
            while time.perf_counter() < deadline and counter < max_requests:
                req = next_request()
                if req is None:
                    exhausted = True
                    return
                t0 = time.perf_counter()
                try:
                    status, _ = await conn.request(*req)
                    if status >= 400:
                        errors += 1
                except HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        try:
            await asyncio.gather(*(worker(c) for c in conns))
        finally:
            for conn in conns:
                await conn.close()
        return time.perf_counter() - start

    seconds = asyncio.run(main())
    latencies.sort()
    p50 = statistics.median(latencies) if latencies else 0.0
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    note = f"all {len(values)} non-members used: stopped after {seconds:.1f}s" if exhausted else ""
    rps = round(len(latencies) / seconds, 1) if seconds else 0.0
    return Result(
        workload.key,
        workload.title,
        server.name,
        "python",
        len(latencies),
        round(seconds, 2),
        rps,
        round(p50 * 1000, 2),
        round(p99 * 1000, 2),
        errors,
        note,
    )


def smoke_check(server: Server, loaded: Loaded) -> None:
    """One request per read workload, so a benchmark of 404s or empty results cannot pass unnoticed."""
    import httpx

    headers = {"Authorization": f"Bearer {server.token}"}
    name, uid = loaded.user_names[0], loaded.user_ids[0]
    r = httpx.get(
        f"{server.base_url}/Users", params={"filter": f'userName eq "{name}"'}, headers=headers, timeout=30
    )
    if r.status_code != 200 or r.json().get("totalResults") != 1:
        raise RuntimeError(f"{server.label}: filter smoke check failed: {r.status_code} {r.text[:300]}")
    r = httpx.get(f"{server.base_url}/Users/{uid}", headers=headers, timeout=30)
    if r.status_code != 200 or r.json().get("id") != uid:
        raise RuntimeError(f"{server.label}: GET by id smoke check failed: {r.status_code} {r.text[:300]}")
    r = httpx.get(
        f"{server.base_url}/Groups/{loaded.big_group}",
        params={"excludedAttributes": "members"},
        headers=headers,
        timeout=60,
    )
    if r.status_code != 200:
        raise RuntimeError(
            f"{server.label}: GET big group smoke check failed: {r.status_code} {r.text[:300]}"
        )


# --------------------------------------------------------------------------- report


def fmt_ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def render_tables(results: list[Result], meta: dict[str, Any]) -> tuple[str, str]:
    by = {(r.workload, r.server): r for r in results}
    titles = meta["workload_titles"]
    bare = by.get(("bare_get", "bare"))
    bare_c = by.get(("bare_get", "bare_c"))
    order = ["bare_get", *[k for k in titles if k != "bare_get"]]
    plain = [
        f"{'workload':56s} {'server':15s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s} "
        f"{'P/peer':>7s} {'P/bare':>7s} {'P/bare1w':>8s} {'P/floor':>7s}"
    ]
    md = [
        "| workload | server | req/s | p50 (ms) | p99 (ms) | errors | Provisor/peer | Provisor/bare "
        "| Provisor/bare, one write | Provisor/floor |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in order:
        for server in ("provisor", "peer", "floor", "bare", "bare_c"):
            r = by.get((key, server))
            if r is None:
                continue
            vs_peer = vs_bare = vs_bare_c = vs_floor = ""
            if server == "provisor":
                peer, floor = by.get((key, "peer")), by.get((key, "floor"))
                vs_peer = fmt_ratio(r.rps, peer.rps) if peer else "-"
                vs_bare = fmt_ratio(r.rps, bare.rps) if bare else "-"
                vs_bare_c = fmt_ratio(r.rps, bare_c.rps) if bare_c else "-"
                vs_floor = fmt_ratio(r.rps, floor.rps) if floor else "-"
            elif server == "floor":
                vs_bare = f"({fmt_ratio(r.rps, bare.rps)})" if bare else "-"
            label = meta["server_labels"][server]
            note = f" ({r.note})" if r.note else ""
            plain.append(
                f"{r.title[:56]:56s} {label[:15]:15s} {r.rps:9.1f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} "
                f"{r.errors:7d} {vs_peer:>7s} {vs_bare:>7s} {vs_bare_c:>8s} {vs_floor:>7s}{note}"
            )
            md.append(
                f"| {r.title}{note} | {label} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
                f"{r.errors} | {vs_peer} | {vs_bare} | {vs_bare_c} | {vs_floor} |"
            )
    return "\n".join(plain), "\n".join(md)


def conditions(meta: dict[str, Any]) -> str:
    loads = meta["loaded"]
    parts = [
        f"{meta['date']}, {meta['machine']}, Python {meta['python']}; load generator: {meta['loadgen']} "
        f"(1 thread, {meta['connections']} connections, {meta['duration']} s per workload), same machine."
    ]
    for name, info in loads.items():
        parts.append(
            f"{meta['server_labels'][name]}: {info['users']:,} users + {info['extra_users']:,} extra, "
            f"{info['groups']} groups (big group: {info['big_group_members']:,} members), "
            f"loaded in {info['seconds']:.0f} s ({info['user_post_rate']:.0f} users/s), "
            f"RSS after loading {meta['rss_mb'].get(name, '?')} MiB, after every workload "
            f"{meta.get('rss_end_mb', {}).get(name, '?')} MiB."
        )
    parts.append(
        "Each member-add request adds a different user that is not yet a member, so the 10-member group "
        "grows during its run; the N-member group is every loaded user of that server."
    )
    if "bare" in meta["rss_mb"]:
        parts.append(f"bare Starlette RSS {meta['rss_mb']['bare']} MiB.")
    drift = meta.get("bare_drift")
    if drift:
        parts.append(
            f"The bare app answered {drift[0]:,.0f} req/s first and {drift[1]:,.0f} at the end: the ratios "
            "use the first; the box's drift during the run is the difference."
        )
    parts.append(
        "bare Starlette runs on stock uvicorn (the issue's ceiling); 'bare Starlette, one write' is the "
        "same app on Provisor's serving stack (uvicorn with `provisor serve`'s write coalescing)."
    )
    if "floor" in meta["rss_mb"]:
        parts.append(
            "'floor (one lookup)' is bench/floor_app.py over Provisor's SQLite file on stock uvicorn: the "
            "filtered GET with one indexed lookup and nothing else (raw ASGI, no authentication, no "
            "rendering, the stored document as stored), the least a SCIM server on this stack can do; "
            "its own ratio to the bare app is in parentheses."
        )
    parts.append(
        "Every server logs each request (uvicorn's access log; Provisor's JSON access log)."
        if meta["args"].get("access_log")
        else "No server logs requests (`--no-access-log` everywhere)."
    )
    return "\n".join(f"- {p}" for p in parts)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--users", type=int, default=100_000, help="users loaded into Provisor (default 100,000)")
    ap.add_argument(
        "--peer-users",
        type=int,
        default=10_000,
        help="users loaded into the scim2-server peer (default 10,000; capped at --users)",
    )
    ap.add_argument("--groups", type=int, default=100, help="groups per server (default 100, at least 2)")
    ap.add_argument(
        "--extra-users",
        type=int,
        default=None,
        help="users in no group, for the member-add workloads (default: 1.5x load rate x duration)",
    )
    ap.add_argument("--duration", type=int, default=10, help="seconds per workload and server (default 10)")
    ap.add_argument("--connections", type=int, default=16, help="load-generator connections (default 16)")
    ap.add_argument("--load-concurrency", type=int, default=16, help="concurrent requests while loading")
    ap.add_argument("--batch", type=int, default=1000, help="members per PATCH when building the big group")
    ap.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument("--no-peer", action="store_true", help="skip the scim2-server peer")
    ap.add_argument("--no-provisor", action="store_true", help="skip Provisor (checks the harness alone)")
    ap.add_argument("--keep", action="store_true", help="keep the working folder (databases, server logs)")
    ap.add_argument(
        "--access-log",
        action="store_true",
        help="every server logs each request, as each does by default (uvicorn's access log, Provisor's own)",
    )
    args = ap.parse_args(argv)
    args.groups = max(2, args.groups)
    args.peer_users = min(args.peer_users, args.users)
    if min(args.users, args.duration, args.connections, args.load_concurrency, args.batch) < 1:
        ap.error("--users, --duration, --connections, --load-concurrency and --batch must be positive")
    if args.users < 20:
        ap.error("--users must be at least 20")
    return args


def main(argv: list[str] | None = None) -> int:
    global ACCESS_LOG
    args = parse_args(argv)
    ACCESS_LOG = args.access_log
    ensure_python_deps()
    wrk = None if args.loadgen == "python" else ensure_wrk()
    if args.loadgen == "wrk" and wrk is None:
        raise SystemExit("wrk is not installed and could not be installed")
    if wrk:
        loadgen = "wrk (bench/wrk/scim.lua)"
    else:
        loadgen = "python asyncio" + (" (wrk unavailable)" if args.loadgen != "python" else "")
    log(f"load generator: {loadgen}")

    # SIGTERM/SIGHUP end the run through the finally clause below, which stops every server.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))

    workdir = Path(tempfile.mkdtemp(prefix="provisor-bench-"))
    servers: list[Server] = []
    results: list[Result] = []
    loads: dict[str, Loaded] = {}
    rss: dict[str, float | None] = {}
    rss_end: dict[str, float | None] = {}
    titles: dict[str, str] = {"bare_get": "GET, constant 1 KB JSON (bare Starlette)"}
    try:
        plan: list[tuple[Callable[[Path], Server], int]] = []
        if not args.no_provisor:
            plan.append((start_provisor, args.users))
        if not args.no_peer:
            plan.append((start_peer, args.peer_users))
        bare = start_bare(workdir)
        servers.append(bare)
        bare_c = start_bare_one_write(workdir)
        servers.append(bare_c)
        scim_servers: list[Server] = []
        for starter, _ in plan:
            server = starter(workdir)
            servers.append(server)
            scim_servers.append(server)
            log(f"{server.label} ready at {server.base_url} (pid {server.proc.pid})")
        tag = secrets.token_hex(2)
        for server, (_, users) in zip(scim_servers, plan, strict=True):
            loads[server.name] = asyncio.run(
                load_server(
                    server,
                    users,
                    args.extra_users,
                    args.groups,
                    args.batch,
                    args.duration,
                    args.load_concurrency,
                    tag,
                )
            )
            smoke_check(server, loads[server.name])
            log(f"{server.label}: loaded in {loads[server.name].seconds:.1f}s")
        floor = None
        if not args.no_provisor:
            floor = start_floor(workdir, "bench")
            servers.append(floor)
        for server in servers:
            rss[server.name] = server.rss_mb()

        body_file = workdir / "user.json"
        body_template = json.dumps(user_body("@@USERNAME@@", 0))
        body_file.write_text(body_template)

        def measure(server: Server, workload: Workload) -> None:
            waited = wait_idle(servers)
            if waited > 1.5:
                log(f"  waited {waited:.1f}s for the servers to finish earlier requests")
            log(f"measuring {workload.title} on {server.label}")
            if wrk:
                result = run_wrk(wrk, server, workload, args, workdir, body_file)
            else:
                result = run_python_load(server, workload, args, body_template)
            results.append(result)
            log(
                f"  {result.rps:.1f} req/s, p50 {result.p50_ms} ms, p99 {result.p99_ms} ms, "
                f"{result.errors} errors {result.note}"
            )

        measure(bare, Workload("bare_get", titles["bare_get"], "get_static"))
        measure(bare_c, Workload("bare_get", titles["bare_get"], "get_static"))
        n_label = {"provisor": f"{args.users:,}", "peer": f"{args.peer_users:,}"}
        per_server = {s.name: workloads_for(loads[s.name], n_label[s.name]) for s in scim_servers}
        for i, _ in enumerate(per_server[scim_servers[0].name] if scim_servers else []):
            for server in scim_servers:  # alternate servers workload by workload
                workload = per_server[server.name][i]
                titles.setdefault(workload.key, workload.title)
                measure(server, workload)
                if floor is not None and server.name == "provisor" and workload.key == "get_filter":
                    measure(floor, workload)  # the same userNames, right after Provisor
        # The ceiling again: how far this box drifted while the SCIM workloads ran.
        titles["bare_get_end"] = "GET, constant 1 KB JSON (bare Starlette), again at the end"
        measure(bare, Workload("bare_get_end", titles["bare_get_end"], "get_static"))
        for server in servers:
            rss_end[server.name] = server.rss_mb()
    finally:
        for server in servers:
            stop_process(server.proc)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"kept {workdir}")

    meta: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "loadgen": loadgen,
        "duration": args.duration,
        "connections": args.connections,
        "args": vars(args),
        "server_labels": {
            "provisor": "Provisor",
            "peer": "scim2-server",
            "bare": "bare Starlette",
            "bare_c": "bare Starlette, one write",
            "floor": "floor (one lookup)",
        },
        "workload_titles": titles,
        "loaded": {
            k: {f: v for f, v in asdict(x).items() if not isinstance(v, list)} for k, x in loads.items()
        },
        "rss_mb": rss,
        "rss_end_mb": rss_end,
    }
    bare_runs = [r.rps for r in results if r.server == "bare" and r.workload in ("bare_get", "bare_get_end")]
    meta["bare_drift"] = bare_runs if len(bare_runs) == 2 else None
    plain, md = render_tables(results, meta)
    print("\n" + plain + "\n")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"bench-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps({"meta": meta, "results": [asdict(r) for r in results]}, indent=2, default=str))
    print("Markdown for docs/benchmarks.md:\n")
    print(conditions(meta) + "\n\n" + md + "\n")
    print(f"RSS after loading (MiB): {json.dumps(rss)}")
    print(f"RSS after every workload (MiB): {json.dumps(rss_end)}")
    print(f"results written to {out.relative_to(REPO_ROOT)}")
    errors = sum(r.errors for r in results)
    if errors:
        print(
            f"warning: {errors} requests failed during measurement (see the errors column)", file=sys.stderr
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
