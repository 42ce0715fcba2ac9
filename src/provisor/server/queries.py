"""Query parameters and SearchRequest bodies (RFC 7644 sections 3.4.2 and 3.4.3) -> a store Query."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provisor.scim.cursor import Cursor, decode_cursor, query_digest
from provisor.scim.errors import (
    BadRequest,
    InvalidCount,
    InvalidCursor,
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
)
from provisor.scim.filter.ast import AttrPath, PatchPath
from provisor.scim.filter.parser import parse_attr_path, parse_filter, parse_patch_path
from provisor.scim.resources.plans import plan_for
from provisor.scim.schema.model import MAX_INTEGER, MIN_INTEGER, ResourceType, Returned
from provisor.server.http import SCIM_PARAMETERS
from provisor.server.tenancy import TenantContext
from provisor.store.base import Query

SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
#: The largest ``startIndex`` a store is asked for; larger ones mean the same to it, past every
#: result (the response still echoes the one asked, up to 2**63 - 1; beyond, see :func:`_int_param`).
MAX_START_INDEX = 2**62
_TWO_TO_63 = float(2**63)
#: An integer as query-string text: what ``count=`` and ``startIndex=`` may hold.
_INTEGER_TEXT = re.compile(r"[ \t]*[+-]?[0-9]+[ \t]*")


@dataclass(frozen=True, slots=True)
class Projection:
    """``attributes`` / ``excludedAttributes`` (RFC 7644 section 3.4.2.5), resolved to paths."""

    attributes: tuple[AttrPath, ...] | None = None
    excluded: tuple[AttrPath, ...] | None = None
    #: Value filters in ``attributes`` and in ``excludedAttributes`` (``emails[type eq "work"]``),
    #: which pick values of multi-valued attributes (``projection.select_elements``). An attribute
    #: of ``selected`` is in ``attributes`` too; one of ``removed`` is not in ``excluded``.
    selected: tuple[PatchPath, ...] = ()
    removed: tuple[PatchPath, ...] = ()

    @classmethod
    def of(cls, attributes: Any, excluded: Any, rt: ResourceType, *, short_names: bool = False) -> Projection:
        """The projection the ``attributes`` and ``excludedAttributes`` parameters ask for."""
        wanted, selected = parse_paths(attributes, rt, short_names=short_names)
        dropped, removed = parse_paths(excluded, rt, short_names=short_names)
        if selected:
            whole = {(p.urn, p.attr) for p in wanted or ()}
            # a value filter selects among values the same request names unfiltered: all of them
            selected = tuple(p for p in selected if (p.path.urn, p.path.attr) not in whole)
            wanted = (*(wanted or ()), *(p.path for p in selected))
        return cls(wanted, dropped, selected, removed)

    def wants_members(self) -> bool:
        """Whether a Group's members will be returned (Entra's ``excludedAttributes=members``, Q10)."""
        return self._wants("members")

    def wants_groups(self) -> bool:
        """Whether a User's ``groups`` will be returned (not with ``excludedAttributes=groups``,
        nor with ``attributes`` that do not name it or one of its sub-attributes)."""
        return self._wants("groups")

    def only_ids(self, rt: ResourceType) -> bool:
        """Whether each resource in the response is nothing but ``schemas`` and ``id``.

        ``attributes=id`` (how a client such as Provisor's engine lists every id to detect
        deletions) keeps only the attributes returned ``always``; when ``id`` is the resource type's
        only such attribute, the store need not read a single document.
        """
        return (
            bool(self.attributes)
            and all(p.attr == "id" and p.sub is None and p.urn is None for p in self.attributes or ())
            and plan_for(rt).always_returned == ("id",)
        )

    def _wants(self, attr: str) -> bool:
        if self.excluded and any(p.attr == attr and p.urn is None and p.sub is None for p in self.excluded):
            return False
        if self.attributes is not None:
            return any(p.attr == attr and p.urn is None for p in self.attributes)
        return True


@dataclass(frozen=True, slots=True)
class ListRequest:
    query: Query
    projection: Projection
    #: Cursor-based pagination (RFC 9865): where the page starts, ``None`` for index paging.
    cursor: Cursor | None = None
    #: The response's ``startIndex``: the one asked, 1 for less (RFC 7644 section 3.4.2.4). The
    #: query's is capped at :data:`MAX_START_INDEX`, which means the same to a store.
    start_index: int = 1


def parse_paths(
    value: str | Sequence[str] | None, rt: ResourceType, *, short_names: bool = False
) -> tuple[tuple[AttrPath, ...] | None, tuple[PatchPath, ...]]:
    """A comma-separated list (or JSON list) of attribute names: the names without a value
    filter (None when it names nothing), and those with one.

    A schema extension's URN alone names the whole extension, and the core schema's its
    attributes; with ``short_names`` (Q11, the
    tenant's ``unquoted_filter_values``) an unqualified name may name an extension's attribute,
    as in a filter (``parse_attr_path``). Names no schema of ``rt`` declares
    select nothing (so ``attributes=foo`` leaves the ``always`` attributes, and a search across
    resource types asking for ``userName`` gets Groups reduced to those). Microsoft's reference
    tests send a value filter inside ``attributes`` (``emails[type eq "work"]``): read as a
    PATCH path (``emails[type eq "work"].value``), 400 ``invalidValue`` when it is none.
    """
    if value is None:
        return None, ()
    items = _split_names(value) if isinstance(value, str) else list(value)
    paths: list[AttrPath] = []
    filtered: list[PatchPath] = []
    named = False
    for raw in items:
        if not isinstance(raw, str):
            raise InvalidValue("attributes must be strings")
        name = raw.strip()
        if not name:
            continue
        named = True
        if "[" in name:
            try:
                filtered.append(parse_patch_path(name, rt))
            except InvalidPath as exc:
                raise InvalidValue(f"{name!r} is no attribute with a value filter: {exc.detail}") from None
            continue
        extension = rt.extension(name)
        if extension is not None:
            paths.append(AttrPath(None, extension.id))
            continue
        if name.lower() == rt.schema.id.lower():  # the core schema's URN: its attributes, as an extension's
            paths.extend(AttrPath(None, a.name) for a in rt.schema.attributes)
            continue
        try:
            paths.append(parse_attr_path(name, rt, short_names=short_names))
        except InvalidPath:
            continue
    return (tuple(paths) if named and (paths or not filtered) else None), tuple(filtered)


def _split_names(text: str) -> list[str]:
    """``attributes`` split at its commas, but not at those inside a value filter's brackets
    (``emails[type eq "a,b"]``)."""
    if "[" not in text:
        return text.split(",")
    names, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            names.append(text[start:i])
            start = i + 1
    names.append(text[start:])
    return names


def _int_param(name: str, value: Any, default: int, error: type[BadRequest] = InvalidValue) -> int:
    """``startIndex`` or ``count``: a JSON integer (a SearchRequest body, RFC 7644 section 3.4.3,
    where :func:`search_params` lets no string through), or the query string's text of one: an
    optional sign and ASCII digits, around them spaces (not the underscores or other scripts'
    digits ``int`` would read too). Absent, ``null`` or an empty query value: ``default``.

    Outside the signed 64-bit integers Provisor holds, see :func:`_in_range`."""
    if value is None or value == "":
        return default
    if type(value) is int:
        return _in_range(name, value, error)
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        try:
            number = int(value)
        except ValueError:  # past Python's digit limit for int(): far outside the range
            number = MIN_INTEGER - 1 if value.strip().startswith("-") else MAX_INTEGER + 1
        return _in_range(name, number, error)
    raise error(f"{name} must be an integer, not {_shown(value)}")


def _in_range(name: str, value: int, error: type[BadRequest]) -> int:
    """``value`` brought into the signed 64-bit range, or 400 (``error``) for a startIndex past it.

    RFC 7644 section 3.4.2.4 bounds neither parameter, and reads a startIndex below 1 as 1 and a
    negative count as 0, however far below; a count above the maximum page size is lowered to
    it, however far above. So both are read so at any size. A startIndex past 2**63 - 1 is
    refused: it addresses no result in any store (a database's row offset is a signed 64-bit
    integer), and the empty page that answers an index past every result echoes it, which the
    JSON writer cannot do past 64 bits (nor hold as asked: a SearchRequest body's JSON reader
    hands such a number over as a float)."""
    if value < MIN_INTEGER:
        return MIN_INTEGER
    if value > MAX_INTEGER:
        if name == "count":
            return MAX_INTEGER
        raise error(f"{name} is {_shown(value)}, past the largest index Provisor holds, {MAX_INTEGER}")
    return value


def _shown(value: Any) -> str:
    """``value`` as a message names it, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:40]}..."


