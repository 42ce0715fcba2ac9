"""The connections of a server that have not sent a request yet, and how many it holds at once.

A connection holds a socket and a file descriptor from its opening; one that sends nothing (or
half a request head) is held until the header timeout (``cli/coalescing.py``), 10 s by default,
and over TLS its handshake too (``cli/tls.py``). ``--max-connections`` does not keep them out:
uvicorn counts a connection once its HTTP protocol hears of it, and answers a request past its
limit 503 only when the request comes, so silent connections are accepted however many there are.
Enough of them run the process out of file descriptors, and then nothing is served, ``/healthz``
included.

So a connection is a newcomer from its TCP opening until its first request head is complete, and
at most :attr:`Newcomers.limit` (``--max-connections``) are held at once: one past it drops the
oldest newcomer (a reset), rather than being refused itself, so a client that sends its request
in the usual milliseconds is served while silent connections are held; to keep it out,
connections would have to come faster than the cap in each of its round trips. Connections that
sent a request, being served or idle between requests, are not newcomers, and are capped apart:
a request is answered 503 past ``--max-connections`` of them, newcomers not counted (uvicorn
counts them among its connections, so the HTTP protocol raises uvicorn's limit by as many, and
silent connections cannot fill the server's cap). The file descriptors the server holds are then
at most about twice ``--max-connections``, plus those past the served cap waiting to be answered
503.
"""

from __future__ import annotations

from typing import Protocol


class Newcomer(Protocol):
    """A connection that can be dropped at once (its transport aborted)."""

    def drop(self) -> None: ...


class Newcomers:
    """The newcomers of one server, oldest first (a dict keeps its insertion order, and removes
    any of its keys in constant time)."""

    __slots__ = ("counted", "limit", "waiting")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.waiting: dict[Newcomer, None] = {}
        #: Newcomers among uvicorn's connections (their HTTP protocol's ``connection_made`` ran:
        #: over TLS, not before the handshake is done); the HTTP protocol counts them.
        self.counted = 0

    def arrived(self, connection: Newcomer) -> None:
        """A connection opened: past the cap, the oldest newcomer is dropped."""
        waiting = self.waiting
        waiting[connection] = None
        if len(waiting) > self.limit:
            oldest = next(iter(waiting))
            del waiting[oldest]
            oldest.drop()

    def settled(self, connection: Newcomer) -> None:
        """A connection is no newcomer any more: its first request head is complete, or it closed."""
        self.waiting.pop(connection, None)
