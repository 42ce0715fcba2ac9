"""Group commit for the event loop: writes that arrive together share one database commit.

Each write request hands its whole operation (parse, store calls, render) to :meth:`run`. The
first one in a turn of the event loop schedules a flush for the next turn; every write submitted
meanwhile joins it. The flush runs the operations in order inside ``store.batch()``, so each keeps
its own savepoint (a failing one rolls back alone, and its request gets its own error), and
commits once. Replies are released only after the commit, so a client never sees a write that
could still be lost; if the commit itself fails, every request of the batch gets that error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class WriteBatcher:
    def __init__(
        self, store: Any, *, max_batch: int = 64, observe: Callable[[int], None] | None = None
    ) -> None:
        self._store = store
        self._observe = observe
        self._max = max_batch
        self._pending: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._scheduled = False

    async def run(self, operation: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((operation, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        jobs, self._pending = self._pending[: self._max], self._pending[self._max :]
        if self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        else:
            self._scheduled = False
        if self._observe is not None:
            self._observe(len(jobs))
        if len(jobs) == 1:  # alone: its own transaction, no savepoint needed
            operation, future = jobs[0]
            try:
                result = operation()
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)
            return
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self._store.batch():
                for operation, _ in jobs:
                    try:
                        outcomes.append((True, operation()))
                    except Exception as exc:  # the operation's own error, for its own request
                        outcomes.append((False, exc))
        except Exception as exc:  # the commit failed: nothing of the batch is stored
            for _, future in jobs:
                if not future.done():
                    future.set_exception(exc)
            return
        for (ok, value), (_, future) in zip(outcomes, jobs, strict=True):
            if future.done():  # the client went away
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
