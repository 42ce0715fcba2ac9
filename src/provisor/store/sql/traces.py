"""Request traces in SQL: the latest requests and answers of each tenant with tracing on.

The server adds one row per traced request (:meth:`SqlTraces.add_trace`) and, in the same
transaction, drops the tenant's rows beyond the number it keeps, so a tenant never holds more than
its ``trace`` setting however long tracing stays on. The row is added only while the tenant's
stored settings still turn tracing on: a server applies the settings it read with the request's
token, up to a second old (its token cache), and a trace it kept after ``tenant set --no-trace``
deleted the traces would stay for good.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, bindparam, delete, insert, select

from provisor.store.base import Trace
from provisor.store.sql.prepared import Connections, Prepared
from provisor.store.sql.tables import request_traces as TR
from provisor.store.sql.tables import tenants as T
from provisor.store.sql.tenants import read_settings
from provisor.store.sql.values import from_micros, to_micros

_COLUMNS = ("tenant_id", "time", "method", "target", "status", "request", "response")


class TraceStatements:
    """The trace writes of one store, compiled once for its engine (``prepared``): a traced request
    costs two prepared statements in one transaction instead of building them with SQLAlchemy."""

    def __init__(self, engine: Engine) -> None:
        self.insert = Prepared(engine, insert(TR).values({n: bindparam(n) for n in _COLUMNS}))
        # the rows before the ``keep``-th newest of the tenant (the index on (tenant_id, seq))
        oldest_kept = (
            select(TR.c.seq)
            .where(TR.c.tenant_id == bindparam("tenant"))
            .order_by(TR.c.seq.desc())
            .limit(1)
            .offset(bindparam("skip"))
            .scalar_subquery()
        )
        self.prune = Prepared(
            engine, delete(TR).where(TR.c.tenant_id == bindparam("tenant"), TR.c.seq < oldest_kept)
        )
        #: the tenant's settings as stored now (``trace`` may have been turned off since the
        #: server read them)
        self.settings = Prepared(engine, select(T.c.settings).where(T.c.id == bindparam("tenant")))


def _tracing(stored: str | bytes) -> bool:
    """Whether stored tenant settings keep traces: ``trace`` a positive integer (the server's
    ``tenancy`` reads the setting in full; this is only whether it was turned off since).
    Unreadable settings keep none."""
    keep = read_settings(stored)[0].get("trace")
    return isinstance(keep, int) and not isinstance(keep, bool) and keep > 0


class SqlTraces:
    """Add, read and delete the request traces of a tenant."""

    _write: Engine
    _single: Engine
    engine: Engine
    connections: Connections
    _trace_sql: TraceStatements | None = None

    def add_trace(
        self,
        tenant_id: str,
        *,
        time: datetime,
        method: str,
        target: str,
        status: int,
        request: str | None,
        response: str | None,
        keep: int,
    ) -> None:
        """Record one request of ``tenant_id`` and keep only its ``keep`` newest; nothing when the
        tenant's stored settings no longer turn tracing on, or the tenant is gone."""
        sql = self._trace_sql
        if sql is None:
            sql = self._trace_sql = TraceStatements(self.engine)
        row = {
            "tenant_id": tenant_id,
            "time": to_micros(time),
            "method": method,
            "target": target,
            "status": status,
            "request": request,
            "response": response,
        }
        with self.connections.write() as tx:
            found = tx.first(sql.settings, {"tenant": tenant_id})
            if found is None or not _tracing(found[0]):
                return
            tx.execute(sql.insert, row)
            tx.execute(sql.prune, {"tenant": tenant_id, "skip": max(keep, 1) - 1})

    def traces(self, tenant_id: str, limit: int | None = None, *, after: int | None = None) -> list[Trace]:
        """The tenant's traces, oldest first; with ``limit``, only that many of the newest; with
        ``after``, only those kept after the trace of that ``seq`` (``tenant trace --follow``)."""
        query = select(TR).where(TR.c.tenant_id == tenant_id).order_by(TR.c.seq.desc())
        if after is not None:
            query = query.where(TR.c.seq > after)
        if limit is not None:
            query = query.limit(limit)
        with self._single.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Trace(
                r.seq, r.tenant_id, from_micros(r.time), r.method, r.target, r.status, r.request, r.response
            )
            for r in reversed(rows)
        ]

    def delete_traces(self, tenant_id: str) -> int:
        """Delete every trace of ``tenant_id``; how many there were."""
        with self._write.begin() as conn:
            return conn.execute(delete(TR).where(TR.c.tenant_id == tenant_id)).rowcount
