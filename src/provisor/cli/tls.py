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
* a newcomer (``cli/newcomers.py``) from the TCP connection's opening, its handshake included,
  until its first request head is complete: past ``--max-connections`` newcomers the oldest is
  dropped (a reset), so a client that completes its handshake and sends its request in the usual
  milliseconds is served while silent connections are held. Capped apart from the connections
  served, so a server full of served connections still answers a newcomer 503 with
  ``Retry-After`` after its handshake, as it does over plain HTTP.

asyncio's TLS protocol keeps its own default (30 s) for the close (the last answer's flush and
the ``close_notify`` exchange): a connection closing is still one of uvicorn's, and so counted
by ``--max-connections``.
"""

from __future__ import annotations

import asyncio
import ssl
from asyncio.sslproto import SSLProtocol
from typing import Any, cast

from provisor.cli.newcomers import Newcomers


class TlsHandshakes:
    """What the TLS connections of one server share: the context, the handshake's timeout, and
    the server's newcomers, which a connection joins at its TCP opening."""

    __slots__ = ("context", "newcomers", "timeout")

    def __init__(self, context: ssl.SSLContext, newcomers: Newcomers, timeout: float) -> None:
        self.context = context
        self.newcomers = newcomers
        self.timeout = timeout

    def protocol(self, http_protocol_class: Any, **kwargs: Any) -> asyncio.BaseProtocol:
        """The protocol for a new connection: uvicorn's arguments make the HTTP protocol, which
        :class:`TlsProtocol` wraps (``_loop`` is uvicorn's, None but in tests)."""
        app_protocol = http_protocol_class(**kwargs)
        loop = kwargs.get("_loop") or asyncio.get_running_loop()
        protocol = tls_protocol_class(loop)(loop, app_protocol, self)
        return cast(asyncio.BaseProtocol, protocol)


class _Counted:
    """What Provisor adds to a TLS protocol (asyncio's or uvloop's, :func:`tls_protocol_class`):
    a newcomer of its server from its TCP opening (the HTTP protocol says when it is no longer
    one), and the HTTP protocol told when it opened."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, app_protocol: asyncio.BaseProtocol, handshakes: TlsHandshakes
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
        self._clock = loop
        self._http = app_protocol
        self._newcomers = handshakes.newcomers
        self._tcp: asyncio.BaseTransport | None = None

    def drop(self) -> None:
        """Close the connection at once, with a reset: it has sent no request to answer."""
        if self._tcp is not None:
            self._tcp.abort()  # type: ignore[attr-defined]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._tcp = transport
        # the HTTP protocol's first head timeout runs from now, not from the handshake's end, and
        # its first head settles this newcomer
        self._http.opened_at = self._clock.time()  # type: ignore[attr-defined]
        self._http.newcomer = self  # type: ignore[attr-defined]
        self._http.beneath = transport  # type: ignore[attr-defined]  # its bytes count for the write timeout
        self._newcomers.arrived(self)
        super().connection_made(transport)  # type: ignore[misc]

    def connection_lost(self, exc: BaseException | None) -> None:
        self._tcp = None
        self._newcomers.settled(self)
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
