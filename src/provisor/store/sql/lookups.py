"""The statements on Entra's hot path, prepared once per store (see ``prepared``).

Entra reads a resource by id, and matches before every create with ``userName eq``,
``externalId eq``, ``displayName eq`` (groups) or ``emails[type eq "work" and value eq ...]``
(entra-behaviour.md 1.3, 1.6). Those filters, unsorted, are recognised here and answered with
fixed statements on the indexed columns; every other filter goes through ``filters``.

Each User read has a twin that also returns the User's ``groups`` (:func:`groups_column`): one
correlated scalar subquery on ``memberships(member_pk)``, so loading them costs an index probe in
the same statement, not a round trip. With each group it tells whether that group is itself a
member of a group: only then is the User in groups *indirectly* (RFC 7643 section 4.1.2), and
only then is :attr:`Lookups.ancestry` run to find the groups above those. A tenant without nested
groups pays one more index probe per group of the User, not a recursive query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, bindparam, exists, func, literal_column, select

from provisor.scim.filter.ast import And, AttrPath, Compare, CompareOp, Filter, ValuePath
from provisor.scim.schema.model import ResourceType
from provisor.store.sql.dialect import SqlDialect
from provisor.store.sql.prepared import Prepared, PreparedIn, in_list
from provisor.store.sql.tables import emails as E
from provisor.store.sql.tables import memberships as M
from provisor.store.sql.tables import resource_counts as C
from provisor.store.sql.tables import resources as R
from provisor.store.sql.values import fold

#: The columns every resource read returns, in this order (see ``rows.stored``); reads of Users
#: that want ``groups`` add :func:`groups_column` as a seventh.
COLUMNS = (R.c.pk, R.c.id, R.c.data, R.c.created, R.c.last_modified, R.c.version)
SCOPE = (R.c.tenant_id == bindparam("tenant"), R.c.resource_type == bindparam("rt"))
_BY_ID = R.c.id == bindparam("id")
_GROUP = R.alias("grp")
_UP = M.alias("up")


def groups_column(dialect: SqlDialect) -> ColumnElement[object]:
    """The groups the row's resource is a direct member of, as one JSON array of
    ``[group pk, group id, group displayName, nested]`` (unordered; ``rows.group_items`` decodes and
    orders it). ``nested`` (0 or 1) tells whether the group is itself a member of a group: only
    then is the resource in groups indirectly too, and only then does the store run
    :func:`ancestry` for it. The test is one probe of the by-member index per group, read from
    the index alone (``SELECT 1``); a recursive query for every User read would cost more than
    the whole rest of the statement.

    Correlated on ``resources.pk`` of the enclosing query; memberships never cross tenants (member
    values are resolved within the group's tenant), so no tenant test is needed.
    """
    nested = exists(select(literal_column("1")).where(_UP.c.member_pk == _GROUP.c.pk))
    return (
        select(dialect.json_rows(_GROUP.c.pk, _GROUP.c.id, _GROUP.c.display_name, nested))
        .select_from(M.join(_GROUP, _GROUP.c.pk == M.c.group_pk))
        .where(M.c.member_pk == R.c.pk)
        .scalar_subquery()
        .label("groups")
    )


def ancestry(names: list[str]) -> Any:
    """Every membership of a group in a group, above the groups of the primary keys ``names``
    (theirs, their groups', and so on up): rows of ``(member group pk, group pk, group id, group
    displayName)``, one per membership. UNION (not UNION ALL) visits each group once, which ends
    the walk on a cycle of groups.

    The walk is over groups, not members: the Users of a page that share groups share their
    ancestors, and each User's way up is walked in memory (``rows.Ancestry``). A closure per
    User, one row per User and group it reaches, grew with Users times groups (a million rows
    for a page of a thousand Users in a group nested in 999 others; here, 999)."""
    seed = select(R.c.pk.label("grp")).where(R.c.pk.in_(in_list(names)))
    up = seed.cte("up", recursive=True)
    step = M.alias("step")
    up = up.union(select(step.c.group_pk).where(step.c.member_pk == up.c.grp))
    edge = M.alias("edge")
    group = R.alias("anc")
    return select(edge.c.member_pk, group.c.pk, group.c.id, group.c.display_name).select_from(
        up.join(edge, edge.c.member_pk == up.c.grp).join(group, group.c.pk == edge.c.group_pk)
    )


#: attribute -> (column, folded?) for ``attr eq "value"`` lookups.
_KEYED = {
    "id": (R.c.id, False),
    "externalId": (R.c.external_id, False),
    "userName": (R.c.user_name_key, True),
    "displayName": (R.c.display_name_key, True),
}
#: The keyed lookups at most one resource of a tenant and type matches (the database's unique indexes).
_UNIQUE = frozenset({"id", "userName"})
_EMAIL = R.c.pk.in_(
    select(E.c.resource_pk).where(E.c.value_key == bindparam("v"), E.c.type_key == bindparam("t"))
)
_ANY_EMAIL = R.c.pk.in_(select(E.c.resource_pk).where(E.c.value_key == bindparam("v")))


def _page(condition: Any, *extra: Any) -> Any:
    return (
        select(*COLUMNS, *extra)
        .where(*SCOPE, condition)
        .order_by(R.c.pk)
        .limit(bindparam("lim"))
        .offset(bindparam("off"))
    )


def _count(condition: Any) -> Any:
    return select(func.count()).select_from(R).where(*SCOPE, condition)


@dataclass(frozen=True, slots=True)
class Lookup:
    """A prepared page query (bare, and with ``groups``) and count query for one indexed lookup."""

    page: Prepared
    page_groups: Prepared
    count: Prepared
    #: At most one row matches (``id``, ``userName``: unique in a tenant).
    single: bool = False


class Lookups:
    """The prepared statements of one store."""

    def __init__(self, engine: Engine, dialect: SqlDialect) -> None:
        groups = groups_column(dialect)
        #: ``COLUMNS`` and the ``groups`` column, for listings compiled per query
        self.columns_groups = (*COLUMNS, groups)
        #: ``COLUMNS`` and each Group's number of members, for a page of Groups with their members
        #: (``resources.MemberBudget``): a count over the covering by-group index
        members = select(func.count()).where(M.c.group_pk == R.c.pk).scalar_subquery()
        self.columns_member_count = (*COLUMNS, members)
        #: (resources held, deletions ever) of a tenant and type (``resource_counts``), by key
        self.held = Prepared(
            engine,
            select(C.c.n, C.c.removed).where(
                C.c.tenant_id == bindparam("tenant"), C.c.resource_type == bindparam("rt")
            ),
        )
        self.get = Prepared(engine, select(*COLUMNS).where(*SCOPE, _BY_ID))
        #: ``get`` plus the ``groups`` column (Users).
        self.get_groups = Prepared(engine, select(*COLUMNS, groups).where(*SCOPE, _BY_ID))
        #: the groups above groups that are themselves in a group (:func:`ancestry`)
        self.ancestry = PreparedIn(engine, "g", ancestry)
        self.by: dict[str, Lookup] = {}

        def lookup(cond: Any, single: bool = False) -> Lookup:
            return Lookup(
                Prepared(engine, _page(cond)),
                Prepared(engine, _page(cond, groups)),
                Prepared(engine, _count(cond)),
                single,
            )

        for name, (column, _) in _KEYED.items():
            self.by[name] = lookup(column == bindparam("v"), single=name in _UNIQUE)
        self.by["email"] = lookup(_EMAIL)
        self.by["anyEmail"] = lookup(_ANY_EMAIL)

    def match(self, f: Filter, rt: ResourceType) -> tuple[Lookup, dict[str, Any]] | None:
        """The prepared lookup answering ``f`` exactly, with its parameters; None if there is none."""
        if isinstance(f, Compare) and f.op is CompareOp.EQ and isinstance(f.value, str):
            key = _keyed(f.path, rt)
            if key is not None:
                return self.by[key], {"v": fold(f.value) if _KEYED[key][1] else f.value}
            if (
                rt.name == "User"
                and f.path == AttrPath(None, "emails", "value")
                and _folded_email(rt, "value")
            ):
                return self.by["anyEmail"], {"v": fold(f.value)}
        if isinstance(f, ValuePath) and rt.name == "User" and f.path == AttrPath(None, "emails"):
            pair = _type_and_value(f.filter)
            if pair is not None and _folded_email(rt, "value") and _folded_email(rt, "type"):
                return self.by["email"], {"t": fold(pair[0]), "v": fold(pair[1])}
        return None


def _keyed(path: AttrPath, rt: ResourceType) -> str | None:
    if path.urn is not None or path.sub is not None or path.attr not in _KEYED:
        return None
    if path.attr == "userName" and rt.name != "User":
        return None
    found = rt.attribute(None, path.attr)
    if found is None:
        return None
    folded = _KEYED[path.attr][1]
    return path.attr if found[1].case_exact != folded else None


def _folded_email(rt: ResourceType, sub: str) -> bool:
    found = rt.attribute(None, "emails")
    definition = found[1].sub(sub) if found is not None else None
    return definition is not None and not definition.case_exact


def _type_and_value(f: Filter) -> tuple[str, str] | None:
    """(type, value) of ``type eq "t" and value eq "v"`` (either order), else None."""
    if not isinstance(f, And) or not isinstance(f.left, Compare) or not isinstance(f.right, Compare):
        return None
    terms = {c.path.sub: c.value for c in (f.left, f.right) if c.op is CompareOp.EQ}
    t, v = terms.get("type"), terms.get("value")
    return (t, v) if isinstance(t, str) and isinstance(v, str) and len(terms) == 2 else None
