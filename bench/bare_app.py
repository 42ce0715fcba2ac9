"""The floor for the benchmarks: a bare Starlette app answering GET /bare with a constant 1 KB JSON body.

Run: uvicorn --app-dir bench bare_app:app --host 127.0.0.1 --port PORT --no-access-log
(stock uvicorn, the issue's ceiling), or ``python bench/bare_app.py --port PORT`` for the same app
on Provisor's serving stack: uvicorn with the write-coalescing protocol of ``provisor serve``.
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


if __name__ == "__main__":
    import argparse

    import uvicorn

    from provisor.cli.coalescing import coalescing_protocol

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--access-log", action="store_true", help="uvicorn's access log on")
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        access_log=args.access_log,
        log_level="info" if args.access_log else "warning",
        http=coalescing_protocol(),
    )
