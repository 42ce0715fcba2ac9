"""When a job's next cycle runs (entra-behaviour.md 2.1, 2.5, 2.9): pure; the caller passes the time in.

Cycles run back-to-back at the job's interval ("approximately every 40 minutes", 2.5). A paused
job runs none until it is resumed (2.1: Provisioning Status Off/On). A quarantined job runs its
next cycle when the quarantine's next attempt is due - 6 h, 12 h, then every 24 h (2.9) - not at
the interval, so a target that refuses every call is not hammered. A process that starts
(``provisor run``) keeps the interval after the last cycle of an earlier process, except that it
runs at once when nothing ran yet, when the last cycle did not finish (it was interrupted or
failed: the next cycle resumes its work) and when a restart cleared the watermark (2.10).

The runner asks again every time it wakes up, so an admin's pause, resume, restart or
allow-deletes from another shell takes effect without restarting the process; a restart that
clears the watermark starts the initial cycle at once, as it does in a process just started.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from provisor.engine.state import Cycle, JobState, JobStatus

__all__ = ["FAILED", "INTERRUPTED", "NextCycle", "Reason", "next_cycle"]

#: ``Cycle.result`` of a cycle stopped half-way by the admin (SIGTERM, Ctrl-C).
INTERRUPTED: Final = "Interrupted"
#: ``Cycle.result`` of a cycle ended by an error (the source or the target went away).
FAILED: Final = "Failed"


class Reason(enum.StrEnum):
    """Why the next cycle runs when it does."""

    FIRST = "first"  # the job never ran: at once
    RESUME = "resume"  # the last cycle did not finish: at once, the next cycle resumes its work
    RESTART = "restart"  # the watermark was cleared (restart, 2.10): an initial cycle, at once
    INTERVAL = "interval"  # the job's interval after the last cycle
    PAUSED = "paused"  # no cycle until the job is resumed
    QUARANTINE = "quarantine"  # the quarantine's next attempt (2.9)


@dataclass(frozen=True, slots=True)
class NextCycle:
    """When the next cycle is due (``None``: not until the job is resumed) and why."""

    reason: Reason
    due: datetime | None


def next_cycle(
    state: JobState,
    last: Cycle | None,
    *,
    interval: timedelta,
    now: datetime,
    last_attempt: datetime | None = None,
    attempt_watermark: str | None = None,
) -> NextCycle:
    """The job's next cycle given its state and its newest cycle.

    ``last_attempt`` is when this process last tried a cycle (finished, failed, or refused by
    Test Connection), ``None`` before its first: a process waits the interval after each of its
    own attempts, whatever their outcome, so an error never turns into a tight retry loop.
    ``attempt_watermark`` is the job's watermark as that attempt left it: when it was set and is
    gone now, an admin restarted the job meanwhile (2.10), and the initial cycle runs at once
    instead of an interval later. An attempt that left no watermark (an initial cycle that
    failed) keeps the interval.
    """
    if state.status is JobStatus.PAUSED:
        return NextCycle(Reason.PAUSED, None)
    if state.quarantine is not None:
        return NextCycle(Reason.QUARANTINE, state.quarantine.next_attempt)
    if last_attempt is not None:
        if attempt_watermark is not None and state.watermark is None:
            return NextCycle(Reason.RESTART, now)
        return NextCycle(Reason.INTERVAL, last_attempt + interval)
    if last is None:
        return NextCycle(Reason.FIRST, now)
    if last.finished is None or last.result in (INTERRUPTED, FAILED):
        return NextCycle(Reason.RESUME, now)
    if state.watermark is None:
        return NextCycle(Reason.RESTART, now)
    return NextCycle(Reason.INTERVAL, last.finished + interval)
