"""Each User's manager as a column, so that deleting a User takes it off its reports.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

A User deleted stayed as other Users' ``manager`` (enterprise extension, RFC 7643 section 4.3): a
reference to nothing, which Entra does not clear (it sends no operation when a manager goes). The
store now keeps the manager's id in ``resources.manager_key``, indexed within the tenant, and a
deletion removes the ``manager`` of the Users that name it. This revision adds the column and its
index and fills it from the stored documents, in batches by key.
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_BATCH = 2000
_ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def upgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.add_column(sa.Column("manager_key", sa.Text, nullable=True))
    op.create_index(
        "ix_resources_manager",
        "resources",
        ["tenant_id", "manager_key"],
        sqlite_where=sa.text("manager_key IS NOT NULL"),
        postgresql_where=sa.text("manager_key IS NOT NULL"),
    )
    conn = op.get_bind()
    after = -1
    select = sa.text(
        "SELECT pk, data FROM resources WHERE pk > :after AND resource_type = 'User' ORDER BY pk LIMIT :n"
    )
    update = sa.text("UPDATE resources SET manager_key = :m WHERE pk = :pk")
    while True:
        rows = conn.execute(select, {"after": after, "n": _BATCH}).all()
        if not rows:
            return
        found = []
        for pk, text in rows:
            if '"manager"' not in text:
                continue
            manager = (orjson.loads(text).get(_ENTERPRISE) or {}).get("manager")
            value = manager.get("value") if isinstance(manager, dict) else None
            if isinstance(value, str):
                found.append({"pk": pk, "m": value})
        if found:
            conn.execute(update, found)
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_resources_manager", "resources")
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("manager_key")
