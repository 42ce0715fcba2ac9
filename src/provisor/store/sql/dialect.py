"""The dialect-specific SQL the store needs, behind one small strategy.

Everything that differs between SQLite and PostgreSQL lives here: reading a JSON value and its
JSON type, iterating a JSON array, the recursive "present" test, case folding, dateTime and number
coercion, case-exact substring tests, INSERT ... ON CONFLICT DO NOTHING and aggregating rows into
one JSON array (a User's ``groups`` in the same statement as the User). Only SQLite is
implemented (``json_extract``/``json_each``/``json_tree`` and the ``scim_*`` functions that
``engine`` registers); a PostgreSQL strategy (jsonb operators, ``jsonb_array_elements``) slots in
beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Engine, FromClause, Table, and_, exists, func, literal, or_, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql.dml import Insert


@dataclass(frozen=True, slots=True)
class Val:
    """One value the filter compiler can test.

    ``jtype`` is its JSON type expression (``'text'``, ``'integer'``, ``'true'``, ``'object'``, ...,
    SQL NULL when absent); None means a plain text column where SQL NULL means absent. ``folded``
    says the column already holds case-folded text. ``tree`` is ``(document, json path)`` for the
    recursive presence test of containers.
    """

    value: ColumnElement[Any]
    jtype: ColumnElement[Any] | None = None
    folded: bool = False
    tree: tuple[ColumnElement[Any], ColumnElement[Any]] | None = None


@dataclass(frozen=True, slots=True)
class Elements:
    """The elements of one JSON array: a FROM item, each element as a :class:`Val`, its JSON path
    and its position (for "the first value")."""

    source: FromClause
    element: Val
    path: ColumnElement[Any]
    index: ColumnElement[Any]


class SqlDialect(Protocol):
    """What the filter compiler and the store ask of a database."""

    name: str

    def scalar(self, doc: ColumnElement[Any], keys: tuple[str, ...]) -> Val: ...

    def elements(self, doc: ColumnElement[Any], keys: tuple[str, ...]) -> Elements: ...

    def element_sub(self, doc: ColumnElement[Any], elements: Elements, sub: str) -> Val: ...

    def tree_present(self, doc: ColumnElement[Any], path: ColumnElement[Any]) -> ColumnElement[bool]: ...

    def fold(self, expr: ColumnElement[Any]) -> ColumnElement[Any]: ...

    def instant(self, expr: ColumnElement[Any]) -> ColumnElement[Any]: ...

    def number(self, expr: ColumnElement[Any]) -> ColumnElement[Any]: ...

    def contains(self, expr: ColumnElement[Any], target: str, case_exact: bool) -> ColumnElement[bool]: ...

    def startswith(self, expr: ColumnElement[Any], target: str, case_exact: bool) -> ColumnElement[bool]: ...

    def endswith(self, expr: ColumnElement[Any], target: str, case_exact: bool) -> ColumnElement[bool]: ...

    def insert_ignore(self, table: Table) -> Insert: ...

    def json_rows(self, *items: ColumnElement[Any]) -> ColumnElement[Any]:
        """An aggregate: a JSON array holding ``[item, ...]`` for each row, in no particular order.

        The driver returns it as JSON text or already decoded; no rows give ``[]`` or NULL (callers
        accept all four). PostgreSQL: ``json_agg(json_build_array(...))``.
        """
        ...


def json_path(keys: tuple[str, ...]) -> str:
    """A JSON path with every key quoted: ``$."urn:...:User"."department"``."""
    for k in keys:
        if '"' in k or "\\" in k:
            raise ValueError(f"attribute name {k!r} cannot appear in a JSON path")
    return "$" + "".join(f'."{k}"' for k in keys)


def like_escape(text: str) -> str:
    """Escape LIKE's wildcards and the escape character itself (used with ``ESCAPE '\\'``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqliteDialect:
    """SQLite 3.38+: JSON1 functions, plus ``scim_fold``/``scim_instant``/``scim_number``."""

    name = "sqlite"

    def scalar(self, doc: ColumnElement[Any], keys: tuple[str, ...]) -> Val:
        path = literal(json_path(keys))
        return Val(func.json_extract(doc, path), func.json_type(doc, path), tree=(doc, path))

    def elements(self, doc: ColumnElement[Any], keys: tuple[str, ...]) -> Elements:
        each = (
            func.json_each(doc, literal(json_path(keys)))
            .table_valued("key", "value", "type", "fullkey")
            .alias()
        )
        element = Val(each.c.value, each.c.type, tree=(doc, each.c.fullkey))
        return Elements(each, element, each.c.fullkey, each.c.key)

    def element_sub(self, doc: ColumnElement[Any], elements: Elements, sub: str) -> Val:
        # Reading through the document by the element's full path (not json_extract(value, ...))
        # never fails on an element that is not an object: the path just finds nothing.
        path = elements.path.concat(literal(json_path((sub,))[1:]))
        return Val(func.json_extract(doc, path), func.json_type(doc, path), tree=(doc, path))

    def tree_present(self, doc: ColumnElement[Any], path: ColumnElement[Any]) -> ColumnElement[bool]:
        """RFC 7644 ``pr`` on a JSON value: some leaf under it is not null and not ``""``."""
        tree = func.json_tree(doc, path).table_valued("type", "atom").alias()
        leaf = or_(
            tree.c.type.in_(("true", "false", "integer", "real")),
            and_(tree.c.type == "text", tree.c.atom != ""),
        )
        return exists(select(literal(1)).select_from(tree).where(leaf))

    def fold(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.scim_fold(expr)

    def instant(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.scim_instant(expr)

    def number(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.scim_number(expr)

    # SQLite's LIKE ignores ASCII case, so exact tests use instr()/substr(). LIKE also stops reading
    # its pattern at a NUL character (``co "\x00"`` would match everything): such targets take the
    # exact route too, which is equivalent since the filter compiler folds both sides when the
    # attribute is not caseExact.

    def contains(self, expr: ColumnElement[Any], target: str, case_exact: bool) -> ColumnElement[bool]:
        if case_exact or "\x00" in target:
            return func.instr(expr, literal(target)) > 0
        return expr.like(f"%{like_escape(target)}%", escape="\\")

    def startswith(self, expr: ColumnElement[Any], target: str, case_exact: bool) -> ColumnElement[bool]:
        if case_exact or "\x00" in target:
            return func.substr(expr, 1, len(target)) == literal(target)
        return expr.like(f"{like_escape(target)}%", escape="\\")

    def endswith(self, expr: ColumnElement[Any], target: str, case_exact: bool) -> ColumnElement[bool]:
        if case_exact or "\x00" in target:
            if not target:
                return expr.is_not(None)
            return func.substr(expr, -len(target)) == literal(target)
        return expr.like(f"%{like_escape(target)}", escape="\\")

    def insert_ignore(self, table: Table) -> Insert:
        return sqlite.insert(table).on_conflict_do_nothing()

    def json_rows(self, *items: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.json_group_array(func.json_array(*items))


def dialect_for(engine: Engine) -> SqlDialect:
    """The strategy for the engine's database."""
    if engine.dialect.name == "sqlite":
        return SqliteDialect()
    raise NotImplementedError(f"the SQL store does not support {engine.dialect.name} yet")
