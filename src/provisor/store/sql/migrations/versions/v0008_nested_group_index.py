"""A partial index of the memberships that make a group a member of a group.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

A filter on a User's ``groups`` also matches the groups it is in through nested groups
(``filters._Compiler._group_chains``): the walk starts from every group-in-group membership of the tenant.
This index holds just those, so the walk never reads the (many) memberships of Users.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_NESTED = sa.text("member_type = 'Group'")  # tables.nested_membership, as written then


def upgrade() -> None:
    op.create_index(
        "ix_memberships_nested",
        "memberships",
        ["group_pk", "member_pk"],
        sqlite_where=_NESTED,
        postgresql_where=_NESTED,
    )


def downgrade() -> None:
    op.drop_index("ix_memberships_nested", table_name="memberships")
