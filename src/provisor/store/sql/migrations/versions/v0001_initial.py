"""Initial schema: tenants, tokens, resources, emails, memberships.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

A frozen snapshot (it does not import ``tables``): later revisions change the schema on top of it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_index("ux_tenants_name", "tenants", ["name"], unique=True)

    op.create_table(
        "tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=True),
        sa.Column("revoked", sa.BigInteger, nullable=True),
        sa.Column("last_used", sa.BigInteger, nullable=True),
    )
    op.create_index("ux_tokens_hash", "tokens", ["hash"], unique=True)
    op.create_index("ix_tokens_tenant", "tokens", ["tenant_id"])

    op.create_table(
        "resources",
        sa.Column("pk", _PK, primary_key=True, autoincrement=True),
        sa.Column(
            "tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("user_name", sa.Text, nullable=True),
        sa.Column("user_name_key", sa.Text, nullable=True),
        sa.Column("external_id", sa.Text, nullable=True),
        sa.Column("display_name", sa.Text, nullable=True),
        sa.Column("display_name_key", sa.Text, nullable=True),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("last_modified", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    scope = ["tenant_id", "resource_type"]
    op.create_index("ux_resources_id", "resources", [*scope, "id"], unique=True)
    op.create_index(
        "ux_resources_user_name",
        "resources",
        [*scope, "user_name_key"],
        unique=True,
        sqlite_where=sa.text("user_name_key IS NOT NULL"),
        postgresql_where=sa.text("user_name_key IS NOT NULL"),
    )
    op.create_index("ix_resources_external_id", "resources", [*scope, "external_id"])
    op.create_index("ix_resources_display_name", "resources", [*scope, "display_name_key"])
    op.create_index("ix_resources_last_modified", "resources", [*scope, "last_modified"])
    op.create_index("ix_resources_scope", "resources", [*scope, "pk"])

    op.create_table(
        "emails",
        sa.Column("resource_pk", _PK, sa.ForeignKey("resources.pk", ondelete="CASCADE"), nullable=False),
        sa.Column("value_key", sa.Text, nullable=True),
        sa.Column("type_key", sa.Text, nullable=True),
    )
    op.create_index("ix_emails_value", "emails", ["value_key"])
    op.create_index("ix_emails_resource", "emails", ["resource_pk"])

    op.create_table(
        "memberships",
        sa.Column("group_pk", _PK, sa.ForeignKey("resources.pk", ondelete="CASCADE"), primary_key=True),
        sa.Column("member_pk", _PK, sa.ForeignKey("resources.pk", ondelete="CASCADE"), primary_key=True),
        sa.Column("member_type", sa.String(16), nullable=False),
        sa.Column("display", sa.Text, nullable=True),
    )
    op.create_index("ix_memberships_member", "memberships", ["member_pk"])


def downgrade() -> None:
    for table in ("memberships", "emails", "resources", "tokens", "tenants"):
        op.drop_table(table)
