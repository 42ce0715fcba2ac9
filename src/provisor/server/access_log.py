"""The access log: one JSON line per request, written in batches.

A line is ``{"time", "method", "path", "status", "ms", "tenant", "client"}``: the UTC time the
response was done (ISO 8601, milliseconds), the request's method and path, the response's status,
the milliseconds the app took until the answer was sent, the tenant's id (null before a token was
accepted) and the client's address. The status is what the client got: 408 for a body the server
stopped waiting for, 499 for a client that went before sending its whole body (its answer went
nowhere). A request the HTTP protocol answers itself, before the app (a request head too large or
not in time, bytes that are not HTTP, a connection past ``--max-connections``), has a line too,
with ``ms`` null and ``method`` and ``path`` null when they were not read. A line never holds a
header, so no Secret Token can reach it, nor the query string: filters carry user names and
e-mail addresses.

Lines are kept in memory and written together, as nginx's ``access_log ... buffer= flush=`` and
Envoy's access-log flush interval do: in one write when ``batch_lines`` (1,000) are kept, at the
latest ``flush_seconds`` (0.5 s) after the first line kept, and when the server stops
(:meth:`AccessLog.close`). A process killed outright (SIGKILL) loses at most the last
``flush_seconds`` of lines. A request only keeps its fields; they are formatted as JSON when the
batch is written, in one loop: about 4.5-5 us a request in all, in a server under load, against
8 us when each line was formatted during its request (``bench/inprocess.py --access-log``, timed
around ``AccessLog.request``). Through ``logging`` (a record, a formatted timestamp, a write and a
flush per request) the access log took a fifth of a filtered GET's instructions: 508,000 against
410,000 with the log off (``bench/inprocess.py`` under callgrind).

The event loop's thread writes; :meth:`close` is for after the server stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from provisor.scim.compat.credentials import TOKEN_PREFIX, without_tokens

log = logging.getLogger("provisor.access")

#: Write at the latest this long after the first line kept (seconds).
FLUSH_SECONDS = 0.5
#: Write as soon as this many lines are kept.
BATCH_LINES = 1000

#: The longest path a line shows; a longer one (a stranger's 40 KB path, one line a request) is
#: cut there and ends in "...", so no client decides how much the log grows by.
MAX_PATH = 1024

#: The longest client address a line shows (from a trusted proxy's X-Forwarded-For, which a
#: client behind it may have written): cut there like a path.
MAX_CLIENT = 64

#: What a request keeps: (epoch seconds, method, path, status, ms, tenant, client).
_Kept = tuple[float, "str | None", "str | None", int, "float | None", "str | None", str]


class Sink(Protocol):
    """Where the lines go: a text stream such as ``sys.stderr``."""

    def write(self, text: str, /) -> Any: ...

    def flush(self) -> Any: ...


class UtcStamp:
    """ISO 8601 UTC timestamps with milliseconds (``2026-11-30T08:12:24.394Z``) of epoch seconds,
    as ``datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")`` writes them; the
    date and time of day are formatted once a second."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, now: float) -> str:
        # whole microseconds first, as datetime rounds them: a float's fraction times 1000 can
        # fall just short of a whole millisecond
        second, micros = divmod(round(now * 1_000_000), 1_000_000)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{micros // 1000:03d}Z"


class AccessLog:
    """The server's access log, written to ``sink`` in batches (see the module's text)."""

    def __init__(
        self,
        sink: Sink,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        batch_lines: int = BATCH_LINES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sink = sink
        self._flush_seconds = flush_seconds
        self._batch_lines = batch_lines
        self._clock = clock
        self._stamp = UtcStamp()
        self._kept: list[_Kept] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._failed = False

    def request(
        self,
        method: str | None,
        path: str | None,
        status: int,
        ms: float | None,
        tenant: str | None,
        client: str,
    ) -> None:
        """Keep the line of one request; write the batch when it is full. A Secret Token in the
        path (pasted onto the Tenant URL) is redacted: the log never holds one. ``method``,
        ``path`` and ``ms`` are None for a request the HTTP protocol refused before the app (its
        method or path not read, no app time)."""
        if path is not None and TOKEN_PREFIX in path:
            path = without_tokens(path)
        kept = self._kept
        kept.append((self._clock(), method, path, status, ms, tenant, client))
        if len(kept) >= self._batch_lines or self._closed:
            self.flush()
        elif self._timer is None or (self._timer_loop is not None and self._timer_loop.is_closed()):
            # (a timer of an event loop that has ended never fires: a new loop needs its own)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop to wake us later: write now
                self.flush()
                return
            self._timer = loop.call_later(self._flush_seconds, self._flush_on_time)
            self._timer_loop = loop

    def _flush_on_time(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Write every kept line, in one write. A sink that fails (a closed pipe, a full disk)
        loses the lines; the failure is reported once, and requests never see it."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._kept:
            return
        kept, self._kept = self._kept, []
        stamp, dumps, newline = self._stamp, orjson.dumps, orjson.OPT_APPEND_NEWLINE
        # One buffer grown line by line, each line's bytes freed at once: a list of them for a
        # join costs five times as much (each keeps its own allocation until the join).
        out = bytearray()
        for now, method, path, status, ms, tenant, client in kept:
            out += dumps(
                {
                    "time": stamp(now),
                    "method": method,
                    "path": path if path is None or len(path) <= MAX_PATH else path[:MAX_PATH] + "...",
                    "status": status,
                    "ms": ms,
                    "tenant": tenant,
                    "client": client if len(client) <= MAX_CLIENT else client[:MAX_CLIENT] + "...",
                },
                option=newline,
            )
        text = out.decode()
        try:
            self._sink.write(text)
            self._sink.flush()
        except (OSError, ValueError) as exc:  # ValueError: a closed file
            if not self._failed:
                self._failed = True
                log.warning("the access log could not be written (%s); its lines are lost", exc)

    def close(self) -> None:
        """Write what is kept; later lines are written at once."""
        self._closed = True
        self.flush()
