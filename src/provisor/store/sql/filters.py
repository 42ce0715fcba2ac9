"""Filter AST -> SQL WHERE clause (RFC 7644 section 3.4.2.2), with the in-memory evaluator's semantics.

``provisor.scim.filter.evaluate.matches`` is the reference: for every filter and stored resource
the SQL here selects exactly the resources it accepts (a differential property test checks this).
In short: strings compare case-folded unless caseExact; a multi-valued attribute matches when any
value does (``ne`` included); an absent value satisfies only ``ne`` and ``eq null``; ``pr`` means
present and non-empty, recursively; dateTimes compare as instants, numbers numerically, values of
an unexpected type are coerced as the evaluator does. Every value is a bound parameter; LIKE
patterns are escaped.

Where an indexed column or table exists it is used: ``id``, ``externalId``, ``userName``,
``displayName``, ``meta.created``/``meta.lastModified`` are columns, ``meta.version`` is the ETag
built from the ``version`` column exactly as the server renders it (``W/"<version>"``);
``emails.value``/``emails.type`` (and ``emails[...]`` over just those) go through the ``emails``
table; group ``members`` and a User's ``groups`` (direct and, through nested groups, indirect
memberships, as the store reads them) through ``memberships``.
Everything else reads the JSON document through the dialect strategy.

``meta.location`` and the ``$ref`` of members and groups are built by the server from its base
URL, which the store does not know. The parser refuses every comparison on them and rewrites
``pr`` (see ``provisor.scim.filter.parser``); a ``pr`` that reaches here unrewritten is still
decided: ``meta``, ``meta.version`` and ``meta.location`` are always present, and so is the
``$ref`` of every member or group row. ``co``/``sw``/``ew`` on a
dateTime never match, as in the evaluator (the parser refuses them).
Stored documents are expected to use canonical attribute names (the server canonicalises them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Text,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
)

from provisor.scim.filter.ast import (
    And,
    AttrPath,
    Compare,
    CompareOp,
    Filter,
    Literal,
    Not,
    Or,
    Present,
    ValuePath,
)
from provisor.scim.filter.evaluate import matches
from provisor.scim.filter.lexer import to_datetime
from provisor.scim.filter.parser import lookup_attribute, present
from provisor.scim.schema.model import Attribute, AttributeType, ResourceType
from provisor.store.sql.dialect import SqlDialect, Val
from provisor.store.sql.tables import emails, memberships, nested_membership, resources
from provisor.store.sql.values import fold, to_micros

R = resources
Cond = ColumnElement[Any]
_SUBSTRING = (CompareOp.CO, CompareOp.SW, CompareOp.EW)
_NUMERIC = (AttributeType.INTEGER, AttributeType.DECIMAL)
_SCALAR_TYPES = ("true", "false", "integer", "real")
_EMAIL_SUBS = frozenset({"value", "type"})


def negate(cond: Cond) -> Cond:
    """Two-valued NOT: SQL NULL (unknown) counts as false before negation. ``cond IS NOT true``
    says it in one operator, where ``NOT coalesce(cond, false)`` took a function call: SQLite's
    parser takes three times as many of the first nested (91 against 30), so a filter of
    ``not`` within ``not`` within the parser's 32 levels is one the database reads."""
    return cond.is_not(true())


#: One element of a multi-valued attribute: sub-attribute name (None: the element itself) -> value.
_Element = Callable[[str | None], Val]


@dataclass(frozen=True, slots=True)
class _Rows:
    """The values of a multi-valued attribute as rows: ``any(build)`` is "some row satisfies build"."""

    any: Callable[[Callable[[_Element], Cond]], Cond]
    guard: Callable[[_Element], Cond] | None = None


@dataclass(frozen=True, slots=True)
class _Const:
    """Values the store knows without reading a row: (condition that the value exists, value)."""

    values: tuple[tuple[Cond, Any], ...]
    key: str


