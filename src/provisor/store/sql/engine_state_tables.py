"""The engine-state schema as SQLAlchemy Core tables (what queries use; ``engine_migrations`` creates it).

It lives in its own database (the job's ``state:`` URL), apart from the SCIM store's, with its own
metadata and its own migration chain (version table ``engine_state_version``), so both schemas can
even share one file without stepping on each other.

    engine_job_state    job (PK), status, watermark, quarantine columns (q_*), allow_deletes,
                        last_cycle, last_cycle_finished, steady_state_first/last, config_hash
    engine_connections  (job, kind, anchor) PK, target_id (indexed with job, kind), display, active
    engine_memberships  (job, group_anchor, member_anchor) PK: memberships the engine provisioned
    engine_source_members  (job, group_anchor, member_anchor) PK, (job, member_anchor) indexed:
                        the assigned groups' direct user members as the source last said
    engine_escrows      (job, kind, anchor) PK, attempts, next_attempt, code, message, reference
    engine_staged       (job, kind, anchor) PK, target_id, action, staged
    engine_cycles       id (PK), job, kind, started, finished, result, counts (JSON), seq
    engine_logs         id (autoincrement PK), job, cycle, time, kind, source_anchor, target_id,
                        display, action, status, reason, steps (JSON), modified (JSON), error,
                        duration_ms; indexed for every LogQuery filter
    engine_runner_leases  job (PK), owner, expires: who runs the job's cycles, until when

Every timestamp is integer microseconds since the epoch, UTC; booleans are integers 0/1.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

#: Alembic's version table for this schema (the SCIM store keeps the default ``alembic_version``).
VERSION_TABLE = "engine_state_version"

#: An auto-incrementing 64-bit key; on SQLite exactly ``INTEGER PRIMARY KEY`` (the rowid).
PkType = BigInteger().with_variant(Integer(), "sqlite")

job_state = Table(
    "engine_job_state",
    metadata,
    Column("job", String(200), primary_key=True),
    Column("status", String(32), nullable=False),
    Column("watermark", Text, nullable=True),
    Column("q_reason", Text, nullable=True),  # NULL: not quarantined
    Column("q_error", Text, nullable=True),
    Column("q_series_began", BigInteger, nullable=True),
    Column("q_current_began", BigInteger, nullable=True),
    Column("q_next_attempt", BigInteger, nullable=True),
    Column("q_series_count", Integer, nullable=True),
    Column("allow_deletes", Integer, nullable=False),
    Column("last_cycle", String(64), nullable=True),
    Column("last_cycle_finished", BigInteger, nullable=True),
    Column("steady_state_first", BigInteger, nullable=True),
    Column("steady_state_last", BigInteger, nullable=True),
    Column("config_hash", Text, nullable=True),
)

connections = Table(
    "engine_connections",
    metadata,
    Column("job", String(200), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("anchor", String(400), primary_key=True),
    Column("target_id", String(400), nullable=False),
    Column("display", Text, nullable=False),
    Column("active", Integer, nullable=False),
    Index("ix_engine_connections_target", "job", "kind", "target_id"),
)

memberships = Table(
    "engine_memberships",
    metadata,
    Column("job", String(200), primary_key=True),
    Column("group_anchor", String(400), primary_key=True),
    Column("member_anchor", String(400), primary_key=True),
)

source_members = Table(
    "engine_source_members",
    metadata,
    Column("job", String(200), primary_key=True),
    Column("group_anchor", String(400), primary_key=True),
    Column("member_anchor", String(400), primary_key=True),
    # covering (group_anchor too): otherwise SQLite prefers scanning the primary key by job
    Index("ix_engine_source_members_member", "job", "member_anchor", "group_anchor"),
)

escrows = Table(
    "engine_escrows",
    metadata,
    Column("job", String(200), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("anchor", String(400), primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt", BigInteger, nullable=False),
    Column("code", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("reference", Integer, nullable=False),
)

staged = Table(
    "engine_staged",
    metadata,
    Column("job", String(200), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("anchor", String(400), primary_key=True),
    Column("target_id", String(400), nullable=False),
    Column("action", String(32), nullable=False),
    Column("staged", BigInteger, nullable=False),
)

cycles = Table(
    "engine_cycles",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("job", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("started", BigInteger, nullable=False),
    Column("finished", BigInteger, nullable=True),
    Column("result", String(32), nullable=True),
    Column("counts", Text, nullable=False),
    Column("seq", BigInteger, nullable=False),  # start order: breaks ties between equal ``started``
    Index("ix_engine_cycles_job", "job", "started", "seq"),
)

logs = Table(
    "engine_logs",
    metadata,
    Column("id", PkType, primary_key=True, autoincrement=True),
    Column("job", String(200), nullable=False),
    Column("cycle", String(64), nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("source_anchor", String(400), nullable=False),
    Column("target_id", String(400), nullable=True),
    Column("display", Text, nullable=False),
    Column("action", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("steps", Text, nullable=False),
    Column("modified", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("duration_ms", Float, nullable=False),
    # Every index ends in (time, id): a filtered query streams in order straight off the index.
    Index("ix_engine_logs_time", "job", "time", "id"),
    Index("ix_engine_logs_cycle", "job", "cycle", "time", "id"),
    Index("ix_engine_logs_action", "job", "action", "time", "id"),
    Index("ix_engine_logs_status", "job", "status", "time", "id"),
    Index("ix_engine_logs_source", "job", "source_anchor", "time", "id"),
    Index("ix_engine_logs_target", "job", "target_id", "time", "id"),
)

runner_leases = Table(
    "engine_runner_leases",
    metadata,
    Column("job", String(200), primary_key=True),
    Column("owner", Text, nullable=False),
    Column("expires", BigInteger, nullable=False),
)
