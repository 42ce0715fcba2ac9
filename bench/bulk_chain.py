"""/Bulk bulkId chains, in process: N Group POSTs where operation i names ``bulkId:b{i+1}`` as its
member (each runs the next first), run by ``BulkProcessor.run`` over a fresh SQLite file.

    PYTHONPATH=src python bench/bulk_chain.py 200 400 1000

Prints, per N, the seconds of the one ``run`` call and how many operations it tried (``_one``
calls): the passes over waiting operations used to try every waiting one again, n (n + 1) / 2
tries in all; now each is tried once, runs the POST it names first, and is tried again: 2n - 1.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from provisor.server.bulk import BULK_REQUEST, BulkProcessor
from provisor.server.service import ResourceService
from provisor.server.tenancy import context_for
from provisor.store.sql import SqlStore

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def chain(n: int) -> dict[str, Any]:
    ops = []
    for i in range(n):
        data: dict[str, Any] = {"schemas": [GROUP], "displayName": f"chain-{i}"}
        if i < n - 1:
            data["members"] = [{"value": f"bulkId:b{i + 1}"}]
        ops.append({"method": "POST", "path": "/Groups", "bulkId": f"b{i}", "data": data})
    return {"schemas": [BULK_REQUEST], "Operations": ops}


def measure(n: int) -> tuple[float, int, Counter[str]]:
    """Seconds of one ``run`` of a chain of ``n``, its tries, and its results' statuses."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore(f"sqlite:///{Path(tmp) / 'bulk.db'}")
        try:
            ctx = context_for(store.create_tenant("bench", {}), n)
            proc = BulkProcessor(
                ResourceService(store), store.registry, max_operations=n, logger=logging.error
            )
            tries = 0
            one = proc._one

            def counted(*args: Any) -> Any:
                nonlocal tries
                tries += 1
                return one(*args)

            proc._one = counted  # type: ignore[method-assign]
            body = chain(n)
            start = time.perf_counter()
            results = proc.run(ctx, body, "http://bench/scim/v2")["Operations"]
            seconds = time.perf_counter() - start
        finally:
            store.close()
    return seconds, tries, Counter(r["status"] for r in results)


def main(sizes: list[int]) -> None:
    for n in sizes:
        seconds, tries, statuses = measure(n)
        print(f"n={n}: {seconds:.2f} s, {tries} tries, statuses {dict(statuses)}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [200, 400, 1000])