@dataclass(frozen=True, slots=True)
class _Instant:
    """A column of integer microseconds: ``meta.created`` or ``meta.lastModified``."""

    column: ColumnElement[Any]


_Source = Val | _Rows | _Const | _Instant


#: A filter of more attribute expressions than this is compiled afresh each time, not kept in
#: SQLAlchemy's compiled cache: each shape of such a statement (a count of ``or`` terms) held
#: megabytes there, up to its 500 entries (100 ``groups`` comparisons: 4 MB a shape).
CACHED_TERMS = 8


def cacheable(f: Filter) -> bool:
    """Whether the statement of filter ``f`` may be kept in the compiled cache (see
    :data:`CACHED_TERMS`); counted without recursion, and no further than the limit."""
    terms = 0
    todo: list[Filter] = [f]
    while todo:
        node = todo.pop()
        if isinstance(node, And | Or):
            todo += (node.left, node.right)
        elif isinstance(node, Not):
            todo.append(node.expr)
        elif isinstance(node, ValuePath):
            terms += 1
            todo.append(node.filter)
        else:
            terms += 1
        if terms > CACHED_TERMS:
            return False
    return True


def compile_filter(f: Filter, rt: ResourceType, dialect: SqlDialect, tenant_id: str) -> Cond:
    """The WHERE condition (besides tenant and type) selecting the resources of ``rt`` matching ``f``."""
    return _Compiler(rt, dialect, tenant_id).compile(f)


