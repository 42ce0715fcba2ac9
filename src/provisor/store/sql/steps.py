"""Long administrative writes in short transactions, so that the servers on the database keep writing.

SQLite has one write lock for the whole file. A command that deletes a large tenant
(``tenant_deletion``) or purges an extension's values (``extension_purge``) in one transaction
holds it for seconds, and every server on the database waits that long for any write, answering
503 past its busy timeout (5 s). Such a command works in :class:`Steps` instead: transactions of
about :data:`STEP_SECONDS` each, with the lock free for :data:`PAUSE_SECONDS` between two of them,
longer than a server's write batcher waits between two tries of a held lock (``server/writes.py``,
50 ms), so a waiting write gets in. Each step is whole or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType

from sqlalchemy import Connection, Engine

#: How long one step may hold the write lock before it commits (the last statement may overrun it).
STEP_SECONDS = 0.05
#: How long the lock is left free after a step: past ``server.writes.LONGEST_PAUSE`` (50 ms).
PAUSE_SECONDS = 0.06
#: Rows a statement works on at most: a few milliseconds of work, so a step ends near its time.
BATCH = 1000


class Steps:
    """Write transactions of about :data:`STEP_SECONDS` each, with :data:`PAUSE_SECONDS` between,
    as a context manager: work runs on :attr:`conn`, and calls :meth:`tick` after each statement.
    ``after_step`` runs between two steps, while no transaction is open; ``begin_step`` at the start
    of each, in its transaction (to look again at what another writer may have changed meanwhile:
    what it raises ends the work, the step rolled back)."""

    def __init__(
        self,
        engine: Engine,
        *,
        after_step: Callable[[], None],
        begin_step: Callable[[Connection], None] | None = None,
        pause: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._pause = pause
        self._clock = clock
        self._after_step = after_step
        self._begin_step = begin_step
        self._txn: AbstractContextManager[Connection] | None = None
        self._begin()

    def __enter__(self) -> Steps:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Commit the last step, or roll back the one under way when ``exc`` ends the work."""
        self.close(kind, exc, tb)

    def _begin(self) -> None:
        self._txn = self._engine.begin()
        self.conn: Connection = self._txn.__enter__()
        self._started = self._clock()
        if self._begin_step is not None:
            try:
                self._begin_step(self.conn)
            except BaseException as exc:
                self.close(type(exc), exc, exc.__traceback__)
                raise

    def tick(self) -> None:
        """Commit and pause when this step has held the lock long enough."""
        if self._clock() - self._started >= STEP_SECONDS:
            self.close()
            self._after_step()
            self._pause(PAUSE_SECONDS)
            self._begin()

    def close(
        self,
        kind: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        """Commit the step under way, or roll it back when ``exc`` ends the work."""
        txn, self._txn = self._txn, None
        if txn is not None:
            txn.__exit__(kind, exc, tb)


__all__ = ["BATCH", "PAUSE_SECONDS", "STEP_SECONDS", "Steps"]
