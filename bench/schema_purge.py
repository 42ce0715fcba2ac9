"""What purging an extension's values from a large store does to a running server's writes.

    PYTHONPATH=src python bench/schema_purge.py --users 100000

1. Builds a store of --users Users in --groups groups in tenant ``bench`` (``bench/inprocess.py``'s
   ``build_store``; or copies --db, a store it or ``inprocess.py --save`` kept), declares an
   extension with ``provisor schema add``, and gives every --every-th User a value of it (in SQL,
   as a document the server would store). Then starts ``provisor serve`` on it (no access log)
   with a second tenant, ``other``.
2. --writers threads POST Users to ``other`` one after another, each on its own keep-alive
   connection: --before seconds alone, then while ``provisor schema remove URN --purge`` runs in
   another process, then --after seconds more.
3. Prints how long the purge took, and for the writes before and during it: how many, how many
   were answered 503 (the server's write waited past its busy timeout), the median, the 99th
   percentile and the longest time a write took.

To compare with another commit, run the same command with that commit's sources first on the path
(the server and the purging command both run with it); each run works on its own copy of the store.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from tenant_delete import PROVISOR, beside_writers, report

URN = "urn:example:scim:schemas:extension:Bench:2.0:User"
DEFINITION = {"id": URN, "attributes": [{"name": "costCode", "type": "string"}]}


def declare(db: str, path: Path, every: int) -> int:
    """Declare URN and give every ``every``-th User a value of it; returns how many hold one."""
    definition = path.parent / "extension.json"
    definition.write_text(json.dumps(DEFINITION), "utf-8")
    subprocess.run([*PROVISOR, "schema", "add", str(definition), "--db", db], capture_output=True, check=True)
    with sqlite3.connect(path) as conn:
        # the extension's object appended last, where the store keeps an extension declared last
        value = json.dumps({"costCode": "CC-1"})
        done = conn.execute(
            "UPDATE resources SET data = json_insert(data, ?, json(?)) "
            "WHERE resource_type = 'User' AND pk % ? = 0",
            (f'$."{URN}"', value, every),
        )
        return done.rowcount


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--groups", type=int, default=100)
    ap.add_argument("--db", help="copy this store (tenant 'bench') instead of building one")
    ap.add_argument("--every", type=int, default=1, help="every how many Users holds a value (default 1)")
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--before", type=float, default=3.0)
    ap.add_argument("--after", type=float, default=2.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="provisor-schema-purge-") as tmp:
        path = Path(tmp) / "bench.db"
        if args.db:
            shutil.copyfile(args.db, path)
        else:
            from inprocess import build_store

            build_store(f"sqlite:///{path}", args.users, args.groups)
        db = f"sqlite:///{path}"
        holders = declare(db, path, args.every)
        began, ended, writers = beside_writers(
            db, ["schema", "remove", URN, "--purge"], args.writers, args.before, args.after
        )
        with sqlite3.connect(path) as conn:
            left = conn.execute(
                "SELECT count(*) FROM resources WHERE data LIKE ?", (f'%"{URN}":%',)
            ).fetchone()[0]
    headline = f"schema remove --purge of {holders:,} users' values: {ended - began:.2f} s ({left} left)"
    report(headline, began, ended, writers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