class _Compiler:
    def __init__(self, rt: ResourceType, dialect: SqlDialect, tenant_id: str) -> None:
        self.rt = rt
        self.d = dialect
        self.tenant_id = tenant_id

    # -- structure ---------------------------------------------------------------------------

    def compile(self, f: Filter) -> Cond:
        if isinstance(f, Compare):
            return self.compare(f)
        if isinstance(f, Present):
            return self.present_path(f.path)
        if isinstance(f, And):
            return and_(self.compile(f.left), self.compile(f.right))
        if isinstance(f, Or):
            return or_(self.compile(f.left), self.compile(f.right))
        if isinstance(f, Not):
            inner = f.expr
            if isinstance(inner, Not):  # not(not(x)) is x: NULL and false both select nothing
                return self.compile(inner.expr)
            return negate(self.compile(inner))
        if isinstance(f, ValuePath):
            return self.value_path(f)
        raise TypeError(f"not a filter node: {f!r}")

    def definitions(self, path: AttrPath) -> tuple[Attribute | None, Attribute | None]:
        found = lookup_attribute(self.rt, path.urn, path.attr)
        if found is None:
            return None, None
        top = found[1]
        return top, (top if path.sub is None else top.sub(path.sub))

    def source(self, path: AttrPath, subs: frozenset[str] = frozenset()) -> _Source:
        """Where the values of ``path`` come from; ``subs`` are the sub-attributes a valuePath tests."""
        top, leaf = self.definitions(path)
        if path.urn is None:
            special = self.special(path, top, leaf, subs)
            if special is not None:
                return special
        keys = (path.attr,) if path.urn is None else (path.urn, path.attr)
        if top is not None and top.multi_valued:
            return self.json_rows(keys, objects=top.type is AttributeType.COMPLEX)
        return self.d.scalar(R.c.data, keys if path.sub is None else (*keys, path.sub))

    def special(
        self, path: AttrPath, top: Attribute | None, leaf: Attribute | None, subs: frozenset[str]
    ) -> _Source | None:
        attr, sub, exact = path.attr, path.sub, leaf is not None and leaf.case_exact
        if attr == "id":
            return Val(R.c.id)
        if attr == "externalId":
            return Val(R.c.external_id)
        if attr == "userName" and self.rt.name == "User":
            return Val(R.c.user_name) if exact else Val(R.c.user_name_key, folded=True)
        if attr == "displayName":
            return Val(R.c.display_name) if exact else Val(R.c.display_name_key, folded=True)
        if attr == "meta":
            if sub == "created":
                return _Instant(R.c.created)
            if sub == "lastModified":
                return _Instant(R.c.last_modified)
            if sub == "resourceType":
                return _Const(((true(), self.rt.name),), "resourceType")
            if sub == "version":
                return Val(literal('W/"', Text) + cast(R.c.version, Text) + literal('"', Text))
            return _Const((), "absent")
        if attr == "schemas" and top is not None and top.name == "schemas":
            present: list[tuple[Cond, Any]] = [(true(), self.rt.schema.id)]
            for ext, _ in self.rt.extensions:
                ext_type = self.d.scalar(R.c.data, (ext.id,)).jtype
                assert ext_type is not None
                present.append((ext_type == literal("object"), ext.id))
            return _Const(tuple(present), "schemas")
        if attr == "members" and self.rt.name == "Group":
            return self.member_rows()
        if attr == "groups" and self.rt.name == "User" and top is not None:
            return self.group_rows(top)
        if attr == "emails" and self.rt.name == "User" and top is not None:
            wanted = subs if sub is None else frozenset({sub})
            defs = [top.sub(s) for s in wanted]
            if wanted and wanted <= _EMAIL_SUBS and all(d is not None and not d.case_exact for d in defs):
                return self.email_rows()
        return None

    # -- multi-valued sources ------------------------------------------------------------------

    def json_rows(self, keys: tuple[str, ...], *, objects: bool = True) -> _Rows:
        """The elements of the JSON array at ``keys``; ``objects``: a valuePath tests only those
        that are objects (a complex attribute's), else only simple values (a simple one's)."""
        d = self.d

        def any_(build: Callable[[_Element], Cond]) -> Cond:
            els = d.elements(R.c.data, keys)

            def sub(name: str | None) -> Val:
                return els.element if name is None else d.element_sub(R.c.data, els, name)

            return exists(select(literal(1)).select_from(els.source).where(build(sub)))

        def guard(sub: _Element) -> Cond:
            kind = func.coalesce(sub(None).jtype, "")
            return kind == "object" if objects else kind.not_in(("object", "array"))

        return _Rows(any_, guard)

    def email_rows(self) -> _Rows:
        def any_(build: Callable[[_Element], Cond]) -> Cond:
            e = emails.alias()
            cols = {"value": Val(e.c.value_key, folded=True), "type": Val(e.c.type_key, folded=True)}
            return R.c.pk.in_(select(e.c.resource_pk).where(build(lambda s: cols[s or "value"])))

        return _Rows(any_)

    def member_rows(self) -> _Rows:
        def any_(build: Callable[[_Element], Cond]) -> Cond:
            m, r2 = memberships.alias(), resources.alias()
            cols = {
                "value": Val(r2.c.id),
                "type": Val(m.c.member_type),
                "display": Val(member_display(r2, m)),
            }
            query = (
                select(m.c.group_pk)
                .select_from(m.join(r2, r2.c.pk == m.c.member_pk))
                .where(
                    r2.c.tenant_id == self.tenant_id,
                    r2.c.resource_type.in_(("User", "Group")),
                    build(lambda s: cols.get(s or "value", Val(null()))),
                )
            )
            return R.c.pk.in_(query)

        return _Rows(any_)

    def group_rows(self, top: Attribute) -> _Rows:
        """A User's ``groups``: one row per group it is in, as the store reads them (``rows``):
        ``type`` "direct" for each group it is a direct member of, "indirect" for each group it
        reaches only through nested groups."""
        display = top.sub("display")
        exact = display is not None and display.case_exact

        def cols(g: Any, type_: str) -> dict[str, Val]:
            return {
                "value": Val(g.c.id),
                "display": Val(g.c.display_name) if exact else Val(g.c.display_name_key, folded=True),
                "type": Val(literal(type_)),
            }

        def any_(build: Callable[[_Element], Cond]) -> Cond:
            m, g, via, a, again = self._group_aliases
            direct_cols = cols(g, "direct")
            direct = (
                select(m.c.member_pk)
                .select_from(m.join(g, g.c.pk == m.c.group_pk))
                .where(
                    g.c.tenant_id == self.tenant_id,
                    g.c.resource_type == "Group",
                    build(lambda s: direct_cols.get(s or "value", Val(null()))),
                )
            )
            # indirect: a member of group ``inner`` that is (through one or more groups) in ``outer``,
            # and not a direct member of ``outer`` too (its row there is the direct one)
            chain = self._group_chains
            indirect_cols = cols(a, "indirect")
            indirect = (
                select(via.c.member_pk)
                .select_from(
                    chain.join(via, via.c.group_pk == chain.c.inner).join(a, a.c.pk == chain.c.outer)
                )
                .where(
                    a.c.tenant_id == self.tenant_id,
                    build(lambda s: indirect_cols.get(s or "value", Val(null()))),
                    ~exists(
                        select(literal(1)).where(
                            again.c.group_pk == chain.c.outer, again.c.member_pk == via.c.member_pk
                        )
                    ),
                )
            )
            return or_(R.c.pk.in_(direct), R.c.pk.in_(indirect))

        return _Rows(any_)

    @cached_property
    def _group_aliases(self) -> tuple[Any, ...]:
        """The tables a ``groups`` comparison reads, aliased once per statement: each comparison's
        subqueries are siblings, never nested in one another, so they may share them (an alias of
        ``resources`` proxies its every column: one set each made a filter of N comparisons slow
        to build, 6 ms a comparison)."""
        return (
            memberships.alias(),
            resources.alias(),
            memberships.alias(),
            resources.alias(),
            memberships.alias(),
        )

    @cached_property
    def _group_chains(self) -> Any:
        """A recursive CTE of ``(inner, outer)`` group pairs of this tenant: ``inner`` is in
        ``outer`` through one or more nested-group memberships (a cycle of groups ends: UNION).
        One per statement, which every ``groups`` comparison of the filter reads (one each made
        compiling a filter of N of them cost O(N**2): 5 s and 88 MB of cached statement for 327)."""
        edge, owner, step = memberships.alias(), resources.alias(), memberships.alias()
        seed = (
            select(edge.c.member_pk.label("inner"), edge.c.group_pk.label("outer"))
            .select_from(edge.join(owner, owner.c.pk == edge.c.group_pk))
            .where(
                nested_membership(edge.c.member_type),
                owner.c.tenant_id == self.tenant_id,
                owner.c.resource_type == "Group",
            )
        )
        chain = seed.cte(recursive=True)
        return chain.union(select(chain.c.inner, step.c.group_pk).where(step.c.member_pk == chain.c.outer))

    # -- comparisons -----------------------------------------------------------------------------

    def compare(self, node: Compare) -> Cond:
        src = self.source(node.path)
        leaf = self.definitions(node.path)[1]
        if isinstance(src, _Const):
            return self.const(node, src)
        if isinstance(src, _Instant):
            return self.instant_column(node, src.column)
        if isinstance(src, _Rows):
            sub = node.path.sub
            return self.multi_compare(src, sub, node.op, node.value, leaf)
        return self.scalar_compare(src, node.op, node.value, leaf)

    def const(self, node: Filter, src: _Const) -> Cond:
        """Decide a filter over store-known values in Python, with the evaluator itself."""
        holds: list[Cond] = []
        for exists_, value in src.values:
            doc: dict[str, Any] = {"schemas": [value]} if src.key == "schemas" else {"meta": {src.key: value}}
            if matches(node, doc, self.rt):
                holds.append(exists_)
        if not src.values and matches(node, {}, self.rt):
            return true()
        return or_(false(), *holds)

    def instant_column(self, node: Compare, column: ColumnElement[Any]) -> Cond:
        if node.value is None:
            return true() if node.op is CompareOp.NE else false()
        when = to_datetime(node.value) if node.op not in _SUBSTRING else None
        if when is None:
            return false()
        return _ordered(node.op, column, to_micros(when))

    def scalar_compare(self, val: Val, op: CompareOp, lit: Literal, leaf: Attribute | None) -> Cond:
        if lit is None:
            p = self.present(val)
            return p if op is CompareOp.NE else negate(p)
        test = self.test(val, op, lit, leaf)
        if op is CompareOp.NE:
            return or_(negate(self.nonnull(val)), test)
        return test

    def multi_compare(
        self, rows: _Rows, sub: str | None, op: CompareOp, lit: Literal, leaf: Attribute | None
    ) -> Cond:
        if lit is None:
            p = rows.any(lambda el: self.present(el(sub)))
            return p if op is CompareOp.NE else negate(p)
        hit = rows.any(lambda el: and_(self.nonnull(el(sub)), self.test(el(sub), op, lit, leaf)))
        if op is CompareOp.NE:
            return or_(negate(rows.any(lambda el: self.nonnull(el(sub)))), hit)
        return hit

    def test(self, val: Val, op: CompareOp, lit: Literal, leaf: Attribute | None) -> Cond:
        """One present, non-null value against the literal (the evaluator's ``_tester``)."""
        t = leaf.type if leaf is not None else _literal_type(lit)
        if t is AttributeType.BOOLEAN:
            if not isinstance(lit, bool):
                return true() if op is CompareOp.NE else false()
            return _ordered(op, self.as_bool(val), 1 if lit else 0)
        if t in _NUMERIC and not isinstance(lit, str):
            return _ordered(op, self.as_number(val), lit)
        if t is AttributeType.DATETIME:
            if op in _SUBSTRING:
                return false()
            when = to_datetime(lit)
            if when is not None:
                return _ordered(op, self.as_instant(val), to_micros(when))
        exact = leaf.case_exact if leaf is not None else False
        if isinstance(lit, bool):
            target = "true" if lit else "false"
        else:
            target = str(lit) if exact else fold(str(lit))
        text = self.as_text(val, exact)
        if op is CompareOp.CO:
            return self.d.contains(text, target, exact)
        if op is CompareOp.SW:
            return self.d.startswith(text, target, exact)
        if op is CompareOp.EW:
            return self.d.endswith(text, target, exact)
        return _ordered(op, text, target)

    # -- coercions (the evaluator's as_text / _as_bool / _as_number / to_datetime) -------------

    def as_text(self, val: Val, exact: bool) -> ColumnElement[Any]:
        if val.jtype is None:
            return val.value if (val.folded or exact) else self.d.fold(val.value)
        return case(
            (val.jtype == "text", val.value if exact else self.d.fold(val.value)),
            (val.jtype == "true", literal("true")),
            (val.jtype == "false", literal("false")),
            (val.jtype.in_(("integer", "real")), cast(val.value, Text)),
        )

    def as_bool(self, val: Val) -> ColumnElement[Any]:
        if val.jtype is None:
            return null()
        low = self.d.fold(val.value)
        return case(
            (val.jtype == "true", literal(1)),
            (val.jtype == "false", literal(0)),
            (and_(val.jtype == "text", low == "true"), literal(1)),
            (and_(val.jtype == "text", low == "false"), literal(0)),
        )

    def as_number(self, val: Val) -> ColumnElement[Any]:
        if val.jtype is None:
            return self.d.number(val.value)
        return case(
            (val.jtype.in_(("integer", "real")), val.value),
            (val.jtype == "text", self.d.number(val.value)),
        )

    def as_instant(self, val: Val) -> ColumnElement[Any]:
        if val.jtype is None:
            return self.d.instant(val.value)
        return case((val.jtype == "text", self.d.instant(val.value)))

    # -- presence ------------------------------------------------------------------------------

    def nonnull(self, val: Val) -> Cond:
        if val.jtype is None:
            return val.value.is_not(None)
        return and_(val.jtype.is_not(None), val.jtype != "null")

    def present(self, val: Val) -> Cond:
        """``pr`` on one value (the evaluator's ``is_present``); never SQL NULL."""
        if val.jtype is None:
            return func.coalesce(val.value, "") != ""
        checks: list[Cond] = [
            val.jtype.in_(_SCALAR_TYPES),
            and_(val.jtype == "text", val.value != ""),
        ]
        if val.tree is not None:
            checks.append(and_(val.jtype.in_(("array", "object")), self.d.tree_present(*val.tree)))
        return func.coalesce(or_(*checks), false())

    def present_path(self, path: AttrPath) -> Cond:
        path = present(self.rt, path).path  # rendered values: what decides them, as the parser does
        src = self.source(path)
        if isinstance(src, _Const):
            return self.const(Present(path), src)
        if isinstance(src, _Instant):
            return true()
        if isinstance(src, _Rows):
            sub = path.sub
            if sub is None and src.guard is None:
                return src.any(lambda el: true())  # an emails/memberships row is a present element
            return src.any(lambda el: self.present(el(sub)))
        return self.present(src)

    # -- valuePath -------------------------------------------------------------------------------

    def value_path(self, node: ValuePath) -> Cond:
        subs = frozenset(_inner_subs(node.filter))
        src = self.source(node.path, subs)
        top, _ = self.definitions(node.path)
        if not isinstance(src, _Rows) or top is None:
            return false()  # the parser only allows [...] on multi-valued complex attributes
        guard = src.guard

        def build(el: _Element) -> Cond:
            inner = self.element(node.filter, el, top)
            return inner if guard is None else and_(guard(el), inner)

        return src.any(build)

    def element(self, f: Filter, el: _Element, top: Attribute) -> Cond:
        """The inner filter of ``attr[...]`` on one element (the evaluator's ``_ElementReader``)."""
        if isinstance(f, Compare):
            leaf = top.sub(f.path.sub) if f.path.sub is not None else top
            return self.scalar_compare(el(f.path.sub), f.op, f.value, leaf)
        if isinstance(f, Present):
            return self.present(el(present(self.rt, f.path, inside=True).path.sub))
        if isinstance(f, And):
            return and_(self.element(f.left, el, top), self.element(f.right, el, top))
        if isinstance(f, Or):
            return or_(self.element(f.left, el, top), self.element(f.right, el, top))
        if isinstance(f, Not):
            inner = f.expr
            if isinstance(inner, Not):
                return self.element(inner.expr, el, top)
            return negate(self.element(inner, el, top))
        return false()  # a valuePath never nests (RFC 7644 errata 4690)


