"""``SqlEngineState``: the SQL implementation of the engine's state port (engine/state.py).

One database per job file (the job's ``state:`` URL, e.g. ``sqlite:///clarizen-one.state.db``),
with its own schema (``engine_state_tables``) and migration chain (``engine_migrations``, version
table ``engine_state_version``). Opening runs the migrations: idempotent, and safe when two
processes open the same file (the upgrade runs under ``BEGIN IMMEDIATE`` and re-checks the version).

Durability: every write commits before it returns (``BEGIN IMMEDIATE`` ... ``COMMIT``), unless it
is made inside :meth:`SqlEngineState.batch` on the same thread; then it is committed when the
block exits. On SQLite (WAL, ``synchronous=NORMAL``) a commit survives the process being killed;
only an operating-system crash or power loss can lose the last commits.

The engine calls :meth:`~SqlEngineState.save_connection` and :meth:`~SqlEngineState.append_log`
once per object, so every statement here is compiled once (``prepared.Prepared``) and run on a
kept DBAPI connection (``prepared.Connections``), never through SQLAlchemy's ``Connection``.

Orders (the in-memory twin follows them; the contract suite checks both):

* ``connections(job, kind)``: by anchor, streamed in pages (keyset pagination: no transaction is
  held between pages, so the caller may write while iterating; deleting or updating the yielded
  connection is safe, other changes made meanwhile may or may not be seen);
* ``connection_by_target``: the smallest anchor when several connections share a target id;
* ``escrows(job)``: by (kind, anchor); ``staged_deletes(job)``: by (staged, kind, anchor);
* ``cycles(job, limit)``: the newest ``limit`` cycles, newest first (by started, then the order
  they were started in);
* ``logs(job, query)``: by (time, insertion), streamed in pages; ``query.limit`` keeps the *first*
  N records in that order; ``query.anchor`` matches the source anchor or the target id;
* ``prune_logs(job, before)``: deletes the records with ``time < before``, oldest first, in chunks.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Engine,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    union,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ClauseElement

from provisor.engine.model import ObjectKind
from provisor.engine.state import (
    KEEP,
    Cycle,
    CycleKind,
    Escrow,
    JobState,
    JobStateChange,
    JobStatus,
    LogQuery,
    LogRecord,
    LogStep,
    ObjectConnection,
    Quarantine,
    RunnerLease,
    StagedDelete,
)
from provisor.store.sql import engine_state_tables as t
from provisor.store.sql import migrate
from provisor.store.sql.engine import create_store_engine
from provisor.store.sql.prepared import Connections, Prepared, PreparedIn, Row, Transaction, in_list
from provisor.store.sql.values import from_micros, opt_from_micros, to_micros

#: Rows fetched per page when streaming connections and logs.
PAGE = 500
#: Anchors per query when only the anchors of a kind are listed (``anchors``).
ANCHOR_PAGE = 5000
#: Log records deleted per transaction by ``prune_logs`` (other writers wait at most one chunk).
PRUNE_CHUNK = 1000

# -- values ----------------------------------------------------------------------------------------


def _micros(when: datetime) -> int:
    """A tz-aware datetime as integer microseconds since the epoch (naive ones are refused)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"engine state needs tz-aware datetimes, got {when!r}")
    return to_micros(when)


def _opt_micros(when: datetime | None) -> int | None:
    return None if when is None else _micros(when)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _steps_json(steps: Sequence[LogStep]) -> str:
    return _json(
        [
            {"type": s.type, "status": s.status, "description": s.description, "details": dict(s.details)}
            for s in steps
        ]
    )


def _steps(text_: str) -> tuple[LogStep, ...]:
    return tuple(
        LogStep(type=s["type"], status=s["status"], description=s["description"], details=s["details"])
        for s in orjson.loads(text_)
    )


def _modified(text_: str) -> tuple[tuple[str, str | None, str | None], ...]:
    return tuple((name, old, new) for name, old, new in orjson.loads(text_))


# -- statements ------------------------------------------------------------------------------------


def _p(name: str) -> Any:
    return bindparam(name)


def _where(table: Table, *names: str) -> ColumnElement[bool]:
    return and_(*(table.c[n] == _p(n) for n in names))


