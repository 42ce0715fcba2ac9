"""The floor for the benchmarks: a bare Starlette app answering GET /bare with a constant 1 KB JSON body.

Run: uvicorn --app-dir bench bare_app:app --host 127.0.0.1 --port PORT --no-access-log
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def _body(size: int = 1024) -> bytes:
    doc = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "0" * 32, "padding": ""}
    doc["padding"] = "x" * (size - len(json.dumps(doc, separators=(",", ":"))))
    return json.dumps(doc, separators=(",", ":")).encode()


BODY = _body()


async def bare(request: Request) -> Response:
    return Response(BODY, media_type="application/json")


app = Starlette(routes=[Route("/bare", bare)])
