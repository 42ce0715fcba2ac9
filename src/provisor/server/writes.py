"""Group commit for the event loop: writes that arrive together share one database commit.

Each write request hands its whole operation (parse, store calls, render) to :meth:`run`. The
first one in a turn of the event loop schedules a flush for the next turn; every write submitted
meanwhile joins it. The flush runs the operations in order inside ``store.batch()``, so each keeps
its own savepoint (a failing one rolls back alone, and its request gets its own error), and
commits once. Replies are released only after the commit, so a client never sees a write that
could still be lost; if the commit itself fails, every request of the batch gets that error.

The loop never waits for the database's write lock. Another process holding it (a CLI command
deleting a large tenant, a second server, an engine run) would otherwise stop every request of
this server, reads and ``/healthz`` included, for up to the busy timeout: SQLite waits for a lock
inside the statement that wants it. So a flush first takes the lock with the store's
``try_write_lock``, which answers at once; while another writer holds it, the flush is tried again
a moment later (1 ms, doubling up to 50 ms, as SQLite's own busy handler does), and the writes
that have waited the store's ``busy_timeout`` fail with StoreBusy (503 with Retry-After), as a
write that SQLite gave up on would. Only taking the lock is retried: no operation runs before the
lock is held, so none can run twice. An operation alone runs its own write transaction as before,
that transaction being the lock's (no savepoint); an operation that writes several times (a Bulk
request: ``several_writes``) runs inside ``store.batch()`` even alone, each write a savepoint of
the lock's transaction. A store without ``try_write_lock`` takes its locks as its writes begin.
A request's trace (:meth:`run_eagerly`) is written at once when the lock is free, as before, and
otherwise waits here like any write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

from provisor.store.base import StoreBusy

T = TypeVar("T")

#: The first pause before the lock is tried again, and the longest (seconds).
FIRST_PAUSE = 0.001
LONGEST_PAUSE = 0.05
#: How long a write waits for the lock when the store does not say (SQLite's default here).
DEFAULT_BUSY_TIMEOUT = 5.0

#: A write waiting for its flush: the operation, its reply, whether it writes several times, and
#: when it was submitted (loop time).
_Job = tuple[Callable[[], Any], "asyncio.Future[Any]", bool, float]
_NO_LOCK: AbstractContextManager[None] = nullcontext()


class WriteBatcher:
    def __init__(
        self,
        store: Any,
        *,
        max_batch: int = 64,
        observe: Callable[[int], None] | None = None,
        busy_timeout: float | None = None,
    ) -> None:
        """``busy_timeout``: seconds a write waits for another writer's lock (default: the
        store's ``busy_timeout``)."""
        self._store = store
        self._observe = observe
        self._max = max_batch
        self._pending: list[_Job] = []
        self._scheduled = False
        self._try_lock: Callable[[], AbstractContextManager[None] | None] | None = getattr(
            store, "try_write_lock", None
        )
        if busy_timeout is None:
            busy_timeout = getattr(store, "busy_timeout", DEFAULT_BUSY_TIMEOUT)
        self._busy_timeout: float = busy_timeout
        self._pause = FIRST_PAUSE

    async def run(self, operation: Callable[[], T], *, several_writes: bool = False) -> T:
        """Run ``operation`` in the next flush; its result or exception. ``several_writes``: it
        may write more than once (each write then a savepoint, even when it runs alone)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((operation, future, several_writes, loop.time()))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    async def run_eagerly(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` at once, in this turn of the loop, when no write is waiting and the
        lock is free (a request's trace, written right after its answer as before); otherwise as
        :meth:`run` does, never waiting on the loop."""
        if not self._pending:
            lock = self._lock()
            if lock is not None:
                with lock:
                    return operation()
        return await self.run(operation)

    def _flush(self) -> None:
        try:
            lock = self._lock()
        except Exception as exc:  # the database cannot begin a write at all: say so to this batch
            _fail(self._take(), exc)
            return
        if lock is None:
            self._wait_for_lock()
            return
        self._pause = FIRST_PAUSE
        jobs = self._take()
        if self._observe is not None:
            self._observe(len(jobs))
        with lock:
            if len(jobs) == 1 and not jobs[0][2]:  # alone: its own transaction, no savepoint
                operation, future, *_ = jobs[0]
                try:
                    result = operation()
                except Exception as exc:
                    if not future.done():
                        future.set_exception(exc)
                else:
                    if not future.done():
                        future.set_result(result)
            else:
                self._run_together(jobs)

    def _lock(self) -> AbstractContextManager[None] | None:
        """The write lock for this flush, or None while another writer holds it."""
        return _NO_LOCK if self._try_lock is None else self._try_lock()

    def _take(self) -> list[_Job]:
        """The next batch's writes; the flush after it scheduled if more are waiting."""
        jobs, self._pending = self._pending[: self._max], self._pending[self._max :]
        if self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        else:
            self._scheduled = False
        return jobs

    def _wait_for_lock(self) -> None:
        """Another writer holds the lock: fail the writes that have waited the busy timeout, and
        try again after a pause for the others (none has run)."""
        loop = asyncio.get_running_loop()
        oldest_kept = loop.time() - self._busy_timeout
        expired = [job for job in self._pending if job[3] <= oldest_kept]
        if expired:
            self._pending = [job for job in self._pending if job[3] > oldest_kept]
            _fail(expired, StoreBusy("the database is busy with another writer"))
        if not self._pending:
            self._scheduled = False
            self._pause = FIRST_PAUSE
            return
        loop.call_later(self._pause, self._flush)
        self._pause = min(self._pause * 2, LONGEST_PAUSE)

    def _run_together(self, jobs: list[_Job]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self._store.batch():
                for operation, *_ in jobs:
                    try:
                        outcomes.append((True, operation()))
                    except Exception as exc:  # the operation's own error, for its own request
                        outcomes.append((False, exc))
        except Exception as exc:  # the commit failed: nothing of the batch is stored
            _fail(jobs, exc)
            return
        for (ok, value), (_, future, *_) in zip(outcomes, jobs, strict=True):
            if future.done():  # the client went away
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


def _fail(jobs: list[_Job], exc: Exception) -> None:
    for _, future, *_ in jobs:
        if not future.done():
            future.set_exception(exc)
