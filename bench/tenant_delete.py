"""What deleting a large tenant does to the other tenants' writes on the same database.

    PYTHONPATH=src python bench/tenant_delete.py --users 100000

1. Builds a store of --users Users in --groups groups in tenant ``bench`` (``bench/inprocess.py``'s
   ``build_store``; or copies --db, a store it or ``inprocess.py --save`` kept), and starts
   ``provisor serve`` on it (no access log) with a second tenant, ``other``.
2. --writers threads POST Users to ``other`` one after another, each on its own keep-alive
   connection: --before seconds alone, then while ``provisor tenant delete bench --yes`` runs in
   another process, then --after seconds more.
3. Prints how long the deletion took, and for the writes before and during it: how many, how
   many were answered 503 (the server's write waited past its busy timeout), the median, the
   99th percentile and the longest time a write took.

To compare with another commit, run the same command with that commit's sources first on the path
(the server and the deleting command both run with it); each run works on its own copy of the store.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

PROVISOR = [sys.executable, "-m", "provisor.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Writers:
    """Threads that POST Users to one tenant and record (start, seconds, status) for each."""

    def __init__(self, base: str, token: str, count: int) -> None:
        self.base = base
        self.token = token
        self.done = threading.Event()
        self.records: list[tuple[float, float, int]] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(count)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self.done.set()
        for t in self._threads:
            t.join()

    def _run(self, n: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/scim+json"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=60) as client:
            i = 0
            while not self.done.is_set():
                i += 1
                body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"w{n}-{i}"}
                started = time.monotonic()
                status = client.post("/Users", json=body).status_code
                with self._lock:
                    self.records.append((started, time.monotonic() - started, status))


@contextmanager
def serving(db: str) -> Iterator[str]:
    """``provisor serve`` on ``db`` (no access log) until the block ends; yields its SCIM base URL."""
    port = free_port()
    server = subprocess.Popen(
        [*PROVISOR, "serve", "--db", db, "--port", str(port), "--no-access-log"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server never answered")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/scim/v2"
    finally:
        server.terminate()
        server.wait(30)


def summary(records: list[tuple[float, float, int]]) -> str:
    if not records:
        return "no writes"
    took = sorted(r[1] for r in records)
    busy = sum(1 for r in records if r[2] == 503)
    other = sum(1 for r in records if r[2] not in (201, 503))
    p99 = took[min(len(took) - 1, int(len(took) * 0.99))]
    return (
        f"{len(records):,} writes, {busy} answered 503, {other} other non-201; median "
        f"{statistics.median(took) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, longest {took[-1] * 1000:.0f} ms"
    )


def beside_writers(
    db: str, command: list[str], writers: int, before: float, after: float
) -> tuple[float, float, Writers]:
    """Serve ``db`` with a second tenant, ``other``, and run ``command`` (a ``provisor`` command's
    arguments) in another process while ``writers`` threads POST Users to ``other``: ``before``
    seconds alone, then during the command, then ``after`` seconds more. Returns when the command
    began and ended (``time.monotonic``) and the writers with their records."""
    made = subprocess.run(
        [*PROVISOR, "tenant", "create", "other", "--db", db], capture_output=True, text=True, check=True
    )
    token = made.stdout.strip().splitlines()[-1]
    with serving(db) as base:
        posting = Writers(base, token, writers)
        posting.start()
        time.sleep(before)
        began = time.monotonic()
        subprocess.run(
            [*PROVISOR, *command, "--db", db],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ended = time.monotonic()
        time.sleep(after)
        posting.stop()
    return began, ended, posting


def report(headline: str, began: float, ended: float, writers: Writers) -> None:
    """Print ``headline`` (what ran, and how long it took) and the other tenant's writes before
    and during it."""
    import provisor

    before = [r for r in writers.records if r[0] + r[1] < began]
    during = [r for r in writers.records if r[0] < ended and r[0] + r[1] >= began]
    print(f"provisor from {Path(provisor.__file__).parent}; {os.cpu_count()} CPUs")
    print(headline)
    print(f"writes of another tenant before it: {summary(before)}")
    print(f"writes of another tenant during it: {summary(during)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--groups", type=int, default=100)
    ap.add_argument("--db", help="copy this store (tenant 'bench') instead of building one")
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--before", type=float, default=3.0)
    ap.add_argument("--after", type=float, default=2.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="provisor-tenant-delete-") as tmp:
        path = Path(tmp) / "bench.db"
        if args.db:
            shutil.copyfile(args.db, path)
        else:
            sys.path.insert(0, str(Path(__file__).parent))
            from inprocess import build_store

            build_store(f"sqlite:///{path}", args.users, args.groups)
        db = f"sqlite:///{path}"
        began, ended, writers = beside_writers(
            db, ["tenant", "delete", "bench", "--yes"], args.writers, args.before, args.after
        )
    report(
        f"tenant delete of {args.users:,} users in {args.groups} groups: {ended - began:.2f} s",
        began,
        ended,
        writers,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
