"""The floor under Entra's match query on this stack: the least any SCIM server on uvicorn and SQLite
can do for ``GET /Users?filter=userName eq "..."``.

A raw ASGI app (no Starlette routing, no Request object) on stock uvicorn that reads the userName
out of the query string, runs one indexed lookup on a Provisor SQLite file (read-only) and answers a
ListResponse holding the stored document as stored: no authentication, no validation of the query,
no ``groups``, no ``meta``, no rendering, no metrics. Any real SCIM server does more than this, so
its filtered GET cannot answer faster than this app does on the same machine in the same minute.
bench/run.py measures it beside Provisor and the bare Starlette app ("Provisor/floor").

Run: FLOOR_DB=<path to a Provisor SQLite file> FLOOR_TENANT=<tenant name> \
     uvicorn --app-dir bench floor_app:app --host 127.0.0.1 --port PORT --no-access-log
"""

from __future__ import annotations

import os
import re
import sqlite3
from typing import Any
from urllib.parse import unquote_plus

from provisor.store.sql.values import fold

_EQ = re.compile(r'userName eq "([^"]*)"')
_LOOKUP = (
    "SELECT data FROM resources WHERE tenant_id = ? AND resource_type = 'User' AND user_name_key = ? LIMIT 2"
)
_HEAD = (
    b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],'
    b'"totalResults":%d,"itemsPerPage":%d,"startIndex":1,"Resources":['
)
_JSON = (b"content-type", b"application/scim+json")


class FloorApp:
    """The ASGI app over one SQLite file and one tenant (looked up by name when first called)."""

    def __init__(self, path: str, tenant: str) -> None:
        self.path = path
        self.tenant_name = tenant
        self._db: sqlite3.Connection | None = None
        self._tenant = ""

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
        row = db.execute("SELECT id FROM tenants WHERE name = ?", (self.tenant_name,)).fetchone()
        if row is None:
            raise RuntimeError(f"no tenant {self.tenant_name!r} in {self.path}")
        self._tenant = row[0]
        self._db = db
        return db

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        db = self._db or self._open()
        raw = scope["query_string"].decode("latin-1")
        found = _EQ.search(unquote_plus(raw.partition("filter=")[2].partition("&")[0]))
        if found is None:
            status, body = 400, b'{"detail":"only filter=userName eq \\"...\\" is answered here"}'
        else:
            rows = db.execute(_LOOKUP, (self._tenant, fold(found.group(1)))).fetchall()
            status = 200
            body = _HEAD % (len(rows), len(rows)) + b",".join(r[0].encode() for r in rows) + b"]}"
        headers = [_JSON, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


app = FloorApp(os.environ.get("FLOOR_DB", ""), os.environ.get("FLOOR_TENANT", "bench"))
