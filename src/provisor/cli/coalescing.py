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

The protocol is uvicorn's httptools one, the only one ``provisor serve`` runs on: uvicorn's
other, h11, has none of what follows, so without httptools (a dependency, which an install
without dependencies can leave out) :func:`coalescing_protocol` refuses to serve rather than
serve unprotected.

The protocol also answers what uvicorn answers in plain text with a SCIM Error: bytes that are
not HTTP/1.1 (400), a request head (request line and headers) beyond :data:`MAX_HEAD_BYTES`
(431), which httptools would otherwise hold in memory however large, before any authentication,
and a request past uvicorn's ``limit_concurrency`` (503, with ``Retry-After``), or on a
connection past the config's ``max_connections_per_client`` from its client's address (the same
503; off unless configured: behind a reverse proxy every connection has the proxy's address).

Slow clients are timed out too (slowloris: uvicorn times out only an idle
keep-alive connection, so a connection that sends half a request head, or a body a byte now and
then, would otherwise be held for good, before any authentication). A request head must be
complete within ``header_timeout`` seconds of its first byte (of the connection's opening, for
its first request), and a body that is expected must not pause for ``body_timeout`` seconds nor
take more than :data:`BODY_DEADLINE_FACTOR` of them in all; else the connection is answered 408
(when nothing was answered yet) and closed. That holds after an answer too: a request answered
before its body came in full (a 401 before authentication) has the rest of its body read and
dropped within the same time, as nginx's lingering close does, rather than closed at once, which
would reset the connection and could lose the answer on its way to the client. The timeouts are
attributes of the uvicorn config (``cli/serving.py``), :data:`HEADER_TIMEOUT` and
:data:`BODY_TIMEOUT` by default. One timer a connection does it, armed when the connection opens
and again only when a chunk leaves a head or body unfinished: a request that arrives in one
chunk, as nearly all do, arms and cancels none after the connection's first.

Clients that do not read their answers are timed out as well. uvicorn stops writing when the
transport holds more than its high-water mark (64 KiB) that the socket did not take, and the app's
next ``send`` waits for it to drain, without a limit; a transport's ``close`` waits the same way for
what it holds. So a client that sends requests and reads none of the answers would hold the
connection, and the answers in memory (a page of 1,000 Users can be megabytes), for good. While writing
is paused, and while a close waits on bytes (:meth:`CoalescingTransport.close` lowers the
transport's high-water mark to 0, so that it pauses too), a second timer looks at the bytes left
every :data:`WRITE_CHECKS`-th of ``write_timeout``; when none of them left for ``write_timeout``
seconds, the connection is aborted, and the app's pending ``send`` returns as after a client's
disconnect (uvicorn's ``connection_lost`` releases it). Any progress restarts the time: a client
that reads slowly is not cut off. Over TLS the bytes the TCP transport beneath holds count too
(``cli/tls.py``). Nothing of it runs while the socket takes every write.

A connection that has not sent a complete request head yet is a newcomer (``cli/newcomers.py``):
past ``--max-connections`` of them the oldest is dropped, so connections that stay silent cannot
run the process out of file descriptors, and uvicorn's ``limit_concurrency`` does not count them,
so neither can they take the served connections' places. Over TLS the TLS protocol is the
newcomer, from the TCP connection's opening (``cli/tls.py``); the HTTP protocol settles it when
its first head is complete.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit

import orjson
from uvicorn.protocols.http.flow_control import service_unavailable

from provisor.cli.newcomers import Newcomer, Newcomers
from provisor.scim.errors import (
    HeadersTooLarge,
    InvalidSyntax,
    RequestTimeout,
    ServiceUnavailable,
    UriTooLong,
    VersionNotSupported,
)
from provisor.server.errors import error_body
from provisor.server.http import ANSWERED

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send


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
        transport = self.transport
        if not transport.is_closing() and transport.get_write_buffer_size():
            # bytes the socket did not take: the protocol is paused until the last has left, so
            # that the write timeout bounds the close as it bounds a pause
            transport.set_write_buffer_limits(high=0)
        transport.close()

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

#: The longest request target (path and query) taken: the most httptools' URL parser reads.
MAX_TARGET_BYTES = 65_535

_TARGET_TOO_LONG = orjson.dumps(
    error_body(
        UriTooLong(
            f"the request target (path and query) is longer than {MAX_TARGET_BYTES} bytes; send a long "
            "filter in the body of a POST to .../.search (RFC 7644 section 3.4.3)"
        )
    )
)


class _Refused(Exception):
    """Raised in a parser callback to stop reading a request the protocol answers itself
    (``refused``); httptools passes it on as a parser error, and uvicorn then calls
    ``send_400_response``."""


#: Seconds a request head may take from its first byte (for a connection's first request, from
#: the connection's opening) until it is complete.
HEADER_TIMEOUT = 10.0

#: Seconds a request body may pause (no bytes arrive while more are expected).
BODY_TIMEOUT = 30.0

#: A body must be complete within this many body timeouts of its first bytes (60 s by default:
#: the 1 MiB largest body at 17 KiB a second), so a client sending a byte now and then, never
#: pausing for a whole timeout, cannot hold the connection either.
BODY_DEADLINE_FACTOR = 2

#: Seconds writing to a connection may stay stalled (paused, or closing, with none of the bytes
#: kept leaving) before it is aborted. As long as a body may pause (BODY_TIMEOUT): no client that
#: reads its answers stalls that long (Entra reads each as it comes). Half nginx's send_timeout
#: (60 s), as a stalled connection here holds its answers in the process's memory.
WRITE_TIMEOUT = 30.0

#: How often in a write timeout a stalled connection's bytes left are looked at: progress seen
#: within a quarter of the timeout at worst, so a connection is cut 1 to 1.25 timeouts after its
#: last progress.
WRITE_CHECKS = 4

_TIMED_OUT = orjson.dumps(
    error_body(RequestTimeout("the request was not sent in time; send it again on a new connection"))
)

#: The HTTP versions a request line may name (RFC 9112 section 2.3): HTTP/1.x. httptools also
#: reads ``HTTP/2.0`` (a request line of HTTP/1.1's form: HTTP/2 has none) and a line without a
#: version (HTTP/0.9); answering either as HTTP/1.1 is answering what the client did not ask.
_VERSIONS = frozenset({"1.0", "1.1"})
_VERSION_NOT_SUPPORTED = orjson.dumps(
    error_body(VersionNotSupported("Provisor speaks HTTP/1.1 (and 1.0): send the request as HTTP/1.1"))
)

_UPGRADE_WITH_BODY = orjson.dumps(
    error_body(
        InvalidSyntax(
            "Upgrade is not supported, and a request asking for one cannot carry a body here; "
            "send it without the Upgrade header"
        )
    )
)

_OVER_CAPACITY = orjson.dumps(
    error_body(ServiceUnavailable("the server is serving as many connections as it takes; retry shortly"))
)


#: What the protocol tells of each request it answers itself, before the app: ``(method, path,
#: status, client)``, method and path None when not read (the app's ``refused``, which counts and
#: logs it; set on the uvicorn config as ``on_refused`` by ``cli/serving.py``).
OnRefused = Callable[[str | None, str | None, int, str], None]


async def _over_capacity(on_refused: OnRefused | None, scope: Scope, receive: Receive, send: Send) -> None:
    """uvicorn's answer past ``limit_concurrency`` (``service_unavailable``), as a SCIM Error."""
    if on_refused is not None:
        on_refused(scope["method"], scope["path"], 503, (scope.get("client") or ("", 0))[0])
    headers = [
        (b"content-type", b"application/scim+json"),
        (b"content-length", str(len(_OVER_CAPACITY)).encode()),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": _OVER_CAPACITY})


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


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools missing: coalescing_protocol says so
    HttpToolsProtocol = None  # type: ignore[assignment, misc]

if HttpToolsProtocol is not None:

    class CoalescingHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools HTTP/1.1 protocol with coalesced writes, a bounded request head,
        read and write timeouts, and newcomers capped (the module's docstring)."""

        #: When the TCP connection opened, on the event loop's clock, when that was before
        #: ``connection_made`` (set by ``cli/tls.py`` before a TLS handshake).
        opened_at: float | None = None
        #: What the server's newcomers hold for this connection until its first request head is
        #: complete: the TLS protocol (set by ``cli/tls.py``), else this protocol.
        newcomer: Newcomer | None = None
        #: The TCP transport beneath a TLS one (set by ``cli/tls.py``): the bytes it holds count
        #: as the answers' too, for the write timeout.
        beneath: asyncio.WriteTransport | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            #: The status line and body of the answer to a request refused while it is read.
            self._refused: tuple[bytes, bytes] | None = None
            self._in_head = True  # until the current request's headers are complete
            self._head_done = False  # whether a head completed in the chunk being fed
            self._head_bytes = 0
            self._head_begun = False  # a request's first byte came, its head is not complete
            self._in_body = False  # a request's head is complete, its body is not
            self._last_read = 0.0  # when the last chunk came, while _in_body
            self._body_deadline = 0.0  # when the body must be complete, once its first bytes came
            self._header_timeout: float = getattr(self.config, "header_timeout", HEADER_TIMEOUT)
            self._body_timeout: float = getattr(self.config, "body_timeout", BODY_TIMEOUT)
            self._write_timeout: float = getattr(self.config, "write_timeout", WRITE_TIMEOUT)
            self._write_timer: asyncio.TimerHandle | None = None
            self._write_left = 0  # bytes the transport held when last looked at, while stalled
            self._write_moved = 0.0  # when some of them last left
            self._eof = False  # the client half-closed: close once its requests are answered
            self._parsed = False  # see data_received
            super().connection_made(_coalescing(transport))
            self._on_refused: OnRefused | None = getattr(self.config, "on_refused", None)
            self._over_capacity = functools.partial(_over_capacity, self._on_refused)
            newcomers: Newcomers | None = getattr(self.config, "newcomers", None)
            self._newcomers = newcomers
            self._limit: int | None = None  # uvicorn's limit_concurrency, newcomers not counted
            if newcomers is not None:
                if self.newcomer is None:
                    self.newcomer = self
                    newcomers.arrived(self)
                newcomers.counted += 1
                self._limit = self.limit_concurrency
            self._counted_as: str | None = None
            if getattr(self.config, "max_connections_per_client", 0):
                self._count_client()
            # the first head's time runs from the connection's opening: over TLS that was before
            # the handshake, and the TLS protocol says when (cli/tls.py)
            opened = self.opened_at
            if opened is None:
                opened = self.loop.time()
            self._read_timer: asyncio.TimerHandle | None = self.loop.call_at(
                opened + self._header_timeout, self._read_timed_out
            )

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_read_timer()
            if self._write_timer is not None:
                self._write_timer.cancel()
                self._write_timer = None
            if self.newcomer is not None:
                self._settle()
            if self._counted_as is not None:
                counts: dict[str, int] = self.config.connections_per_client  # type: ignore[attr-defined]
                left = counts[self._counted_as] - 1
                if left:
                    counts[self._counted_as] = left
                else:
                    del counts[self._counted_as]
                self._counted_as = None
            super().connection_lost(exc)

        def _count_client(self) -> None:
            """Count the connection under its client's address; past the config's
            ``max_connections_per_client`` its requests are answered as past ``limit_concurrency``
            (503, with ``Retry-After``): the connection's app is that answer, so a request pays
            nothing for the count."""
            if self.client is None:  # not an IP socket: no address to count under
                return
            host = self.client[0]
            counts: dict[str, int] = self.config.connections_per_client  # type: ignore[attr-defined]
            counts[host] = held = counts.get(host, 0) + 1
            self._counted_as = host
            if held > self.config.max_connections_per_client:  # type: ignore[attr-defined]
                self.app = self._over_capacity

        def on_message_begin(self) -> None:
            self._parsed = True
            self._in_head = True
            self._head_bytes = 0
            self._head_begun = True
            super().on_message_begin()

        def drop(self) -> None:
            """Close the connection at once: a newcomer past the cap, with no request to answer."""
            self.transport.abort()

        def _settle(self) -> None:
            """The connection is no newcomer any more (its first head came, or it closed)."""
            newcomers = self._newcomers
            if newcomers is not None and self.newcomer is not None:
                newcomers.settled(self.newcomer)
                newcomers.counted -= 1
            self.newcomer = None

        def on_url(self, url: bytes) -> None:
            super().on_url(url)  # called for each part of the target that came in a chunk
            if len(self.url) > MAX_TARGET_BYTES:
                self._refused = (b"414 URI Too Long", _TARGET_TOO_LONG)
                raise _Refused

        def on_headers_complete(self) -> None:
            # the head whole, counted exactly (data_received counts only the chunks after which
            # a head was still incomplete, to bound what httptools keeps): the request line's
            # method and version are a few bytes, each header line its name, value and ": \r\n"
            size = len(self.url) + 16
            for name, value in self.headers:
                size += len(name) + len(value) + 4
            if size > MAX_HEAD_BYTES:
                self._refused = (b"431 Request Header Fields Too Large", _HEAD_TOO_LARGE)
                raise _Refused
            if self.parser.get_http_version() not in _VERSIONS:
                self._refused = (b"505 HTTP Version Not Supported", _VERSION_NOT_SUPPORTED)
                raise _Refused
            if self.url[:8].lower().startswith((b"http://", b"https://")):
                self._target_names_host()
            if self.newcomer is not None:  # the connection's first request: no newcomer any more
                self._settle()
            newcomers = self._newcomers
            if newcomers is not None and self._limit is not None:
                # uvicorn's 503 counts its connections, newcomers among them: they are capped
                # apart (cli/newcomers.py), so its limit is raised by as many
                self.limit_concurrency = self._limit + newcomers.counted
            self._in_head = False
            self._head_done = True
            self._head_begun = False
            self._in_body = True  # until on_message_complete, in this chunk when there is none
            self._body_deadline = 0.0  # set when the body's first bytes come
            if self._read_timer is not None:
                self._cancel_read_timer()
            if self.expect_100_continue and self.parser.get_http_version() == "1.0":
                # RFC 9110 sections 10.1.1 and 15.2: no 1xx to an HTTP/1.0 client; ignore it
                self.expect_100_continue = False
            super().on_headers_complete()

        def _target_names_host(self) -> None:
            """A request target in absolute form (``GET http://host/scim/v2/Users``) names the
            host the request is for: RFC 9112 section 3.2.2 has a server ignore the Host header
            then, and section 3.3 takes the target's scheme too. So the ``Host`` the app reads
            (and builds ``Location`` and ``meta.location`` from) is the target's authority. A
            request without a Host header, or with several, is left to be refused 400 as any
            such HTTP/1.1 request is (section 3.2: a client MUST send one)."""
            hosts = [i for i, (name, _) in enumerate(self.headers) if name == b"host"]
            try:
                target = urlsplit(self.url.decode("latin-1"))
            except ValueError:  # an IPv6 authority left open: uvicorn's own parse refuses the request
                return
            authority = target.netloc.rpartition("@")[2]  # without any userinfo
            if len(hosts) != 1 or not authority:
                return
            self.headers[hosts[0]] = (b"host", authority.encode("latin-1"))
            self.scope["scheme"] = target.scheme.lower()

        def on_body(self, body: bytes) -> None:
            self._parsed = True
            super().on_body(body)

        def on_message_complete(self) -> None:
            self._parsed = True
            self._in_body = False
            if self._read_timer is not None:
                self._cancel_read_timer()
            super().on_message_complete()

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            # past limit_concurrency uvicorn runs its plain-text service_unavailable instead of the app
            super()._start_asgi_task(cycle, self._over_capacity if app is service_unavailable else app)

        def data_received(self, data: bytes) -> None:
            self._head_done = False
            self._parsed = False  # whether the parser began, went on with or ended a request
            super().data_received(data)
            if self._in_head and not self.transport.is_closing():
                # a head still incomplete after this chunk: httptools keeps its bytes. A chunk in
                # which an earlier (pipelined) head completed is not counted: its bytes are
                # mostly that request's, and one chunk is bounded by the event loop's read size.
                self._head_bytes += 0 if self._head_done else len(data)
                if self._head_bytes > MAX_HEAD_BYTES:
                    self._refuse(431)
                    _send_scim_error(
                        self.transport,
                        self.server_state.default_headers,
                        b"431 Request Header Fields Too Large",
                        _HEAD_TOO_LARGE,
                    )
            if self._in_body:
                self._last_read = self.loop.time()
                if self._body_deadline == 0.0:  # the request's first body bytes: its whole time
                    self._body_deadline = self._last_read + BODY_DEADLINE_FACTOR * self._body_timeout
                if self._read_timer is None:
                    self._read_timer = self.loop.call_later(self._body_timeout, self._read_timed_out)
            elif self._read_timer is None and (self._head_begun or not self._parsed):
                # a head begun, or bytes the parser made nothing of (empty lines, which RFC 9112
                # section 2.2 lets a server skip): uvicorn stopped its keep-alive timer for them,
                # so this one closes the connection if no request comes of them
                self._read_timer = self.loop.call_later(self._header_timeout, self._read_timed_out)

        def _cancel_read_timer(self) -> None:
            if self._read_timer is not None:
                self._read_timer.cancel()
                self._read_timer = None

        def _read_timed_out(self) -> None:
            """The read timer ran out: a head or a body too slow closes the connection; else
            the timer runs on (a body read on since, a pause that is the server's own)."""
            self._read_timer = None
            if self.transport.is_closing():
                return
            cycle = self.cycle
            if self._in_body:
                now = self.loop.time()
                if self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue):
                    self._last_read = now  # the server is not reading, or has not asked yet
                    if self._body_deadline:
                        self._body_deadline = max(self._body_deadline, now + self._body_timeout)
                idle = now - self._last_read
                left = self._body_timeout - idle
                if self._body_deadline:
                    left = min(left, self._body_deadline - now)  # a trickle that never pauses long
                if left > 0:
                    self._read_timer = self.loop.call_later(left, self._read_timed_out)
                    return
                answered = cycle is None or cycle.response_started
                what = "request body"
            else:
                if cycle is not None and not cycle.response_complete:
                    # the next (pipelined) request begun while this one is answered: its time
                    # starts again, rather than the answer under way being cut off
                    self._read_timer = self.loop.call_later(self._header_timeout, self._read_timed_out)
                    return
                answered = not self._head_begun  # nothing was sent at all: close, say nothing
                what = "request head"
            self.logger.debug("closing a connection from %s: its %s did not come in time", self.client, what)
            if cycle is not None and not cycle.response_complete:
                cycle.keep_alive = False
                cycle.disconnected = True  # the app's receive() says so, its answer goes nowhere
                cycle.message_event.set()
                if not answered:  # the client gets the 408 below, not the app's answer
                    cast("dict[str, Any]", cycle.scope)[ANSWERED] = 408
            if answered:
                self.transport.close()
            else:
                if cycle is None or cycle.response_complete:  # a head: no app saw this request
                    self._refuse(408)
                _send_scim_error(
                    self.transport, self.server_state.default_headers, b"408 Request Timeout", _TIMED_OUT
                )

        def _unsent(self) -> int:
            """The bytes of its answers the connection holds: its transport's, and over TLS the
            TCP transport's beneath, which takes each answer whole and to which the TLS one
            hands its bytes on only once it has drained (so they alone show no progress for as
            long as the client takes to read a whole answer)."""
            held = self.transport.get_write_buffer_size()
            if (beneath := self.beneath) is not None:
                held += beneath.get_write_buffer_size()
            return held

        def pause_writing(self) -> None:
            super().pause_writing()
            if self._write_timer is None:
                self._write_left = self._unsent()
                self._write_moved = self.loop.time()
                self._write_timer = self.loop.call_later(
                    self._write_timeout / WRITE_CHECKS, self._write_timed_out
                )

        def resume_writing(self) -> None:
            super().resume_writing()
            if self._write_timer is not None:
                self._write_timer.cancel()
                self._write_timer = None

        def _write_timed_out(self) -> None:
            """The write timer ran out: abort the connection if none of the bytes it holds left
            for the write timeout, else look again (a client that reads slowly)."""
            self._write_timer = None
            now = self.loop.time()
            left = self._unsent()
            if left < self._write_left:
                self._write_moved = now
            self._write_left = left
            if not left:  # all gone, the resume is on its way
                return
            wait = self._write_moved + self._write_timeout - now
            if wait > 0:
                self._write_timer = self.loop.call_later(
                    min(wait, self._write_timeout / WRITE_CHECKS), self._write_timed_out
                )
                return
            self.logger.debug(
                "closing a connection from %s: it read none of its answers for %s s",
                self.client,
                self._write_timeout,
            )
            self.transport.abort()  # connection_lost releases a send waiting to write, as a disconnect

        def _refuse(self, status: int) -> None:
            """Tell ``on_refused`` of the request being answered ``status`` before the app: its
            method and path when its request line was read."""
            if self._on_refused is None:
                return
            method = path = None
            if self._head_begun and self.url:  # the request line was read (this request's)
                try:
                    method = self.parser.get_method().decode("latin-1")
                except Exception:  # whatever the parser holds, the count goes on
                    method = None
                path = unquote(self.url.partition(b"?")[0].decode("latin-1"), errors="replace")
            self._on_refused(method, path, status, self.client[0] if self.client else "")

        def send_400_response(self, msg: str) -> None:
            refused = self._refused
            status = int(refused[0][:3]) if refused is not None else 400
            cycle = self.cycle
            if self._in_body and cycle is not None and not cycle.response_started:
                # the request's body is what failed (a malformed chunk): the app saw the request,
                # and its access log line and count say what the client got
                cast("dict[str, Any]", cycle.scope)[ANSWERED] = status
            else:
                self._refuse(status)
            if refused is None:
                _send_scim_error(self.transport, self.server_state.default_headers)
            else:
                _send_scim_error(self.transport, self.server_state.default_headers, *refused)

        def _should_upgrade(self) -> bool:
            return False  # Provisor upgrades to nothing (no WebSocket, no h2c): every request is HTTP/1.1

        def _unsupported_upgrade_warning(self) -> None:
            """httptools stopped at a head asking for an upgrade (``Connection: upgrade`` and
            ``Upgrade: x``), and parses none of what follows as this request's body: a body sent
            later would be read as a request of its own (request smuggling), one sent with the head
            is lost. A request with a body is refused, the connection closed; one without is
            answered (``curl --http2`` asks for h2c on a GET), and the connection closed after it,
            as whatever was pipelined behind it is gone."""
            declared = dict(self.headers)
            length = declared.get(b"content-length", b"0").strip()
            if b"transfer-encoding" in declared or length not in (b"", b"0"):
                self._refused = (b"400 Bad Request", _UPGRADE_WITH_BODY)
                self.send_400_response("an upgrade with a body")
            elif self.cycle is not None:
                self.cycle.keep_alive = False

        def eof_received(self) -> bool | None:  # type: ignore[override]  # asyncio.Protocol's signature
            """The client half-closed (RFC 9112 section 9.6: it sends no more requests): the
            requests it sent whole are still answered, then the connection is closed. One it
            sent in part can never be complete: the connection is closed now."""
            incomplete = (self._in_head and self._head_begun) or self._in_body
            cycle = self.cycle
            waiting = bool(self.pipeline) or (cycle is not None and not cycle.response_complete)
            tls = self.beneath is not None  # asyncio's TLS closes at the client's close_notify
            if incomplete or not waiting:
                # closed here, not by asyncio: an answer just completed may still be kept in the
                # coalescing transport for this turn of the loop, and its close sends it first
                self.transport.close()
                return not tls  # True over TLS has no effect, and asyncio warns of it each time
            self._eof = True
            return not tls

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._eof and not self.pipeline and not self.transport.is_closing():
                cycle = self.cycle  # the last request read: answered now, or being answered
                if cycle is None or cycle.response_complete:
                    self.transport.close()  # the last answer of a half-closed connection is out


class HttpToolsMissing(RuntimeError):
    """httptools cannot be imported, and with it the protocol that protects the server."""


def coalescing_protocol() -> type[asyncio.Protocol]:
    """The HTTP/1.1 protocol ``provisor serve`` runs on: httptools', coalescing, timing out slow
    clients; :class:`HttpToolsMissing` without httptools (uvicorn would fall back to h11)."""
    if HttpToolsProtocol is None:
        raise HttpToolsMissing(
            "serving needs the httptools package (a dependency of provisor, missing here): without "
            "it uvicorn would fall back to its h11 protocol, which does not time out slow clients; "
            "install it (pip install httptools)"
        )
    return CoalescingHttpToolsProtocol
