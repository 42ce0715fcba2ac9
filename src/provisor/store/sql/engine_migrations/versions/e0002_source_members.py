"""The assigned groups' source membership, indexed by member.

A user's roles through groups that did not change in an incremental cycle come from here (one
indexed read per changed user) instead of from every membership of the job, and, unlike the
provisioned memberships, it also holds members that are out of scope (disabled, filtered), so a
user enabled again finds its groups. Existing jobs start from their provisioned memberships: what
the engine used until now.

Revision ID: e0002
Revises: e0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "e0002"
down_revision = "e0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engine_source_members",
        sa.Column("job", sa.String(200), primary_key=True),
        sa.Column("group_anchor", sa.String(400), primary_key=True),
        sa.Column("member_anchor", sa.String(400), primary_key=True),
    )
    op.create_index(
        "ix_engine_source_members_member", "engine_source_members", ["job", "member_anchor", "group_anchor"]
    )
    op.execute(
        "INSERT INTO engine_source_members (job, group_anchor, member_anchor) "
        "SELECT job, group_anchor, member_anchor FROM engine_memberships"
    )


def downgrade() -> None:
    op.drop_index("ix_engine_source_members_member", table_name="engine_source_members")
    op.drop_table("engine_source_members")
