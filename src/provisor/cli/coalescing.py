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

The protocols also answer what uvicorn answers in plain text with a SCIM Error: bytes that are
not HTTP/1.1 (400), and, on httptools, a request head (request line and headers) beyond
:data:`MAX_HEAD_BYTES` (431), which httptools would otherwise hold in memory however large,
before any authentication (h11 has its own limit, 16 KiB, and answers 400).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from provisor.scim.errors import HeadersTooLarge, InvalidSyntax
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

#: The most a request's head (request line and headers) may take; Entra's are well under 4 KiB.
MAX_HEAD_BYTES = 64 * 1024


_HEAD_TOO_LARGE = orjson.dumps(
    error_body(HeadersTooLarge(f"the request line and headers are larger than {MAX_HEAD_BYTES} bytes"))
)


def _send_scim_error(
    transport: asyncio.Transport,
    default_headers: list[tuple[bytes, bytes]],
    status_line: bytes = b"400 Bad Request",
    body: bytes = _NOT_HTTP,
) -> None:
    head = [b"HTTP/1.1 " + status_line + b"\r\n"]
    head += [name + b": " + value + b"\r\n" for name, value in default_headers]
    head += [
        b"content-type: application/scim+json\r\n",
        b"content-length: " + str(len(body)).encode() + b"\r\n",
        b"connection: close\r\n\r\n",
    ]
    transport.write(b"".join(head) + body)
    transport.close()


class CoalescingH11Protocol(H11Protocol):
    """uvicorn's pure-Python HTTP/1.1 protocol with coalesced writes."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_coalescing(transport))

    def send_400_response(self, msg: str) -> None:
        _send_scim_error(self.transport, self.server_state.default_headers)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools missing: uvicorn's own fallback is h11 too
    HttpToolsProtocol = None  # type: ignore[assignment, misc]

if HttpToolsProtocol is not None:

    class CoalescingHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools HTTP/1.1 protocol with coalesced writes and a bounded request head."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._in_head = True  # until the current request's headers are complete
            self._head_done = False  # whether a head completed in the chunk being fed
            self._head_bytes = 0
            super().connection_made(_coalescing(transport))

        def on_message_begin(self) -> None:
            self._in_head = True
            self._head_bytes = 0
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._head_done = True
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            self._head_done = False
            super().data_received(data)
            if self._in_head and not self.transport.is_closing():
                # a head still incomplete after this chunk: httptools keeps its bytes. A chunk in
                # which an earlier (pipelined) head completed is not counted: its bytes are
                # mostly that request's, and one chunk is bounded by the event loop's read size.
                self._head_bytes += 0 if self._head_done else len(data)
                if self._head_bytes > MAX_HEAD_BYTES:
                    _send_scim_error(
                        self.transport,
                        self.server_state.default_headers,
                        b"431 Request Header Fields Too Large",
                        _HEAD_TOO_LARGE,
                    )

        def send_400_response(self, msg: str) -> None:
            _send_scim_error(self.transport, self.server_state.default_headers)


def coalescing_protocol() -> type[asyncio.Protocol]:
    """The fastest HTTP/1.1 protocol uvicorn has here (httptools when installed), coalescing."""
    if HttpToolsProtocol is None:
        return CoalescingH11Protocol
    return CoalescingHttpToolsProtocol
