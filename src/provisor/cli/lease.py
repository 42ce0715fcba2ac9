"""The job's runner lease (``RunnerLease`` in engine/state.py): one process at a time runs cycles.

``provisor sync`` holds it for its cycle, ``provisor run`` for as long as it serves. While a
process holds it, a thread of its own renews it every quarter of its length, whatever the event
loop is busy with, so it lasts as long as the process does. A process killed with SIGKILL (or a
host that died) stops renewing: its lease runs out at most ``LEASE_SECONDS`` after the last
renewal, and the job is free again; a crash never blocks a job for longer.

A holder that could not renew in time (stopped with Ctrl-Z, a host suspended) may find the job
taken over when it comes back: it is told (``on_lost``) and must stop running cycles.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from provisor.engine.state import EngineState, RunnerLease

__all__ = ["LEASE_ENV", "LEASE_SECONDS", "JobLease", "lease_seconds", "owner_name", "until"]

#: How long a lease lasts unless renewed: the longest a killed holder keeps others waiting.
LEASE_SECONDS: Final = 60.0
#: The environment variable that changes it (seconds, 1 to 3600), e.g. for a faster failover.
LEASE_ENV: Final = "PROVISOR_LEASE_SECONDS"


def lease_seconds(env: Mapping[str, str]) -> float:
    """The lease length: ``PROVISOR_LEASE_SECONDS`` when set, else ``LEASE_SECONDS``.

    :raises ValueError: with a message for the admin.
    """
    text = env.get(LEASE_ENV, "").strip()
    if not text:
        return LEASE_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 1 <= seconds <= 3600:
        raise ValueError(f"{LEASE_ENV} must be a number of seconds from 1 to 3600, not {text!r}")
    return seconds


def owner_name(command: str) -> str:
    """Who holds a lease, for an admin: the command, process id and host (unique per process)."""
    return f"provisor {command} (pid {os.getpid()} on {socket.gethostname()}) [{uuid.uuid4().hex[:8]}]"


def until(lease: RunnerLease) -> str:
    return f"{lease.expires.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class JobLease:
    """``owner``'s runner lease on ``job``: :meth:`acquire`, then renewed until :meth:`release`."""

    def __init__(
        self,
        state: EngineState,
        job: str,
        owner: str,
        *,
        seconds: float = LEASE_SECONDS,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.state = state
        self.job = job
        self.owner = owner
        self.seconds = seconds
        self.clock = clock
        #: Called (on the renewing thread) with the new holder when another process took the job.
        self.on_lost: Callable[[RunnerLease], None] | None = None
        #: The lease that replaced this one, once lost.
        self.lost: RunnerLease | None = None
        self._held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self._held

    def acquire(self) -> RunnerLease:
        """Try to take the lease; the lease as it stands (``.owner`` is this one's when taken).

        Once taken, a daemon thread renews it every quarter of its length.
        """
        lease = self._take()
        if lease.owner == self.owner and self._thread is None:
            self._held = True
            self._thread = threading.Thread(target=self._renew, name=f"lease {self.job}", daemon=True)
            self._thread.start()
        return lease

    def release(self) -> None:
        """Stop renewing and give the lease up (best effort: else it runs out by itself)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        if self._held:
            self._held = False
            with contextlib.suppress(Exception):  # the state went away: the lease simply runs out
                self.state.release_lease(self.job, self.owner)

    def _take(self) -> RunnerLease:
        now = self.clock()
        return self.state.acquire_lease(
            self.job, self.owner, now=now, expires=now + timedelta(seconds=self.seconds)
        )

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 4):
            try:
                lease = self._take()
            except Exception:  # noqa: S112 - a locked or unreachable database: try again soon
                continue
            if lease.owner != self.owner:
                self._held = False
                self.lost = lease
                if self.on_lost is not None:
                    self.on_lost(lease)
                return
