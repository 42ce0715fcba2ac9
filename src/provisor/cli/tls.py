"""TLS for ``provisor serve``, with the handshake timed out and the handshakes under way capped.

uvicorn hands its SSL context to ``loop.create_server``, which does the handshake before the HTTP
protocol hears of the connection, with asyncio's default handshake timeout (60 s) and no cap: a
client that opens TCP connections and never sends a ClientHello (or half of one) holds a socket
and a file descriptor for a minute each, uncounted by ``--max-connections`` (uvicorn counts a
connection once its protocol's ``connection_made`` runs, after the handshake). Enough of them run
the process out of file descriptors, and then nothing is served, ``/healthz`` included.

So ``provisor serve`` terminates TLS itself (:class:`_TlsConfig` in ``cli/serving.py`` keeps the
context from the event loop): the protocol uvicorn creates for a connection is the HTTP protocol
wrapped in the event loop's own TLS protocol, the one it would have used itself (uvloop's
compiled one on uvloop's loop, which uvicorn runs when uvloop is installed, else asyncio's
``asyncio.sslproto``), subclassed to count it (:class:`_Counted`). uvicorn's ``Server.startup``
passes ``create_server`` no handshake timeout, and the event loop tells no one of a connection
before its handshake, so a timeout given there would still leave the handshakes uncounted; the
protocol class is uvicorn's own hook (``Config.http``), and needs no copy of ``startup`` nor a
patched event loop. The protocol is

* the handshake timed out after the header timeout: a connection's first request head must be
  complete within ``header_timeout`` of the TCP connection's opening, its handshake included
  (:meth:`TlsProtocol.connection_made` tells the HTTP protocol when that was). A handshake is a
  round trip or two; a client that needs more than the head's time for it is not one to wait for,
  and one timeout less to configure;
* at most :attr:`TlsHandshakes.limit` connections in their handshake at once (``--max-connections``):
  a connection past it drops the oldest still in its handshake (a reset), rather than being
  refused itself, so a client that completes its handshake in the usual milliseconds is served
  while silent connections are held; to keep it out, connections would have to come faster than
  the cap in each of its handshakes. Capped apart from the connections served, so a server full
  of served connections still answers a newcomer 503 with ``Retry-After`` after its handshake,
  as it does over plain HTTP. The file descriptors the server holds are then at most about twice
  ``--max-connections``, plus those past the served cap waiting to be answered 503.

asyncio's TLS protocol keeps its own default (30 s) for the close (the last answer's flush and
the ``close_notify`` exchange): a connection closing is still one of uvicorn's, and so counted
by ``--max-connections``.
"""

from __future__ import annotations

import asyncio
import ssl
from asyncio.sslproto import SSLProtocol
from typing import Any, cast


class TlsHandshakes:
    """The TLS connections of one server, and how many of them may be in their handshake at once.

    A connection is open from its TCP opening to its closing; it is in its handshake until uvicorn
    counts it among its connections (``served``: ``server_state.connections``, which its HTTP
    protocol joins when the handshake is done and leaves when the connection closes), so the
    connections in their handshake are the open ones less uvicorn's. ``pending`` holds the open
    connections oldest first, those whose handshake is done dropped as they come to its front.
    """

    __slots__ = ("context", "limit", "open", "pending", "timeout")

    def __init__(self, context: ssl.SSLContext, limit: int, timeout: float) -> None:
        self.context = context
        self.limit = limit
        self.timeout = timeout
        self.open = 0
        self.pending: dict[_Counted, None] = {}

    def protocol(self, http_protocol_class: Any, **kwargs: Any) -> asyncio.BaseProtocol:
        """The protocol for a new connection: uvicorn's arguments make the HTTP protocol, which
        :class:`TlsProtocol` wraps (``_loop`` is uvicorn's, None but in tests)."""
        app_protocol = http_protocol_class(**kwargs)
        loop = kwargs.get("_loop") or asyncio.get_running_loop()
        protocol = tls_protocol_class(loop)(loop, app_protocol, self, kwargs["server_state"].connections)
        return cast(asyncio.BaseProtocol, protocol)

    def opened(self, protocol: _Counted) -> None:
        """A connection opened: past the cap, the oldest still in its handshake is dropped."""
        self.open += 1
        self.pending[protocol] = None
        if self.open - len(protocol.served) > self.limit:
            self._drop_oldest()

    def closed(self, protocol: _Counted) -> None:
        self.open -= 1
        self.pending.pop(protocol, None)

    def _drop_oldest(self) -> None:
        pending = self.pending
        while pending:
            oldest = next(iter(pending))
            del pending[oldest]  # done with its handshake, or dropped now: not to be looked at again
            if oldest.in_handshake:
                oldest.drop()
                return


