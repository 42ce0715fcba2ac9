"""Per-request latency and the garbage collector's pauses, in process, one request at a time.

    python bench/gc_pauses.py --db /tmp/b/s100k.db --workload get_filter --requests 40000

Calls the app as ``bench/inprocess.py`` does (ASGI scopes, no socket) over a store kept by
``bench/inprocess.py --save`` (its first tenant gets a new token), warms up with 2,000 requests,
then times each of --requests requests and records every collection the garbage collector makes
meanwhile (``gc.callbacks``). Prints the mean, p50, p99, p99.9 and the longest request in
microseconds, and per generation the collections, their total and their longest pause: a full
collection stops the event loop, and every request waiting on it, for tens of milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from typing import Any

import inprocess

#: (generation, seconds, objects collected) of each collection since the last clear.
_collections: list[tuple[int, float, int]] = []
_started = [0.0]


def _observe(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _collections.append((info["generation"], time.perf_counter() - _started[0], info["collected"]))


async def measure(url: str, workload: str, requests: int) -> None:
    from provisor.store.sql import SqlStore

    store = SqlStore(url)
    try:
        app, _, token, users = inprocess.serve_store(store, "gc_pauses")
        headers = [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {token}".encode())]
        sent: list[dict[str, Any]] = []
        request = inprocess._workload(workload, users, inprocess._caller(app, headers, sent))
        for _ in range(2000):  # warm up
            await request()
        sent.clear()
        gc.callbacks.append(_observe)
        _collections.clear()
        took = []
        for _ in range(requests):
            started = time.perf_counter()
            await request()
            took.append(time.perf_counter() - started)
            sent.clear()
        gc.callbacks.remove(_observe)
        app.close()
    finally:
        store.close()
    took.sort()
    us = [t * 1e6 for t in took]
    print(
        f"{workload}: {requests} requests, mean {sum(us) / len(us):.1f} us, p50 {us[len(us) // 2]:.1f}, "
        f"p99 {us[int(len(us) * 0.99)]:.1f}, p99.9 {us[int(len(us) * 0.999)]:.1f}, longest {us[-1]:.1f}"
    )
    if not _collections:
        print("  no garbage collection")
    for generation in sorted({g for g, _, _ in _collections}):
        pauses = [s for g, s, _ in _collections if g == generation]
        print(
            f"  generation {generation}: {len(pauses)} collections, {sum(pauses) * 1e3:.1f} ms in all, "
            f"longest {max(pauses) * 1e3:.2f} ms"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True, help="a store kept by bench/inprocess.py --save")
    ap.add_argument("--workload", choices=("get_filter", "get_id"), default="get_filter")
    ap.add_argument("--requests", type=int, default=40_000)
    args = ap.parse_args()
    asyncio.run(measure(f"sqlite:///{args.db}", args.workload, args.requests))
    return 0


if __name__ == "__main__":
    sys.exit(main())
