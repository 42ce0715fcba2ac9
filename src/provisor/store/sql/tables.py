"""The SQL schema as SQLAlchemy Core tables (what queries use; the migrations create it).

    tenants      id, name (unique), settings (JSON text), created, deleting (while it is
                 being deleted: when that began)
    tokens       id, tenant_id -> tenants (cascade), hash (sha256, unique), prefix, label,
                 created, expires, revoked, last_used
    resources    pk, tenant_id -> tenants (cascade), resource_type, id, data (JSON text),
                 user_name, user_name_key, external_id, display_name, display_name_key,
                 created, last_modified, version
    emails       resource_pk -> resources (cascade), value_key, type_key
    memberships  (group_pk, member_pk) -> resources (cascade), member_type, display
    schema_extensions  urn_key (lower-cased URN), urn, resource_type, required, definition
                 (JSON text), created, removing (while its values are being purged: when that began)
    request_traces  seq, tenant_id -> tenants (cascade), time, method, target, status, request,
                 response (the requests of tenants with tracing on, ``provisor tenant trace``)

``*_key`` columns hold case-folded copies for the case-insensitive lookups Entra makes
(entra-behaviour.md 1.3, 1.6): ``userName eq``, ``displayName eq``, ``emails[type eq "work"].value
eq``. Every timestamp is integer microseconds since the epoch, UTC (see ``values``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    literal_column,
    text,
)

metadata = MetaData()

#: An auto-incrementing 64-bit key; on SQLite exactly ``INTEGER PRIMARY KEY`` (the rowid).
PkType = BigInteger().with_variant(Integer(), "sqlite")

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("settings", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("deleting", BigInteger, nullable=True),
    Index("ux_tenants_name", "name", unique=True),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
    Column("prefix", String(32), nullable=False),
    Column("label", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("expires", BigInteger, nullable=True),
    Column("revoked", BigInteger, nullable=True),
    Column("last_used", BigInteger, nullable=True),
    Index("ux_tokens_hash", "hash", unique=True),
    Index("ix_tokens_tenant", "tenant_id"),
)

resources = Table(
    "resources",
    metadata,
    Column("pk", PkType, primary_key=True, autoincrement=True),
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("resource_type", String(16), nullable=False),
    Column("id", String(64), nullable=False),
    Column("data", Text, nullable=False),
    Column("user_name", Text, nullable=True),
    Column("user_name_key", Text, nullable=True),
    Column("external_id", Text, nullable=True),
    Column("display_name", Text, nullable=True),
    Column("display_name_key", Text, nullable=True),
    #: a User's manager's id (enterprise extension): the Users a deletion takes it off
    Column("manager_key", Text, nullable=True),
    Column("created", BigInteger, nullable=False),
    Column("last_modified", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
    Index("ux_resources_id", "tenant_id", "resource_type", "id", unique=True),
    # userName is unique per tenant, case-insensitively (RFC 7643 section 4.1.1). Only Users
    # have a user_name_key, so "IS NOT NULL" is "resource_type = 'User'" and, unlike a
    # predicate on resource_type, is implied by "user_name_key = ?" so the planner uses it.
    Index(
        "ux_resources_user_name",
        "tenant_id",
        "resource_type",
        "user_name_key",
        unique=True,
        sqlite_where=text("user_name_key IS NOT NULL"),
        postgresql_where=text("user_name_key IS NOT NULL"),
    ),
    Index("ix_resources_external_id", "tenant_id", "resource_type", "external_id"),
    Index("ix_resources_display_name", "tenant_id", "resource_type", "display_name_key"),
    Index("ix_resources_last_modified", "tenant_id", "resource_type", "last_modified"),
    Index("ix_resources_scope", "tenant_id", "resource_type", "pk"),
    Index(
        "ix_resources_manager",
        "tenant_id",
        "manager_key",
        sqlite_where=text("manager_key IS NOT NULL"),
        postgresql_where=text("manager_key IS NOT NULL"),
    ),
)

#: How many resources of each type a tenant holds, kept by the store in the transaction of every
#: create and delete: an unfiltered list's totalResults (every page of an Okta import, every page
#: of an id listing) is a key lookup instead of a COUNT over the tenant (~14 ms at 100,000 users).
#: ``removed`` counts deletions: while it stands still, deep pages are read by key (``paging``).
resource_counts = Table(
    "resource_counts",
    metadata,
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("resource_type", String(16), primary_key=True),
    Column("n", BigInteger, nullable=False),
    Column("removed", BigInteger, nullable=False, server_default="0"),
)

emails = Table(
    "emails",
    metadata,
    Column("resource_pk", PkType, ForeignKey("resources.pk", ondelete="CASCADE"), nullable=False),
    Column("value_key", Text, nullable=True),
    Column("type_key", Text, nullable=True),
    Index("ix_emails_value", "value_key"),
    Index("ix_emails_resource", "resource_pk"),
)

memberships = Table(
    "memberships",
    metadata,
    Column("group_pk", PkType, ForeignKey("resources.pk", ondelete="CASCADE"), primary_key=True),
    Column("member_pk", PkType, ForeignKey("resources.pk", ondelete="CASCADE"), primary_key=True),
    Column("member_type", String(16), nullable=False),
    Column("display", Text, nullable=True),
    # covering (group_pk too): a User's groups are read with the User (migration 0004)
    Index("ix_memberships_member", "member_pk", "group_pk"),
)


def nested_membership(member_type: ColumnElement[Any]) -> ColumnElement[bool]:
    """``member_type = 'Group'``: a membership that makes a group a member of a group. The value
    is written into the SQL, not bound: only then can a query use ``ix_memberships_nested``."""
    return member_type == literal_column("'Group'")


# the groups that are members of groups: where a walk through nested groups starts (0008)
Index(
    "ix_memberships_nested",
    memberships.c.group_pk,
    memberships.c.member_pk,
    sqlite_where=nested_membership(memberships.c.member_type),
    postgresql_where=nested_membership(memberships.c.member_type),
)

#: The extension schemas this deployment declares (``provisor schema add``), for every tenant: the
#: store adds them to its registry when it opens (``provisor.scim.schema.extensions``).
#: ``definition`` is the schema as ``/Schemas`` shows it; they are listed in the order added (``created``).
#: One whose ``removing`` is set is in no registry: its values are being purged (``extension_purge``).
schema_extensions = Table(
    "schema_extensions",
    metadata,
    Column("urn_key", String(200), primary_key=True),
    Column("urn", String(200), nullable=False),
    Column("resource_type", String(16), nullable=False),
    Column("required", Integer, nullable=False),
    Column("definition", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("removing", BigInteger, nullable=True),
)

#: The latest requests of each tenant with tracing on (setting ``trace``: how many are kept), with
#: their answers: what an integrator reads with ``provisor tenant trace`` to see what Entra sent.
request_traces = Table(
    "request_traces",
    metadata,
    Column("seq", PkType, primary_key=True, autoincrement=True),
    Column("tenant_id", String(32), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("method", String(16), nullable=False),
    Column("target", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("request", Text, nullable=True),
    Column("response", Text, nullable=True),
    Index("ix_request_traces_tenant", "tenant_id", "seq"),
)
