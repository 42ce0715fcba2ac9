"""The SCIM source's watermark: a ``meta.lastModified`` floor plus the versions already yielded.

A read asks for ``meta.lastModified ge "<since>"``. ``since`` is settled once a read is complete:

    since = min(server Date at the first response, latest lastModified seen) - overlap

* ``min(..., Date)``: an object modified *while* the read pages (after its page was read) has a
  lastModified after the read started, so it is re-read next time even if a later page showed a
  newer timestamp. The ``overlap`` (default 1 s) covers the HTTP Date's one-second resolution, the
  gap between a page's query and its response, and writers whose timestamp is taken before they
  commit.
* ``ge`` instead of ``gt`` keeps objects stamped exactly at ``since``. The price is re-reading the
  overlap window; the watermark therefore also carries a short hash of ``(kind, anchor, version)``
  of every object seen at or after ``since``, and the next read skips those it sees again with
  the same version. Equal timestamps are thus neither missed nor yielded twice. Past ``cap``
  entries the hashes are dropped: the window is then re-yielded (harmless, the engine's diff finds
  nothing to do).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from provisor.engine.model import SourceError

_FORMAT = 1


def format_instant(moment: datetime) -> str:
    """RFC 7643 section 2.3.5 dateTime in UTC, with microseconds."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_instant(text: object) -> datetime | None:
    """A SCIM dateTime, or None when absent or unreadable (a naive one is taken as UTC)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_http_date(text: str | None) -> datetime | None:
    """An HTTP ``Date`` header (RFC 9110 section 5.6.7), or None."""
    if not text:
        return None
    try:
        return parsedate_to_datetime(text).astimezone(UTC)
    except (TypeError, ValueError):
        return None


def version_key(kind: str, anchor: str, version: str) -> str:
    """A short, stable hash of one object version."""
    return hashlib.blake2b(f"{kind}\0{anchor}\0{version}".encode(), digest_size=8).hexdigest()


def encode(since: datetime | None, seen: list[str]) -> str:
    """The watermark text the engine persists."""
    body = {"v": _FORMAT, "since": None if since is None else format_instant(since), "seen": sorted(seen)}
    return json.dumps(body, separators=(",", ":"))


def decode(watermark: str) -> tuple[datetime | None, frozenset[str]]:
    """``(since, seen)`` from a watermark; ``""`` means "from the beginning"."""
    if not watermark:
        return None, frozenset()
    try:
        body = json.loads(watermark)
        if not isinstance(body, dict) or body.get("v") != _FORMAT:
            raise ValueError
        since = parse_instant(body["since"]) if body.get("since") is not None else None
        if body.get("since") is not None and since is None:
            raise ValueError
        seen = body.get("seen", [])
        if not isinstance(seen, list) or not all(isinstance(s, str) for s in seen):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise SourceError("the watermark was not written by the SCIM source; run a full read") from None
    return since, frozenset(seen)


@dataclass
class Window:
    """What one read observed: enough to settle its watermark, bounded by ``cap`` hashes."""

    overlap: timedelta
    cap: int
    started: datetime | None = None
    latest: datetime | None = None
    undated: bool = False
    overflow: bool = False
    done: bool = False
    recent: dict[str, datetime] = field(default_factory=dict)

    def saw_date(self, header: str | None) -> None:
        """Record the server's Date at the read's first response."""
        if self.started is None:
            self.started = parse_http_date(header)

    def floor(self) -> datetime | None:
        """``min(started, latest) - overlap`` with what is known so far."""
        known = [m for m in (self.started, self.latest) if m is not None]
        return min(known) - self.overlap if known else None

    def observe(self, key: str, modified: datetime | None) -> None:
        """One object seen (yielded or skipped) with its lastModified."""
        if modified is None:
            self.undated = True
            return
        if self.latest is None or modified > self.latest:
            self.latest = modified
        if self.overflow:
            return
        self.recent[key] = modified
        if len(self.recent) > 2 * self.cap:
            floor = self.floor()
            self.recent = {k: m for k, m in self.recent.items() if floor is None or m >= floor}
            if len(self.recent) > self.cap:
                self.overflow = True
                self.recent.clear()

    def settle(self, previous: datetime | None) -> str:
        """The watermark after a complete read that started from ``previous``."""
        if not self.done:
            raise RuntimeError("the watermark is settled only after every object has been read")
        if self.undated:  # the server does not stamp lastModified: the next read reads everything
            return encode(None, [])
        since = self.floor()
        if since is None:
            since = previous
        if since is None or self.overflow:
            return encode(since, [])
        seen = [key for key, modified in self.recent.items() if modified >= since]
        return encode(since, seen if len(seen) <= self.cap else [])
