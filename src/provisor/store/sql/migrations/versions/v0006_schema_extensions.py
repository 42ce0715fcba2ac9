"""Extension schemas a deployment declares (``provisor schema add``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

Entra's and Okta's custom attributes live under extension URNs of the app's choosing; the store
adds the ones in this table to its schemas when it opens (``provisor.scim.schema.extensions``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schema_extensions",
        sa.Column("urn_key", sa.String(200), primary_key=True),
        sa.Column("urn", sa.String(200), nullable=False),
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("required", sa.Integer, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("schema_extensions")