class _Statements:
    """Every statement the state runs, compiled once for the engine's dialect."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        dialect_insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

        def upsert(table: Table, keys: Sequence[str]) -> Prepared:
            cols = [c.name for c in table.columns]
            stmt = dialect_insert(table).values({c: _p(c) for c in cols})
            stmt = stmt.on_conflict_do_update(
                index_elements=list(keys), set_={c: stmt.excluded[c] for c in cols if c not in keys}
            )
            return self.prepare(stmt)

        def insert_ignore(table: Table) -> Prepared:
            stmt = dialect_insert(table).values({c.name: _p(c.name) for c in table.columns})
            return self.prepare(stmt.on_conflict_do_nothing())

        js, cn, ms, es, st, cy, lg = (
            t.job_state,
            t.connections,
            t.memberships,
            t.escrows,
            t.staged,
            t.cycles,
            t.logs,
        )
        self.job = self.prepare(select(*js.columns).where(_where(js, "job")))
        self.save_job = upsert(js, ["job"])
        self.create_job = insert_ignore(js)
        self._job_updates: dict[tuple[tuple[str, ...], int | None, bool], Prepared] = {}

        rl = t.runner_leases
        self.lease = self.prepare(select(rl.c.owner, rl.c.expires).where(_where(rl, "job")))
        # Taken when nobody holds it (the insert), or renewed or taken over (the update): each
        # one atomic statement, so two processes racing for a free lease cannot both get it.
        self.take_lease = self.prepare(
            update(rl)
            .where(rl.c.job == _p("job"), or_(rl.c.owner == _p("owner"), rl.c.expires <= _p("now")))
            .values(owner=_p("new_owner"), expires=_p("new_expires"))
        )
        self.insert_lease = insert_ignore(rl)
        self.release_lease = self.prepare(delete(rl).where(_where(rl, "job", "owner")))

        conn_cols = (cn.c.kind, cn.c.anchor, cn.c.target_id, cn.c.display, cn.c.active)
        self.connection = self.prepare(select(*conn_cols).where(_where(cn, "job", "kind", "anchor")))
        self.connections_in = PreparedIn(
            engine,
            "a",
            lambda names: select(*conn_cols).where(
                _where(cn, "job", "kind"), cn.c.anchor.in_(in_list(names))
            ),
        )
        # No ORDER BY: it would tempt the planner onto the primary key; the smallest anchor is
        # picked in Python from the (usually single) rows of the target index.
        self.connection_by_target = self.prepare(
            select(*conn_cols).where(_where(cn, "job", "kind", "target_id"))
        )
        self.save_connection = upsert(cn, ["job", "kind", "anchor"])
        self.delete_connection = self.prepare(delete(cn).where(_where(cn, "job", "kind", "anchor")))
        self.connections_first = self.prepare(
            select(*conn_cols).where(_where(cn, "job", "kind")).order_by(cn.c.anchor).limit(PAGE)
        )
        self.connections_after = self.prepare(
            select(*conn_cols)
            .where(_where(cn, "job", "kind"), cn.c.anchor > _p("after"))
            .order_by(cn.c.anchor)
            .limit(PAGE)
        )
        self.anchors_first = self.prepare(
            select(cn.c.anchor).where(_where(cn, "job", "kind")).order_by(cn.c.anchor).limit(ANCHOR_PAGE)
        )
        self.anchors_after = self.prepare(
            select(cn.c.anchor)
            .where(_where(cn, "job", "kind"), cn.c.anchor > _p("after"))
            .order_by(cn.c.anchor)
            .limit(ANCHOR_PAGE)
        )
        self.count_connections = self.prepare(
            select(func.count()).select_from(cn).where(_where(cn, "job", "kind"))
        )
        self.delete_job_connections = self.prepare(delete(cn).where(_where(cn, "job")))

        self.members = self.prepare(select(ms.c.member_anchor).where(_where(ms, "job", "group_anchor")))
        member_conn = cn.alias("member_conn")
        self.lapsed_members = self.prepare(
            select(ms.c.member_anchor)
            .select_from(
                ms.outerjoin(
                    member_conn,
                    and_(
                        member_conn.c.job == ms.c.job,
                        member_conn.c.kind == _p("user_kind"),
                        member_conn.c.anchor == ms.c.member_anchor,
                    ),
                )
            )
            .where(
                _where(ms, "job", "group_anchor"),
                or_(member_conn.c.anchor.is_(None), member_conn.c.active == 0),
            )
        )
        sm = t.source_members
        self.source_members = self.prepare(
            select(sm.c.member_anchor).where(_where(sm, "job", "group_anchor"))
        )
        self.source_groups_of = self.prepare(
            select(sm.c.group_anchor).where(_where(sm, "job", "member_anchor"))
        )
        self.add_source_member = insert_ignore(sm)
        self.remove_source_member = self.prepare(
            delete(sm).where(_where(sm, "job", "group_anchor", "member_anchor"))
        )
        self.delete_job_source_members = self.prepare(delete(sm).where(_where(sm, "job")))
        self.add_member = insert_ignore(ms)
        self.remove_member = self.prepare(
            delete(ms).where(_where(ms, "job", "group_anchor", "member_anchor"))
        )
        self.delete_job_members = self.prepare(delete(ms).where(_where(ms, "job")))

        escrow_cols = [c for c in es.columns if c.name != "job"]
        self.escrow = self.prepare(select(*escrow_cols).where(_where(es, "job", "kind", "anchor")))
        self.save_escrow = upsert(es, ["job", "kind", "anchor"])
        self.clear_escrow = self.prepare(delete(es).where(_where(es, "job", "kind", "anchor")))
        self.escrows = self.prepare(
            select(*escrow_cols).where(_where(es, "job")).order_by(es.c.kind, es.c.anchor)
        )
        self.clear_escrows = self.prepare(delete(es).where(_where(es, "job")))

        self.stage = upsert(st, ["job", "kind", "anchor"])
        self.staged = self.prepare(
            select(st.c.kind, st.c.anchor, st.c.target_id, st.c.action, st.c.staged)
            .where(_where(st, "job"))
            .order_by(st.c.staged, st.c.kind, st.c.anchor)
        )
        #: clear_staged by which of (kind, anchor) are given.
        self.clear_staged = {
            (by_kind, by_anchor): self.prepare(
                delete(st).where(
                    _where(st, "job", *(["kind"] if by_kind else []), *(["anchor"] if by_anchor else []))
                )
            )
            for by_kind in (False, True)
            for by_anchor in (False, True)
        }

        next_seq = select(func.coalesce(func.max(cy.c.seq), 0) + 1).scalar_subquery()
        self.start_cycle = self.prepare(
            insert(cy).values(
                {**{c.name: _p(c.name) for c in cy.columns if c.name != "seq"}, "seq": next_seq}
            )
        )
        self.finish_cycle = self.prepare(
            update(cy)
            .where(_where(cy, "id", "job"))
            .values(finished=_p("finished"), result=_p("result"), counts=_p("counts"))
        )
        self.cycles = self.prepare(
            select(cy.c.id, cy.c.kind, cy.c.started, cy.c.finished, cy.c.result, cy.c.counts)
            .where(_where(cy, "job"))
            .order_by(cy.c.started.desc(), cy.c.seq.desc())
            .limit(_p("n"))
        )

        self._log_cols = [c for c in lg.columns if c.name not in ("id", "job")]
        self.append_log = self.prepare(
            insert(lg).values({c.name: _p(c.name) for c in lg.columns if c.name != "id"})
        )
        # Retention (2.12): the oldest records first, a chunk per transaction, straight off the
        # (job, time, id) index; the ids are picked by a subquery, as not every dialect has
        # DELETE ... LIMIT.
        oldest = (
            select(lg.c.id)
            .where(lg.c.job == _p("job"), lg.c.time < _p("before"))
            .order_by(lg.c.time, lg.c.id)
            .limit(PRUNE_CHUNK)
        )
        self.prune_logs = self.prepare(delete(lg).where(lg.c.id.in_(oldest.scalar_subquery())))
        self._log_queries: dict[tuple[bool, ...], Prepared] = {}
        self._lock = threading.Lock()

    def prepare(self, statement: ClauseElement) -> Prepared:
        return Prepared(self._engine, statement)

    def update_job(
        self, columns: tuple[str, ...], status_from: int | None, watermark_guarded: bool = False
    ) -> Prepared:
        """``UPDATE engine_job_state SET`` each of ``columns`` ``= :set_<column>`` for ``:job``
        (one compiled statement per combination). With ``status_from`` (a count), the status is
        set only when the stored one is among ``:from_0`` ... (a ``CASE``, so the check and the
        write are one statement); with ``watermark_guarded``, the watermark only when the stored
        one is still ``:was_watermark``."""
        key = (columns, status_from, watermark_guarded)
        found = self._job_updates.get(key)
        if found is None:
            js = t.job_state
            values: dict[str, Any] = {c: _p(f"set_{c}") for c in columns}
            if status_from is not None and "status" in values:
                allowed = [_p(f"from_{i}") for i in range(status_from)]
                values["status"] = case((js.c.status.in_(allowed), values["status"]), else_=js.c.status)
            if watermark_guarded and "watermark" in values:
                unchanged = js.c.watermark.is_not_distinct_from(_p("was_watermark"))
                values["watermark"] = case((unchanged, values["watermark"]), else_=js.c.watermark)
            found = self.prepare(update(js).where(_where(js, "job")).values(values))
            with self._lock:
                self._job_updates[key] = found
        return found

    def logs(self, query: LogQuery, first: bool) -> Prepared:
        """The page query for ``query``'s filters (one compiled statement per combination).

        Parameters: ``job``, the filters given, ``n`` (page size) and, after the first page,
        ``after_time`` and ``after_id``. Every filter but ``anchor`` is a prefix of an index
        ending in (time, id), so a page is read in order straight off it. ``anchor`` is the union
        of two such index ranges (source anchor, target id), then filtered and sorted: an ``OR``
        would make the planner walk the whole (job, time) index instead.
        """
        key = (
            query.cycle is not None,
            query.action is not None,
            query.status is not None,
            query.anchor is not None,
            first,
        )
        found = self._log_queries.get(key)
        if found is None:
            found = self.prepare(self._logs_statement(key))
            with self._lock:
                self._log_queries[key] = found
        return found

    def _logs_statement(self, key: tuple[bool, ...]) -> ClauseElement:
        lg = t.logs
        names = [n for given, n in zip(key[:3], ("cycle", "action", "status"), strict=True) if given]
        filters = [lg.c[n] == _p(n) for n in names]
        after = [] if key[4] else [tuple_(lg.c.time, lg.c.id) > tuple_(_p("after_time"), _p("after_id"))]
        columns = (lg.c.id, *self._log_cols)
        if not key[3]:
            return (
                select(*columns)
                .where(lg.c.job == _p("job"), *filters, *after)
                .order_by(lg.c.time, lg.c.id)
                .limit(_p("n"))
            )
        # The anchor's records (few: one per cycle that touched the object) from both indexes;
        # the other filters apply outside, so that they cannot lure the planner to their index.
        both = union(
            *(
                select(*columns).where(lg.c.job == _p("job"), column == _p("anchor"), *after)
                for column in (lg.c.source_anchor, lg.c.target_id)
            )
        ).subquery()
        return (
            select(*both.c)
            .where(*(both.c[n] == _p(n) for n in names))
            .order_by(both.c.time, both.c.id)
            .limit(_p("n"))
        )


# -- rows ------------------------------------------------------------------------------------------


def _job_state(row: Row) -> JobState:
    (job, status, watermark, q_reason, q_error, q_series, q_current, q_next, q_count) = row[:9]
    allow_deletes, last_cycle, last_finished, steady_first, steady_last, config_hash = row[9:]
    quarantine = None
    if q_reason is not None:
        quarantine = Quarantine(
            reason=q_reason,
            error=q_error,
            series_began=from_micros(q_series),
            current_began=from_micros(q_current),
            next_attempt=from_micros(q_next),
            series_count=q_count,
        )
    return JobState(
        job=job,
        status=JobStatus(status),
        watermark=watermark,
        quarantine=quarantine,
        allow_deletes=bool(allow_deletes),
        last_cycle=last_cycle,
        last_cycle_finished=opt_from_micros(last_finished),
        steady_state_first=opt_from_micros(steady_first),
        steady_state_last=opt_from_micros(steady_last),
        config_hash=config_hash,
    )


def _job_params(state: JobState) -> dict[str, Any]:
    q = state.quarantine
    return {
        "job": state.job,
        "status": JobStatus(state.status).value,
        "watermark": state.watermark,
        "q_reason": None if q is None else q.reason,
        "q_error": None if q is None else q.error,
        "q_series_began": None if q is None else _micros(q.series_began),
        "q_current_began": None if q is None else _micros(q.current_began),
        "q_next_attempt": None if q is None else _micros(q.next_attempt),
        "q_series_count": None if q is None else q.series_count,
        "allow_deletes": int(state.allow_deletes),
        "last_cycle": state.last_cycle,
        "last_cycle_finished": _opt_micros(state.last_cycle_finished),
        "steady_state_first": _opt_micros(state.steady_state_first),
        "steady_state_last": _opt_micros(state.steady_state_last),
        "config_hash": state.config_hash,
    }


#: The columns of each ``JobState`` field (a quarantine takes six; NULL ``q_reason``: none).
_JOB_COLUMNS: dict[str, tuple[str, ...]] = {
    "quarantine": (
        "q_reason",
        "q_error",
        "q_series_began",
        "q_current_began",
        "q_next_attempt",
        "q_series_count",
    )
}


def _job_update(job: str, change: JobStateChange) -> tuple[tuple[str, ...], int | None, bool, dict[str, Any]]:
    """(columns set, number of allowed statuses or None, whether the watermark is guarded,
    parameters) of ``change`` for ``job``."""
    named = change.named()
    status_from = None
    if "status" in named and change.status_from is not None:
        if not change.status_from:
            del named["status"]  # from no status at all: never set
        else:
            status_from = sorted(JobStatus(s).value for s in change.status_from)
    values = _job_params(replace(JobState(job=job), **named))  # converted (and checked) as stored
    columns = tuple(c for name in named for c in _JOB_COLUMNS.get(name, (name,)))
    params: dict[str, Any] = {"job": job, **{f"set_{c}": values[c] for c in columns}}
    params.update({f"from_{i}": v for i, v in enumerate(status_from or ())})
    guarded = "watermark" in named and change.watermark_was is not KEEP
    if guarded:
        params["was_watermark"] = change.watermark_was
    return columns, None if status_from is None else len(status_from), guarded, params


def _connection(row: Row) -> ObjectConnection:
    kind, anchor, target_id, display, active = row
    return ObjectConnection(ObjectKind(kind), anchor, target_id, display, bool(active))


def _escrow(row: Row) -> Escrow:
    kind, anchor, attempts, next_attempt, code, message, reference = row
    return Escrow(
        ObjectKind(kind), anchor, attempts, from_micros(next_attempt), code, message, bool(reference)
    )


def _cycle(job: str, row: Row) -> Cycle:
    id_, kind, started, finished, result, counts = row
    return Cycle(
        id_,
        job,
        CycleKind(kind),
        from_micros(started),
        opt_from_micros(finished),
        result,
        orjson.loads(counts),
    )


def _log(row: Row) -> LogRecord:
    (_id, cycle, time, kind, source_anchor, target_id, display, action, status, reason) = row[:10]
    steps, modified, error, duration_ms = row[10:]
    return LogRecord(
        cycle=cycle,
        time=from_micros(time),
        kind=ObjectKind(kind),
        source_anchor=source_anchor,
        target_id=target_id,
        display=display,
        action=action,
        status=status,
        reason=reason,
        steps=_steps(steps),
        modified=_modified(modified),
        error=error,
        duration_ms=float(duration_ms),
    )


# -- the state -------------------------------------------------------------------------------------


class SqlEngineState:
    """Engine state in a SQL database (SQLite by default); implements ``EngineState``.

    Thread-safe: one instance can serve every worker of a job. Opening creates or migrates the
    schema. See the module docstring for durability and result orders.
    """

    def __init__(
        self,
        url: str,
        *,
        engine_options: Mapping[str, Any] | None = None,
        busy_timeout: float | None = None,
    ) -> None:
        """``busy_timeout``: seconds a write waits for another's lock on SQLite (default 5)."""
        self.url = url
        options = dict(engine_options or {})
        if busy_timeout is not None:
            options["busy_timeout_ms"] = round(busy_timeout * 1000)
        self.engine: Engine = create_store_engine(url, **options)
        try:
            migrate.upgrade(self.engine, migrate.ENGINE_STATE)
            self._sql = _Statements(self.engine)
        except BaseException:
            self.engine.dispose()
            raise
        #: The DBAPI connections kept for the statements (``observers`` counts what they run).
        self.dbapi = Connections(self.engine)
        self._local = threading.local()  # .tx: this thread's open batch transaction, if any

    def __repr__(self) -> str:
        return f"SqlEngineState({self.engine.url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> SqlEngineState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection; the state must not be used afterwards."""
        self.dbapi.close()
        self.engine.dispose()

    # -- transactions ------------------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit: this thread's writes inside the block share one transaction.

        Reads inside the block (on this thread) see those writes. The transaction commits when the
        block exits, normally or by an exception (a write that returned is kept either way; the
        exception then propagates), so only the death of the process loses the block's writes. A
        nested ``batch()`` joins the outer one. The block holds the database's write lock: other
        threads' and processes' writes wait for it (reads do not), so keep blocks short (e.g.
        100 objects or 200 ms) and never wait inside one for another thread that writes.
        """
        if getattr(self._local, "tx", None) is not None:
            yield
            return
        outer = self.dbapi.write()
        tx = outer.__enter__()
        self._local.tx = tx
        try:
            yield
        finally:
            self._local.tx = None
            outer.__exit__(None, None, None)  # commit; on failure it rolls back and raises

    @contextmanager
    def _write(self, multi: bool = False) -> Iterator[Transaction]:
        """A write: its own transaction, or the current batch's (a savepoint when ``multi``, so a
        write of several statements is all-or-nothing inside a batch too)."""
        tx: Transaction | None = getattr(self._local, "tx", None)
        if tx is None:
            with self.dbapi.write() as own:
                assert isinstance(own, Transaction)
                yield own
        elif not multi:
            yield tx
        else:
            tx.raw("SAVEPOINT engine_state_write")
            try:
                yield tx
            except BaseException:
                tx.raw("ROLLBACK TO SAVEPOINT engine_state_write")
                tx.raw("RELEASE SAVEPOINT engine_state_write")
                raise
            tx.raw("RELEASE SAVEPOINT engine_state_write")

    def _rows(self, statement: Prepared, params: Mapping[str, Any]) -> list[Row]:
        tx: Transaction | None = getattr(self._local, "tx", None)
        if tx is not None:
            return tx.rows(statement, params)
        return self.dbapi.rows(statement, params)

    def _one(self, statement: Prepared, params: Mapping[str, Any]) -> Row | None:
        rows = self._rows(statement, params)
        return tuple(rows[0]) if rows else None

    # -- job ---------------------------------------------------------------------------------------

    def job_state(self, job: str) -> JobState:
        """The job's state; a job never saved has the defaults (status NotRun, no watermark)."""
        row = self._one(self._sql.job, {"job": job})
        return JobState(job=job) if row is None else _job_state(row)

    def save_job_state(self, state: JobState) -> None:
        params = _job_params(state)
        with self._write() as tx:
            tx.execute(self._sql.save_job, params)

    def update_job_state(self, job: str, change: JobStateChange) -> JobState:
        """Set the fields ``change`` names, and only their columns, in one transaction: the row is
        created with the defaults if need be, then one ``UPDATE`` (the status condition inside
        it); the job's state after it."""
        with self._write(multi=True) as tx:
            self._update_job(tx, job, change, create=True)
            row = tx.first(self._sql.job, {"job": job})
        assert row is not None
        return _job_state(row)

    def _update_job(self, tx: Transaction, job: str, change: JobStateChange, *, create: bool) -> None:
        columns, status_from, guarded, params = _job_update(job, change)
        if create:
            tx.execute(self._sql.create_job, _job_params(JobState(job=job)))
        if columns:
            tx.execute(self._sql.update_job(columns, status_from, guarded), params)

    # -- runner lease ------------------------------------------------------------------------------

    def acquire_lease(self, job: str, owner: str, *, now: datetime, expires: datetime) -> RunnerLease:
        """Take or renew the job's runner lease (see ``EngineState.acquire_lease``)."""
        params = {
            "job": job,
            "owner": owner,
            "now": _micros(now),
            "new_owner": owner,
            "new_expires": _micros(expires),
        }
        with self._write(multi=True) as tx:
            if tx.execute(self._sql.take_lease, params).rowcount == 0:
                tx.execute(
                    self._sql.insert_lease, {"job": job, "owner": owner, "expires": params["new_expires"]}
                )
            row = tx.first(self._sql.lease, {"job": job})
        assert row is not None
        return RunnerLease(job, row[0], from_micros(row[1]))

    def release_lease(self, job: str, owner: str) -> None:
        with self._write() as tx:
            tx.execute(self._sql.release_lease, {"job": job, "owner": owner})

    def lease(self, job: str) -> RunnerLease | None:
        row = self._one(self._sql.lease, {"job": job})
        return None if row is None else RunnerLease(job, row[0], from_micros(row[1]))

    # -- object connections ------------------------------------------------------------------------

    def connection(self, job: str, kind: ObjectKind, anchor: str) -> ObjectConnection | None:
        row = self._one(self._sql.connection, {"job": job, "kind": kind.value, "anchor": anchor})
        return None if row is None else _connection(row)

    def connections_of(
        self, job: str, kind: ObjectKind, anchors: Iterable[str]
    ) -> dict[str, ObjectConnection]:
        wanted = list(dict.fromkeys(anchors))
        found: dict[str, ObjectConnection] = {}
        for statement, params in self._sql.connections_in.parts({"job": job, "kind": kind.value}, wanted):
            for row in self._rows(statement, params):
                conn = _connection(row)
                found[conn.anchor] = conn
        return found

    def connection_by_target(self, job: str, kind: ObjectKind, target_id: str) -> ObjectConnection | None:
        rows = self._rows(
            self._sql.connection_by_target, {"job": job, "kind": kind.value, "target_id": target_id}
        )
        return _connection(min(rows, key=lambda r: r[1])) if rows else None

    def save_connection(self, job: str, connection: ObjectConnection) -> None:
        """Create or replace the connection of ``(job, connection.kind, connection.anchor)``."""
        params = {
            "job": job,
            "kind": ObjectKind(connection.kind).value,
            "anchor": connection.anchor,
            "target_id": connection.target_id,
            "display": connection.display,
            "active": int(connection.active),
        }
        with self._write() as tx:
            tx.execute(self._sql.save_connection, params)

    def delete_connection(self, job: str, kind: ObjectKind, anchor: str) -> None:
        """Forget a connection (nothing happens when there is none)."""
        with self._write() as tx:
            tx.execute(self._sql.delete_connection, {"job": job, "kind": kind.value, "anchor": anchor})

    def connections(self, job: str, kind: ObjectKind) -> Iterator[ObjectConnection]:
        """Every connection of a kind, by anchor, streamed a page at a time."""
        sql = self._sql
        for row in self._by_anchor(sql.connections_first, sql.connections_after, job, kind, PAGE, 1):
            yield _connection(row)

    def anchors(self, job: str, kind: ObjectKind) -> Iterator[str]:
        """Every connected anchor of a kind, in order, streamed ``ANCHOR_PAGE`` at a time."""
        sql = self._sql
        for row in self._by_anchor(sql.anchors_first, sql.anchors_after, job, kind, ANCHOR_PAGE, 0):
            yield row[0]

    def _by_anchor(
        self, first: Prepared, after: Prepared, job: str, kind: ObjectKind, page: int, anchor_column: int
    ) -> Iterator[Row]:
        """The rows of a connections listing in anchor order, ``page`` at a time: ``first``, then
        ``after`` the anchor (column ``anchor_column``) where the previous page ended."""
        params: dict[str, Any] = {"job": job, "kind": kind.value}
        rows = self._rows(first, params)
        while rows:
            yield from rows
            if len(rows) < page:
                return
            params["after"] = rows[-1][anchor_column]
            rows = self._rows(after, params)

    def count_connections(self, job: str, kind: ObjectKind) -> int:
        row = self._one(self._sql.count_connections, {"job": job, "kind": kind.value})
        assert row is not None
        return int(row[0])

    # -- provisioned memberships -------------------------------------------------------------------

    def members(self, job: str, group_anchor: str) -> set[str]:
        return {r[0] for r in self._rows(self._sql.members, {"job": job, "group_anchor": group_anchor})}

    def lapsed_members(self, job: str, group_anchor: str) -> set[str]:
        params = {"job": job, "group_anchor": group_anchor, "user_kind": ObjectKind.USER.value}
        return {r[0] for r in self._rows(self._sql.lapsed_members, params)}

    # -- source membership of assigned groups -----------------------------------------------------

    def source_members(self, job: str, group_anchor: str) -> set[str]:
        return {
            r[0] for r in self._rows(self._sql.source_members, {"job": job, "group_anchor": group_anchor})
        }

    def set_source_members(self, job: str, group_anchor: str, member_anchors: Iterable[str]) -> None:
        """Replace by difference in one transaction: a changed group costs its changes."""
        wanted = set(member_anchors)
        key = {"job": job, "group_anchor": group_anchor}
        with self._write(multi=True) as tx:
            have = {r[0] for r in tx.rows(self._sql.source_members, key)}
            gone = [{**key, "member_anchor": m} for m in have - wanted]
            new = [{**key, "member_anchor": m} for m in wanted - have]
            if gone:
                tx.many(self._sql.remove_source_member, gone)
            if new:
                tx.many(self._sql.add_source_member, new)

    def source_groups_of(self, job: str, member_anchor: str) -> set[str]:
        params = {"job": job, "member_anchor": member_anchor}
        return {r[0] for r in self._rows(self._sql.source_groups_of, params)}

    def add_members(self, job: str, group_anchor: str, member_anchors: Iterable[str]) -> None:
        """Record members as provisioned (those already recorded stay as they are)."""
        params = [
            {"job": job, "group_anchor": group_anchor, "member_anchor": m}
            for m in dict.fromkeys(member_anchors)
        ]
        if params:
            with self._write(multi=True) as tx:
                tx.many(self._sql.add_member, params)

    def remove_members(self, job: str, group_anchor: str, member_anchors: Iterable[str]) -> None:
        """Forget provisioned members (anchors not recorded are ignored)."""
        params = [
            {"job": job, "group_anchor": group_anchor, "member_anchor": m}
            for m in dict.fromkeys(member_anchors)
        ]
        if params:
            with self._write(multi=True) as tx:
                tx.many(self._sql.remove_member, params)

    # -- escrows -----------------------------------------------------------------------------------

    def escrow(self, job: str, kind: ObjectKind, anchor: str) -> Escrow | None:
        row = self._one(self._sql.escrow, {"job": job, "kind": kind.value, "anchor": anchor})
        return None if row is None else _escrow(row)

    def save_escrow(self, job: str, escrow: Escrow) -> None:
        """Create or replace the escrow of ``(job, escrow.kind, escrow.anchor)``."""
        params = {
            "job": job,
            "kind": ObjectKind(escrow.kind).value,
            "anchor": escrow.anchor,
            "attempts": escrow.attempts,
            "next_attempt": _micros(escrow.next_attempt),
            "code": escrow.code,
            "message": escrow.message,
            "reference": int(escrow.reference),
        }
        with self._write() as tx:
            tx.execute(self._sql.save_escrow, params)

    def clear_escrow(self, job: str, kind: ObjectKind, anchor: str) -> None:
        with self._write() as tx:
            tx.execute(self._sql.clear_escrow, {"job": job, "kind": kind.value, "anchor": anchor})

    def escrows(self, job: str) -> list[Escrow]:
        """The job's escrows by (kind, anchor)."""
        return [_escrow(r) for r in self._rows(self._sql.escrows, {"job": job})]

    def clear_escrows(self, job: str) -> None:
        with self._write() as tx:
            tx.execute(self._sql.clear_escrows, {"job": job})

    # -- staged deletes ----------------------------------------------------------------------------

    def stage_delete(self, job: str, staged: StagedDelete) -> None:
        """Hold a disable or delete back (replacing any staged for the same object)."""
        params = {
            "job": job,
            "kind": ObjectKind(staged.kind).value,
            "anchor": staged.anchor,
            "target_id": staged.target_id,
            "action": staged.action,
            "staged": _micros(staged.staged),
        }
        with self._write() as tx:
            tx.execute(self._sql.stage, params)

    def staged_deletes(self, job: str) -> list[StagedDelete]:
        """The held deletes by (staged, kind, anchor)."""
        return [
            StagedDelete(ObjectKind(kind), anchor, target_id, action, from_micros(when))
            for kind, anchor, target_id, action, when in self._rows(self._sql.staged, {"job": job})
        ]

    def clear_staged(self, job: str, kind: ObjectKind | None = None, anchor: str | None = None) -> None:
        """Drop staged deletes: all of the job's, or those of ``kind`` and/or ``anchor``."""
        params: dict[str, Any] = {"job": job}
        if kind is not None:
            params["kind"] = ObjectKind(kind).value
        if anchor is not None:
            params["anchor"] = anchor
        with self._write() as tx:
            tx.execute(self._sql.clear_staged[kind is not None, anchor is not None], params)

    # -- cycles and logs ---------------------------------------------------------------------------

    def start_cycle(self, job: str, kind: CycleKind, started: datetime) -> Cycle:
        """Record a new cycle (a fresh GUID id) and return it."""
        cycle = Cycle(id=str(uuid.uuid4()), job=job, kind=CycleKind(kind), started=started)
        started_us = _micros(started)
        params = {
            "id": cycle.id,
            "job": job,
            "kind": cycle.kind.value,
            "started": started_us,
            "finished": None,
            "result": None,
            "counts": "{}",
        }
        with self._write() as tx:
            tx.execute(self._sql.start_cycle, params)
        return Cycle(cycle.id, job, cycle.kind, from_micros(started_us))

    def finish_cycle(self, cycle: Cycle) -> None:
        """Store a cycle's ``finished``, ``result`` and ``counts``; KeyError for an unknown cycle."""
        params = {
            "id": cycle.id,
            "job": cycle.job,
            "finished": _opt_micros(cycle.finished),
            "result": cycle.result,
            "counts": _json(dict(cycle.counts)),
        }
        with self._write() as tx:
            changed = tx.execute(self._sql.finish_cycle, params).rowcount
        if changed == 0:
            raise KeyError(f"no cycle {cycle.id!r} for job {cycle.job!r}")

    def cycles(self, job: str, limit: int = 20) -> list[Cycle]:
        """The newest ``limit`` cycles, newest first."""
        return [_cycle(job, r) for r in self._rows(self._sql.cycles, {"job": job, "n": max(limit, 0)})]

    def append_log(self, job: str, record: LogRecord) -> None:
        params = {
            "cycle": record.cycle,
            "time": _micros(record.time),
            "kind": ObjectKind(record.kind).value,
            "source_anchor": record.source_anchor,
            "target_id": record.target_id,
            "display": record.display,
            "action": record.action,
            "status": record.status,
            "reason": record.reason,
            "steps": _steps_json(record.steps) if record.steps else "[]",
            "modified": _json(record.modified) if record.modified else "[]",
            "error": record.error,
            "duration_ms": float(record.duration_ms),
        }
        with self._write() as tx:
            tx.execute(self._sql.append_log, {"job": job, **params})

    def logs(self, job: str, query: LogQuery) -> Iterator[LogRecord]:
        """The job's log records matching ``query``, by (time, insertion order), streamed.

        ``query.limit`` keeps the first N records in that order (None: all of them).
        """
        remaining = query.limit
        if remaining is not None and remaining <= 0:
            return
        params: dict[str, Any] = {"job": job}
        for name in ("cycle", "action", "status"):
            if getattr(query, name) is not None:
                params[name] = getattr(query, name)
        if query.anchor is not None:
            params["anchor"] = query.anchor
        statement = self._sql.logs(query, first=True)
        while True:
            size = PAGE if remaining is None else min(PAGE, remaining)
            params["n"] = size
            rows = self._rows(statement, params)
            for row in rows:
                yield _log(row)
            if remaining is not None:
                remaining -= len(rows)
                if remaining <= 0:
                    return
            if len(rows) < size:
                return
            params["after_id"], params["after_time"] = rows[-1][0], rows[-1][2]
            statement = self._sql.logs(query, first=False)

    def prune_logs(self, job: str, before: datetime) -> int:
        """Delete the job's log records older than ``before`` (retention, 2.12); how many went.

        Oldest first, ``PRUNE_CHUNK`` records per transaction (outside a :meth:`batch`), so a
        first prune of months of records never holds the write lock for long and a prune cut short
        leaves the newest records, never a gap. Each chunk is a range of the ``(job, time, id)``
        index. Records at exactly ``before`` stay; cycles are kept.
        """
        params = {"job": job, "before": _micros(before)}
        pruned = 0
        while True:
            with self._write() as tx:
                count = tx.execute(self._sql.prune_logs, params).rowcount
            pruned += count
            if count < PRUNE_CHUNK:
                return pruned

    # -- restart (2.10) ----------------------------------------------------------------------------

    def reset(self, job: str, *, watermark: bool, escrows: bool, quarantine: bool, connections: bool) -> None:
        """Clear state by Graph restart scope, in one transaction.

        ``watermark``: the next cycle is an initial one. ``escrows``: forget failures.
        ``quarantine``: lift it (status Quarantine becomes Active). ``connections`` (scope Full):
        forget object connections and provisioned memberships too. Staged deletes (see
        :meth:`clear_staged`), cycles and logs are never touched.
        """
        change = JobStateChange(
            watermark=None if watermark else KEEP,
            quarantine=None if quarantine else KEEP,
            status=JobStatus.ACTIVE if quarantine else KEEP,
            status_from=frozenset({JobStatus.QUARANTINE}),
        )
        with self._write(multi=True) as tx:
            self._update_job(tx, job, change, create=False)  # a job never saved stays so
            if escrows:
                tx.execute(self._sql.clear_escrows, {"job": job})
            if connections:
                tx.execute(self._sql.delete_job_connections, {"job": job})
                tx.execute(self._sql.delete_job_members, {"job": job})
                tx.execute(self._sql.delete_job_source_members, {"job": job})
