"""Write coalescing for uvicorn: a response's head and body leave in one ``send`` system call.

uvicorn writes the status line and headers to the socket as soon as the app sends
``http.response.start``, and the body as a second write on ``http.response.body``: two system calls
per response, and on a loopback or virtualised network each costs about as much as the whole
of a bare Starlette request's Python (measured: a bare Starlette app does 9,100-10,000 req/s with
stock uvicorn and 12,500-14,900 with this, on this project's 2-core machine).

:class:`CoalescingTransport` stands between uvicorn's protocol and the event loop's transport and
keeps every write made during one turn of the event loop, handing them to the real transport as
one buffer at the end of that turn (``loop.call_soon``). Nothing waits for more data: a response
goes out in the same loop iteration it was produced in, in order, and ``close`` writes what is
kept before closing. Flow control is untouched: the real transport still tells the protocol
to pause and resume writing, and it still buffers what the socket does not take.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from provisor.scim.errors import InvalidSyntax
from provisor.server.errors import error_body


class CoalescingTransport:
    """A transport proxy that joins the writes of one event-loop turn into one write."""

    __slots__ = ("_loop", "_pending", "_scheduled", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self._pending.append(bytes(data))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Hand everything kept to the real transport, as one buffer."""
        self._scheduled = False
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        if not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self._pending = []
        self.transport.abort()

    def __getattr__(self, name: str) -> Any:  # everything else is the real transport's
        return getattr(self.transport, name)


def _coalescing(transport: asyncio.Transport) -> asyncio.Transport:
    return cast(asyncio.Transport, CoalescingTransport(transport, asyncio.get_running_loop()))


#: The answer to bytes that are not an HTTP/1.1 request (malformed, or a request line or header
#: beyond what the parser takes): a SCIM Error like every other answer, where uvicorn's own is
#: plain text.
_NOT_HTTP = orjson.dumps(
    error_body(
        InvalidSyntax("the request is not valid HTTP/1.1: malformed, or a request line or header too long")
    )
)


def _send_scim_400(transport: asyncio.Transport, default_headers: list[tuple[bytes, bytes]]) -> None:
    head = [b"HTTP/1.1 400 Bad Request\r\n"]
    head += [name + b": " + value + b"\r\n" for name, value in default_headers]
    head += [
        b"content-type: application/scim+json\r\n",
        b"content-length: " + str(len(_NOT_HTTP)).encode() + b"\r\n",
        b"connection: close\r\n\r\n",
    ]
    transport.write(b"".join(head) + _NOT_HTTP)
    transport.close()


class CoalescingH11Protocol(H11Protocol):
    """uvicorn's pure-Python HTTP/1.1 protocol with coalesced writes."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_coalescing(transport))

    def send_400_response(self, msg: str) -> None:
        _send_scim_400(self.transport, self.server_state.default_headers)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools missing: uvicorn's own fallback is h11 too
    HttpToolsProtocol = None  # type: ignore[assignment, misc]

if HttpToolsProtocol is not None:

    class CoalescingHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools HTTP/1.1 protocol with coalesced writes."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(_coalescing(transport))

        def send_400_response(self, msg: str) -> None:
            _send_scim_400(self.transport, self.server_state.default_headers)


def coalescing_protocol() -> type[asyncio.Protocol]:
    """The fastest HTTP/1.1 protocol uvicorn has here (httptools when installed), coalescing."""
    if HttpToolsProtocol is None:
        return CoalescingH11Protocol
    return CoalescingHttpToolsProtocol
