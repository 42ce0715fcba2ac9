"""Runner leases: one process at a time runs a job's cycles (``provisor run`` / ``sync``).

The holder renews its lease while it lives; a killed holder's lease expires, so a crash never
blocks the job for longer than the lease.

Revision ID: e0003
Revises: e0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "e0003"
down_revision = "e0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engine_runner_leases",
        sa.Column("job", sa.String(200), primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("engine_runner_leases")