def build_list_request(
    params: Mapping[str, Any],
    rt: ResourceType,
    ctx: TenantContext,
    *,
    default_page_size: int,
    across_types: bool = False,
    group_budget: int | None = None,
) -> ListRequest:
    """Validate list/search parameters. ``params`` keys are matched case-insensitively.

    ``across_types``: the request searches several resource types (``POST /.search``), so a filter
    naming an attribute ``rt`` does not have reads it as without a value (RFC 7644 3.4.2.1).
    ``group_budget``: the most group references a page of Users carries (``Query.group_budget``,
    ``config.PAGE_GROUP_REFS``)."""
    p = {k.lower(): v for k, v in params.items()}
    short_names = ctx.compat.on("unquoted_filter_values")  # Q11: for attribute paths too
    filter_text = p.get("filter")
    filter_ = None
    if filter_text is not None:
        if not isinstance(filter_text, str):
            raise InvalidValue("filter must be a string")
        # An empty filter is no filter of RFC 7644's grammar: 400 invalidFilter, not every
        # resource (a client that built it from an empty variable meant to select something).
        filter_ = parse_filter(
            filter_text,
            rt,
            allow_unquoted=short_names,
            dotted_urns=ctx.compat.on("extension_dot_names"),
            unknown_absent=across_types,
            string_booleans=ctx.compat.on("string_booleans"),
        )
    sort_by = None
    if p.get("sortby"):
        if not isinstance(p["sortby"], str):
            raise InvalidValue("sortBy must be a string")
        try:
            sort_by = parse_attr_path(p["sortby"], rt, short_names=short_names)
        except InvalidPath as exc:
            raise InvalidValue(f"sortBy: {exc.detail}") from None
        _check_sortable(sort_by, rt)
    order = p.get("sortorder") or "ascending"
    if not isinstance(order, str) or order.lower() not in ("ascending", "descending"):
        raise InvalidValue("sortOrder must be 'ascending' or 'descending'")
    descending = order.lower() == "descending"
    default_count = min(default_page_size, ctx.max_page_size)
    cursor = None
    if "cursor" in p:  # RFC 9865: present, even empty, asks for cursor-based pagination
        if p.get("startindex") not in (None, ""):
            raise InvalidValue("startIndex and cursor cannot be combined: page by one or the other")
        count = _cursor_count(p.get("count"), default_count)
        text = p["cursor"]
        if text is not None and not isinstance(text, str):
            raise InvalidCursor("cursor must be a string")
        digest = query_digest(rt.name, filter_, sort_by, descending)
        cursor = decode_cursor(text, digest, sorted_query=sort_by is not None) if text else Cursor(digest)
        start = asked = 1
    else:
        asked = max(1, _int_param("startIndex", p.get("startindex"), 1))
        # Past 2**62 no page can hold anything, and the database's 64-bit offset arithmetic would
        # overflow: the store gets the cap, the response the index asked.
        start = min(asked, MAX_START_INDEX)
        count = _int_param("count", p.get("count"), default_count)
    count = min(max(count, 0), ctx.max_page_size)
    projection = Projection.of(p.get("attributes"), p.get("excludedattributes"), rt, short_names=short_names)
    query = Query(
        filter=filter_,
        sort_by=sort_by,
        descending=descending,
        start_index=start,
        count=count,
        with_members=projection.wants_members(),
        with_groups=projection.wants_groups(),
        group_budget=group_budget,
    )
    return ListRequest(query=query, projection=projection, cursor=cursor, start_index=asked)


