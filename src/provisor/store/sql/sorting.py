"""``sortBy`` -> ORDER BY (RFC 7644 section 3.4.2.3).

Strings sort case-insensitively unless caseExact, dateTimes as instants, numbers numerically. A
multi-valued attribute sorts by its primary value, else its first; a complex one named without a
sub-attribute (``emails``) by its ``value``. Resources without a value sort
last when ascending and first when descending; ties break on the primary key (creation order),
ascending, or on ``id`` for a query that asks it (``Query.ties_by_id``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, UnaryExpression, and_, case, func, literal, null, or_, select

from provisor.scim.filter.ast import AttrPath
from provisor.scim.filter.parser import lookup_attribute
from provisor.scim.schema.model import Attribute, AttributeType, ResourceType
from provisor.store.base import SortKey
from provisor.store.sql.dialect import SqlDialect, Val
from provisor.store.sql.tables import resources as R


def order_by(
    key: ColumnElement[Any] | None, descending: bool, rt: ResourceType, *, ties_by_id: bool = False
) -> list[ColumnElement[Any] | UnaryExpression[Any]]:
    """ORDER BY terms for a sort on ``key`` (``sort_key``); by creation order (primary key) when
    there is none. ``ties_by_id``: equal values follow one another by id rather than by creation
    order."""
    if key is None:
        return [R.c.pk]
    if _unique(key, rt):
        # Never null and unique within a tenant and type: ordered by its unique index alone, so a
        # keyset page (``id gt "<last>"``, ``sortBy=id``, or after a cursor's position) reads its
        # ``count`` rows straight off it instead of reading and sorting every match.
        return [key.desc() if descending else key]
    missing = key.is_(None)
    tie = R.c.id if ties_by_id else R.c.pk
    if descending:
        return [missing.desc(), key.desc(), tie]
    return [missing, key, tie]


def after_position(
    key: ColumnElement[Any], descending: bool, rt: ResourceType, position: SortKey
) -> ColumnElement[bool]:
    """The resources after ``position`` in the order of ``order_by(key, ..., ties_by_id=True)``:
    compared on the very expression that order sorts by, so that the two never disagree."""
    if _unique(key, rt):  # no ties, no resource without a value
        value = literal(position.value)
        return key < value if descending else key > value
    later = R.c.id > position.id
    if position.value is None:  # among those without a value: last ascending, first descending
        return or_(and_(key.is_(None), later), key.is_not(None)) if descending else and_(key.is_(None), later)
    value = literal(position.value)
    beyond = key < value if descending else key > value
    tied = and_(key == value, later)
    return or_(beyond, tied) if descending else or_(beyond, tied, key.is_(None))


def index_scope(key: ColumnElement[Any], rt: ResourceType) -> list[ColumnElement[bool]]:
    """What a listing sorted on ``key`` adds to its WHERE, true of every row it lists, so that
    the planner may order it by the index of its sort key: ``user_name_key IS NOT NULL`` (the
    condition of userName's partial unique index) for Users sorted by userName; else nothing."""
    return [key.is_not(None)] if key is R.c.user_name_key and _unique(key, rt) else []


def _unique(key: ColumnElement[Any], rt: ResourceType) -> bool:
    """Whether ``key`` is never null and unique among the resources of ``rt`` of a tenant: ``id``,
    and a User's case-folded userName (RFC 7643 section 4.1.1), each with a unique index."""
    return key is R.c.id or (key is R.c.user_name_key and rt.name == "User")


def sort_key(path: AttrPath, rt: ResourceType, dialect: SqlDialect) -> ColumnElement[Any]:
    """The value of ``path`` to sort on, for one resource row."""
    found = lookup_attribute(rt, path.urn, path.attr)
    top = found[1] if found is not None else None
    if top is not None and path.sub is None and top.sub("value") is not None:
        path = AttrPath(path.urn, path.attr, "value")  # a complex attribute sorts by its value
    leaf = top if top is None or path.sub is None else top.sub(path.sub)
    exact = leaf is not None and leaf.case_exact
    if path.urn is None:
        column = _column(path, rt, exact)
        if column is not None:
            return column
    keys = (path.attr,) if path.urn is None else (path.urn, path.attr)
    if top is not None and top.multi_valued:
        els = dialect.elements(R.c.data, keys)
        value = els.element if path.sub is None else dialect.element_sub(R.c.data, els, path.sub)
        primary = dialect.element_sub(R.c.data, els, "primary").jtype
        assert value.jtype is not None and primary is not None
        # SQLite cannot see the outer row in a correlated subquery's ORDER BY, so "the primary
        # value, else the first" is two subqueries ordered only by the element's position.
        typed = _typed(value, leaf, dialect)
        present = value.jtype != literal("null")
        first = select(typed).select_from(els.source).where(present).order_by(els.index).limit(1)
        chosen = first.where(primary == literal("true"))
        return func.coalesce(chosen.scalar_subquery(), first.scalar_subquery())
    full = keys if path.sub is None else (*keys, path.sub)
    return _typed(dialect.scalar(R.c.data, full), leaf, dialect)


def _column(path: AttrPath, rt: ResourceType, exact: bool) -> ColumnElement[Any] | None:
    if path.attr == "id":
        return R.c.id
    if path.attr == "externalId":
        return R.c.external_id
    if path.attr == "userName" and rt.name == "User":
        return R.c.user_name if exact else R.c.user_name_key
    if path.attr == "displayName":
        return R.c.display_name if exact else R.c.display_name_key
    if path.attr == "meta":
        if path.sub == "created":
            return R.c.created
        if path.sub == "lastModified":
            return R.c.last_modified
        return null()  # the same for every resource (or not stored): no ordering
    if path.attr in ("members", "schemas"):
        return null()
    return None


def _typed(val: Val, leaf: Attribute | None, dialect: SqlDialect) -> ColumnElement[Any]:
    jtype = val.jtype
    assert jtype is not None
    t = leaf.type if leaf is not None else AttributeType.STRING
    if t in (AttributeType.INTEGER, AttributeType.DECIMAL):
        return case((jtype.in_(("integer", "real")), val.value), (jtype == "text", dialect.number(val.value)))
    if t is AttributeType.DATETIME:
        return case((jtype == "text", dialect.instant(val.value)))
    if t is AttributeType.BOOLEAN:
        return case((jtype == "true", literal(1)), (jtype == "false", literal(0)))
    text = val.value if leaf is not None and leaf.case_exact else dialect.fold(val.value)
    return case((jtype == "text", text))
