"""When an extension schema's removal began, while its values are being purged.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

``provisor schema remove URN --purge`` rewrites the resources holding the extension's values in
short transactions, so that the servers on the same database keep writing meanwhile. The first
transaction sets ``schema_extensions.removing``: from then on the declaration is left out of every
store's registry (a running server follows within seconds), and the last transaction deletes the
row. A removal stopped between the two leaves the mark, which refuses ``schema add`` of the URN,
and running the command again finishes it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("schema_extensions") as batch:
        batch.add_column(sa.Column("removing", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("schema_extensions") as batch:
        batch.drop_column("removing")