def member_display(member: Any, membership: Any) -> ColumnElement[Any]:
    """A member's display: what the client sent (RFC 7643 4.2 stores it as given), else the
    member's displayName, else its userName."""
    return func.coalesce(membership.c.display, member.c.display_name, member.c.user_name)


def _ordered(op: CompareOp, value: ColumnElement[Any], raw_target: Any) -> Cond:
    target = literal(raw_target)
    if op is CompareOp.EQ:
        return value == target
    if op is CompareOp.NE:
        return or_(value.is_(None), value != target)
    if op is CompareOp.GT:
        return value > target
    if op is CompareOp.GE:
        return value >= target
    if op is CompareOp.LT:
        return value < target
    if op is CompareOp.LE:
        return value <= target
    return false()


def _literal_type(lit: Literal) -> AttributeType:
    if isinstance(lit, bool):
        return AttributeType.BOOLEAN
    if isinstance(lit, int | float):
        return AttributeType.DECIMAL
    return AttributeType.STRING


def _inner_subs(f: Filter) -> Iterator[str]:
    if isinstance(f, Compare | Present):
        yield f.path.sub or ""
    elif isinstance(f, And | Or):
        yield from _inner_subs(f.left)
        yield from _inner_subs(f.right)
    elif isinstance(f, Not):
        yield from _inner_subs(f.expr)
    elif isinstance(f, ValuePath):
        yield ""
