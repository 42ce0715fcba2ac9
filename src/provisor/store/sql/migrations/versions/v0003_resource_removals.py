"""Deletions per tenant and type: when a deep page may be read by key instead of OFFSET.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

``resource_counts.removed`` counts the resources of a tenant and type ever deleted; the store
increments it in the delete's own transaction. While it is unchanged, the rows before any position
of an unfiltered listing are unchanged too (``provisor.store.sql.paging``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("resource_counts") as batch:
        batch.add_column(sa.Column("removed", sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("resource_counts") as batch:
        batch.drop_column("removed")
