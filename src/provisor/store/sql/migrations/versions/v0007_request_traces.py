"""Request traces: the latest requests and answers of tenants with tracing on.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

A tenant's ``trace`` setting (``provisor tenant set NAME --trace N``) makes the server keep its
last N requests with their answers here; ``provisor tenant trace NAME`` prints them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_traces",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column(
            "tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("request", sa.Text, nullable=True),
        sa.Column("response", sa.Text, nullable=True),
    )
    op.create_index("ix_request_traces_tenant", "request_traces", ["tenant_id", "seq"])


def downgrade() -> None:
    op.drop_table("request_traces")
