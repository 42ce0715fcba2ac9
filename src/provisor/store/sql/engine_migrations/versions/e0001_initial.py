"""Initial engine-state schema: job state, connections, memberships, escrows, staged, cycles, logs.

Revision ID: e0001
Revises:
Create Date: 2025-01-01

A frozen snapshot (it does not import ``engine_state_tables``): later revisions change it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "e0001"
down_revision = None
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _key(*names: str) -> list[sa.Column[str]]:
    """The key columns shared by the per-object tables."""
    sizes = {"job": 200, "kind": 16}
    return [sa.Column(n, sa.String(sizes.get(n, 400)), primary_key=True) for n in names]


def upgrade() -> None:
    op.create_table(
        "engine_job_state",
        sa.Column("job", sa.String(200), primary_key=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("watermark", sa.Text, nullable=True),
        sa.Column("q_reason", sa.Text, nullable=True),
        sa.Column("q_error", sa.Text, nullable=True),
        sa.Column("q_series_began", sa.BigInteger, nullable=True),
        sa.Column("q_current_began", sa.BigInteger, nullable=True),
        sa.Column("q_next_attempt", sa.BigInteger, nullable=True),
        sa.Column("q_series_count", sa.Integer, nullable=True),
        sa.Column("allow_deletes", sa.Integer, nullable=False),
        sa.Column("last_cycle", sa.String(64), nullable=True),
        sa.Column("last_cycle_finished", sa.BigInteger, nullable=True),
        sa.Column("steady_state_first", sa.BigInteger, nullable=True),
        sa.Column("steady_state_last", sa.BigInteger, nullable=True),
        sa.Column("config_hash", sa.Text, nullable=True),
    )

    op.create_table(
        "engine_connections",
        *_key("job", "kind", "anchor"),
        sa.Column("target_id", sa.String(400), nullable=False),
        sa.Column("display", sa.Text, nullable=False),
        sa.Column("active", sa.Integer, nullable=False),
    )
    op.create_index("ix_engine_connections_target", "engine_connections", ["job", "kind", "target_id"])

    op.create_table("engine_memberships", *_key("job", "group_anchor", "member_anchor"))

    op.create_table(
        "engine_escrows",
        *_key("job", "kind", "anchor"),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt", sa.BigInteger, nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("reference", sa.Integer, nullable=False),
    )

    op.create_table(
        "engine_staged",
        *_key("job", "kind", "anchor"),
        sa.Column("target_id", sa.String(400), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("staged", sa.BigInteger, nullable=False),
    )

    op.create_table(
        "engine_cycles",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("job", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("started", sa.BigInteger, nullable=False),
        sa.Column("finished", sa.BigInteger, nullable=True),
        sa.Column("result", sa.String(32), nullable=True),
        sa.Column("counts", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_engine_cycles_job", "engine_cycles", ["job", "started", "seq"])

    op.create_table(
        "engine_logs",
        sa.Column("id", _PK, primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(200), nullable=False),
        sa.Column("cycle", sa.String(64), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source_anchor", sa.String(400), nullable=False),
        sa.Column("target_id", sa.String(400), nullable=True),
        sa.Column("display", sa.Text, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("steps", sa.Text, nullable=False),
        sa.Column("modified", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
    )
    for name, column in (
        ("time", None),
        ("cycle", "cycle"),
        ("action", "action"),
        ("status", "status"),
        ("source", "source_anchor"),
        ("target", "target_id"),
    ):
        middle = [column] if column else []
        op.create_index(f"ix_engine_logs_{name}", "engine_logs", ["job", *middle, "time", "id"])


def downgrade() -> None:
    for table in (
        "engine_logs",
        "engine_cycles",
        "engine_staged",
        "engine_escrows",
        "engine_memberships",
        "engine_connections",
        "engine_job_state",
    ):
        op.drop_table(table)