def _cursor_count(value: Any, default: int) -> int:
    """``count`` of a cursor-paged query (RFC 9865 section 2): a positive integer; above the
    maximum page size it is lowered to it, as for index paging."""
    count = _int_param("count", value, default, InvalidCount)
    if count < 1:
        shown = f", not {count}" if count > MIN_INTEGER else ""  # far below: read as the least
        raise InvalidCount(f"count must be at least 1 with a cursor{shown}")
    return count


#: Attributes the server computes when it renders a resource (from memberships, the version, the
#: base URL) or that every resource of a type shares: no order can be read from the stored data.
_UNSORTABLE = frozenset({"members", "groups", "schemas"})
_UNSORTABLE_META = frozenset({"version", "location"})


def _check_sortable(path: AttrPath, rt: ResourceType) -> None:
    found = rt.attribute(path.urn, path.attr)
    if found is None:  # parse_attr_path already resolved it; defensive
        raise InvalidValue(f"sortBy: unknown attribute {path}")
    attr = found[1]
    if path.urn is None and (
        attr.name in _UNSORTABLE or (attr.name == "meta" and path.sub in _UNSORTABLE_META)
    ):
        raise InvalidValue(f"sortBy: {path} is computed by the server and cannot be sorted on")
    if attr.returned is Returned.NEVER:
        raise InvalidValue(f"sortBy: {path} is never stored or returned (password), so nothing sorts on it")
    if path.sub is not None:
        sub = attr.sub(path.sub)
        if sub is None or sub.type == "complex":
            raise InvalidValue(f"sortBy: {path} cannot be sorted on")
    elif attr.type == "complex" and not attr.sub("value"):
        raise InvalidValue(f"sortBy: {path} is complex and cannot be sorted on")


