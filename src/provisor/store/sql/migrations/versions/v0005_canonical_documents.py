"""Every stored document in canonical form, so that reads can splice its text into a response.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

The store now keeps ``resources.data`` as the JSON text of the canonical document
(``provisor.scim.resources.document``: ``externalId``, then the core attributes in schema order,
then each extension; no nulls, no empty extensions), and a read without ``attributes`` or
``excludedAttributes`` splices that text into the representation (``render_json``) instead of
decoding and re-encoding it. Documents written before were kept in the order the client sent;
this revision rewrites each one that is not canonical already, in batches by key. Rows of resource
types the default schemas do not define (only a server built with its own registry writes them)
are left as they are: the store makes each canonical at its next write.
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

from provisor.scim.resources import document
from provisor.scim.schema.model import default_registry

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BATCH = 2000


def upgrade() -> None:
    conn = op.get_bind()
    registry = default_registry()
    after = -1
    select = sa.text("SELECT pk, resource_type, data FROM resources WHERE pk > :after ORDER BY pk LIMIT :n")
    update = sa.text("UPDATE resources SET data = :data WHERE pk = :pk")
    while True:
        rows = conn.execute(select, {"after": after, "n": _BATCH}).all()
        if not rows:
            return
        changed = []
        for pk, resource_type, text in rows:
            rt = registry.resource_type(resource_type)
            if rt is None:
                continue
            canonical = orjson.dumps(document(rt, orjson.loads(text))).decode()
            if canonical != text:
                changed.append({"pk": pk, "data": canonical})
        if changed:
            conn.execute(update, changed)
        after = rows[-1][0]


def downgrade() -> None:
    """Nothing to undo: a canonical document is a document in any earlier revision's reading."""
