"""When a tenant's deletion began, while it is being deleted.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

``provisor tenant delete`` deletes a large tenant in short transactions, so that the servers on
the same database keep writing for the other tenants meanwhile. The first transaction sets
``tenants.deleting`` and drops the tenant's tokens; the last deletes the row. A deletion stopped
between the two leaves the mark, which refuses new tokens and settings, and running the command
again finishes it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("deleting", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("deleting")