def _past_64_bits(value: Any) -> bool:
    """Whether ``value`` is a float standing for a whole number outside the signed 64-bit range:
    the JSON reader gives an integer it cannot hold (below -2**63, or 2**64 and above) and
    ``1e30`` as such a float, rounded (-2**63 - 1 arrives as -2**63.0: hence ``>=``)."""
    return type(value) is float and math.isfinite(value) and abs(value) >= _TWO_TO_63


def search_params(body: Any) -> dict[str, Any]:
    """A SearchRequest body (RFC 7644 section 3.4.3) as list parameters."""
    if not isinstance(body, dict):
        raise InvalidSyntax("a SearchRequest must be a JSON object")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or not any(
        isinstance(s, str) and s.lower() == SEARCH_REQUEST.lower() for s in schemas
    ):
        raise InvalidSyntax(f"schemas must contain {SEARCH_REQUEST}")
    params: dict[str, Any] = {}
    names: dict[str, str] = {}
    for key, value in body.items():
        low = key.lower()
        if low in params and low in SCIM_PARAMETERS:  # no reading could choose between the two
            raise InvalidValue(f"{key!r} is given twice, in two cases (member names are case-insensitive)")
        if low in ("attributes", "excludedattributes") and not isinstance(value, list | str):
            raise InvalidValue(f"{key} must be a list of attribute names")
        params[low] = value
        names[low] = key
    for low in ("startindex", "count"):
        value = params.get(low)
        if value is not None and type(value) is not int:
            # RFC 7644 3.4.3: JSON integers; not 1.5, true or "5" (text is the query string's form)
            error = InvalidCount if low == "count" and "cursor" in params else InvalidValue
            if _past_64_bits(value):  # what the JSON reader gives for an integer past its range
                if value < 0 or low == "count":  # read as the RFC reads such a value
                    params[low] = MIN_INTEGER if value < 0 else MAX_INTEGER
                    continue
                raise error(f"{names[low]} is past the largest index Provisor holds, {MAX_INTEGER}")
            raise error(f"{names[low]} must be an integer, not {_shown(value)}")
    return params
