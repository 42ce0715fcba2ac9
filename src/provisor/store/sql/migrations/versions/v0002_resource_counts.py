"""Resource counts per tenant and type: an unfiltered list's totalResults by key, not by COUNT.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

The store keeps ``resource_counts`` in the transaction of every create and delete; this revision
creates the table and counts what is already stored.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resource_counts",
        sa.Column(
            "tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("resource_type", sa.String(16), primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
    )
    op.execute(
        "INSERT INTO resource_counts (tenant_id, resource_type, n) "
        "SELECT tenant_id, resource_type, COUNT(*) FROM resources GROUP BY tenant_id, resource_type"
    )


def downgrade() -> None:
    op.drop_table("resource_counts")