class _Counted:
    """What Provisor adds to a TLS protocol (asyncio's or uvloop's, :func:`tls_protocol_class`):
    counted in its server's :class:`TlsHandshakes`, and the HTTP protocol told when it opened."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        app_protocol: asyncio.BaseProtocol,
        handshakes: TlsHandshakes,
        served: set[Any],
    ) -> None:
        # SSLProtocol takes no waiter (no one waits for the handshake: the HTTP protocol's
        # connection_made says it is done) and any positive number of seconds
        super().__init__(  # type: ignore[call-arg]
            loop,
            app_protocol,
            handshakes.context,
            None,
            server_side=True,
            ssl_handshake_timeout=handshakes.timeout,
        )
        self.served = served
        self._clock = loop
        self._http = app_protocol
        self._handshakes = handshakes
        self._tcp: asyncio.BaseTransport | None = None

    @property
    def in_handshake(self) -> bool:
        return self._tcp is not None and self._http not in self.served

    def drop(self) -> None:
        """Close the connection at once, with a reset: no answer can reach it before its handshake."""
        if self._tcp is not None:
            self._tcp.abort()  # type: ignore[attr-defined]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._tcp = transport
        # the HTTP protocol's first head timeout runs from now, not from the handshake's end
        self._http.opened_at = self._clock.time()  # type: ignore[attr-defined]
        self._handshakes.opened(self)
        super().connection_made(transport)  # type: ignore[misc]

    def connection_lost(self, exc: BaseException | None) -> None:
        self._tcp = None
        self._handshakes.closed(self)
        super().connection_lost(exc)  # type: ignore[misc]


class TlsProtocol(_Counted, SSLProtocol):
    """asyncio's server-side TLS protocol, counted (:class:`_Counted`)."""


def _uvloop_tls() -> tuple[type[asyncio.AbstractEventLoop], type[_Counted]] | None:
    """uvloop's event loop class and its compiled TLS protocol, counted; None without uvloop."""
    try:
        from uvloop import Loop
        from uvloop.loop import SSLProtocol as CompiledSSLProtocol  # type: ignore[attr-defined]
    except ImportError:  # no uvloop: asyncio's event loop, and its TLS protocol
        return None

    class UvTlsProtocol(_Counted, CompiledSSLProtocol):  # type: ignore[misc]
        """uvloop's compiled copy of asyncio's TLS protocol, counted (:class:`_Counted`)."""

    return Loop, UvTlsProtocol


_UVLOOP_TLS = _uvloop_tls()


def tls_protocol_class(loop: asyncio.AbstractEventLoop) -> type[_Counted]:
    """The TLS protocol for ``loop``: uvloop's compiled one on uvloop's event loop (which uvicorn
    runs when uvloop is installed, and which that protocol needs), asyncio's on any other. The
    compiled one costs a request over TLS about 8 % fewer instructions (docs/benchmarks.md)."""
    if _UVLOOP_TLS is not None and isinstance(loop, _UVLOOP_TLS[0]):
        return _UVLOOP_TLS[1]
    return TlsProtocol
