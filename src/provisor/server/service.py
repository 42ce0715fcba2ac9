"""The resource operations of RFC 7644 section 3, shared by the HTTP routes and /Bulk.

Each operation takes parsed input, calls the protocol core and the store, and returns an
:class:`Outcome`; errors are raised (ScimError or StoreError) and rendered in ``errors.py``.

A User's ``groups`` (RFC 7643 section 4.1.2) is derived by the store from group membership and
rendered here: each group the User is in, ``{value, $ref, display, type}``, ``type`` "direct", or
"indirect" for a group it is in only through nested groups. It is
loaded only when the response will show it (``Projection.wants_groups``) and is read-only (input is
ignored by ``parse_resource``, a PATCH targeting it is a ``mutability`` error).

``meta.version`` is the ETag (RFC 7643 section 3.1) and, as a weak validator, changes with every
significant change of the representation (RFC 7232 section 2.1), derived attributes included: the
store gives a User a new version and lastModified when its ``groups`` change (it joins or leaves a
group; a group it is in, directly or through nesting, is renamed, deleted, nested or un-nested),
and a Group when a member's name it shows in ``members[].display`` changes (store/base.py). So
If-None-Match never answers 304 with a stale ``groups`` or member display, and a ``meta.lastModified
ge`` read (the SCIM source's watermark) sees those resources again. Renaming or deleting a group
therefore costs O(its members and nested subtree): every one of their representations changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import orjson

from provisor.scim import patch as scim_patch
from provisor.scim.compat import bodies
from provisor.scim.cursor import Cursor, encode_cursor
from provisor.scim.errors import InvalidSyntax
from provisor.scim.filter.ast import And, AttrPath, Compare, CompareOp, Filter
from provisor.scim.projection import (
    Specified,
    changed_keys,
    named_keys,
    project,
    select_elements,
    specified_keys,
)
from provisor.scim.resources import etag, keep_immutable, parse_resource, render_json, to_representation
from provisor.scim.resources.plans import plan_for
from provisor.scim.schema.model import ResourceType
from provisor.server.errors import clipped
from provisor.server.queries import ListRequest, Projection
from provisor.server.tenancy import TenantContext
from provisor.store.base import (
    Change,
    GroupRef,
    Member,
    MemberDelta,
    MemberLookup,
    Precondition,
    Query,
    Reads,
    ResourceStore,
    SortKey,
    StoredResource,
    UnknownMember,
)

log = logging.getLogger("provisor.server")
T = TypeVar("T")

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


#: A representation ready to send: a JSON-shaped dict, or JSON text spliced from the stored
#: document (``render_json``) that ``orjson.dumps`` writes out as it is, alone or in a list.
Body = dict[str, Any] | orjson.Fragment


@dataclass(frozen=True, slots=True)
class Outcome:
    """A response to send: status, JSON body (None for no content) and headers; ``id`` is the
    resource's when the response is about one (what a /Bulk POST's ``bulkId`` resolves to)."""

    status: int
    body: Body | None = None
    headers: dict[str, str] = field(default_factory=dict)
    id: str | None = None


#: A version is a 64-bit counter: a longer run of digits is no tag of ours (and ``int`` of it would
#: be slow, or refused past Python's digit limit).
_MAX_VERSION_DIGITS = 18


def precondition(if_match: str | None, if_none_match: str | None = None) -> Precondition | None:
    """If-Match and If-None-Match header values (RFC 7232 section 3) -> a Precondition on our
    versions; None when neither is given (a blank header counts as absent).

    Each is ``*`` or a comma-separated list of entity tags. Ours are ``W/"<n>"``, compared weakly
    as SCIM's are (RFC 7644 section 3.14); ``W/`` is optional on input, so ``"3"`` names
    version 3 too (an unquoted ``3`` is no entity tag, RFC 9110 section 8.8.3, and names none).
    A tag that is not ours never matches.
    """
    match_text = (if_match or "").strip()
    none_text = (if_none_match or "").strip()
    if not match_text and not none_text:
        return None
    return Precondition(
        match=None if match_text in ("", "*") else _entity_tags(match_text),
        none_match=frozenset() if none_text in ("", "*") else _entity_tags(none_text),
        none_match_any=none_text == "*",
    )


def _entity_tags(header: str) -> frozenset[int]:
    """The versions of ours a list of entity tags names. A tag names one only as Provisor writes
    it: a quoted version in canonical digits (``"01"`` and ``""1""`` are other tags, RFC 7232
    section 2.3: entity tags compare as strings), weak or not."""
    versions: set[int] = set()
    for part in header.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if len(tag) < 3 or tag[0] != '"' or tag[-1] != '"':
            continue
        digits = tag[1:-1]
        if digits.isascii() and digits.isdigit() and digits[0] != "0" and len(digits) <= _MAX_VERSION_DIGITS:
            versions.add(int(digits))
    return frozenset(versions)


def _skipping_unknown_members(ctx: TenantContext, write: Callable[[frozenset[str]], T]) -> T:
    """``write(unknown)``, the member values in ``unknown`` left out of what it adds. It starts
    with none; with ``unknown_members_skipped`` on, a write refused for member values that are not
    ids of the tenant's Users or Groups (UnknownMember: nothing of it was stored) is made again
    without them, once, and they are logged. Off, the refusal stands (400 ``invalidValue``)."""
    try:
        return write(frozenset())
    except UnknownMember as exc:
        if not ctx.compat.on("unknown_members_skipped"):
            raise
        unknown = frozenset(exc.values)
    log.info(
        "skipped member values that are no User or Group of tenant %s: %s",
        ctx.id,
        clipped(sorted(unknown), quoted=True),
    )
    return write(unknown)


def _known(members: tuple[Member, ...], unknown: frozenset[str]) -> tuple[Member, ...]:
    return tuple(m for m in members if m.value not in unknown) if unknown else members


def _known_delta(delta: MemberDelta, unknown: frozenset[str]) -> MemberDelta:
    if not unknown:
        return delta
    replace_ = None if delta.replace is None else _known(delta.replace, unknown)
    return MemberDelta(
        add=_known(delta.add, unknown), remove=delta.remove, replace=replace_, shown=delta.shown
    )


def _members_of(data: dict[str, Any]) -> tuple[Member, ...]:
    raw = data.pop("members", None) or []
    return tuple(Member(value=m["value"], type=m.get("type"), display=m.get("display")) for m in raw)


class ResourceService:
    """Create, read, replace, patch, delete and search Users and Groups for one server."""

    def __init__(self, store: ResourceStore) -> None:
        self.store = store

    def render(
        self,
        rt: ResourceType,
        res: StoredResource,
        base_url: str,
        projection: Projection | None = None,
        specified: Specified | None = None,
    ) -> Body:
        """The representation of ``res`` as the response shows it. Without ``attributes`` or
        ``excludedAttributes`` it is spliced from the stored document's JSON text when the store
        hands it over (``render_json``: nothing decoded, nothing re-encoded); otherwise, and for
        a resource type with attributes returned only on request (an extension's, RFC 7643
        section 7), it is built (``to_representation``) and projected. ``specified``: the
        attributes a write specified, whose ``request`` attributes its response shows."""
        projected = (
            projection is not None
            and (projection.attributes is not None or bool(projection.excluded) or bool(projection.removed))
        ) or plan_for(rt).request_returned
        location = f"{base_url}{rt.endpoint}/{res.id}"
        groups = groups_json(res.groups, base_url) if res.groups else None
        if not projected and res.document_json is not None:
            return orjson.Fragment(
                render_json(
                    rt,
                    res.id,
                    res.document_json,
                    created=res.created,
                    last_modified=res.last_modified,
                    version=res.version,
                    location=location,
                    members=res.members,
                    member_base_url=base_url,
                    groups=groups,
                )
            )
        rep = to_representation(
            rt,
            res.id,
            res.data,
            created=res.created,
            last_modified=res.last_modified,
            version=res.version,
            location=location,
            members=res.members,
            member_base_url=base_url,
            groups=groups,
        )
        if projected:
            if projection is None:
                return project(rt, rep, specified=specified)
            picked: Mapping[str, Any] = rep
            if projection.selected or projection.removed:
                picked = select_elements(rt, rep, projection.selected, projection.removed)
            return project(rt, picked, projection.attributes, projection.excluded, specified)
        return rep

    def _shown(
        self,
        status: int,
        rt: ResourceType,
        res: StoredResource,
        base_url: str,
        projection: Projection | None,
        data: Mapping[str, Any],
    ) -> Outcome:
        """The response showing ``res`` (a create's, a replace's, of ``data``), with its ETag and
        Location."""
        specified = specified_keys(rt, data) if plan_for(rt).request_returned else None
        body = self.render(rt, res, base_url, projection, specified)
        return Outcome(status, body, self._headers(rt, res, base_url), res.id)

    def _headers(self, rt: ResourceType, res: StoredResource, base_url: str) -> dict[str, str]:
        return {"ETag": etag(res.version), "Location": f"{base_url}{rt.endpoint}/{res.id}"}

    def create(
        self,
        ctx: TenantContext,
        rt: ResourceType,
        body: Any,
        base_url: str,
        projection: Projection | None = None,
    ) -> Outcome:
        data = parse_resource(rt, _object(body), ctx.compat, allowed_roles=ctx.allowed_roles)
        if "active" not in data and rt.name == "User":  # nearly every client sends it
            data = bodies.default_active(data, None, ctx.compat)
        members = _members_of(data) if rt.name == "Group" else ()
        res = _skipping_unknown_members(
            ctx, lambda unknown: self.store.create(ctx.id, rt.name, data, _known(members, unknown))
        )
        return self._shown(201, rt, res, base_url, projection, data)

    def get(
        self,
        ctx: TenantContext,
        rt: ResourceType,
        id: str,
        base_url: str,
        projection: Projection,
        condition: Precondition | None = None,
    ) -> Outcome:
        """A resource by id; with If-None-Match naming its version, 304 (RFC 7232 section 3.2);
        with If-Match not naming it, 412 (section 3.1)."""
        res = self.store.get(
            ctx.id,
            rt.name,
            id,
            with_members=projection.wants_members(),
            with_groups=projection.wants_groups(),
        )
        headers = self._headers(rt, res, base_url)
        if condition is not None:
            condition.check_match(f"{rt.name} {id}", res.version)  # 412
            if condition.excluded(res.version):
                return Outcome(304, None, {"ETag": headers["ETag"]}, res.id)
        return Outcome(200, self.render(rt, res, base_url, projection), headers, res.id)

    def replace(
        self,
        ctx: TenantContext,
        rt: ResourceType,
        id: str,
        body: Any,
        base_url: str,
        projection: Projection | None = None,
        condition: Precondition | None = None,
    ) -> Outcome:
        body = _object(body)
        data = parse_resource(rt, body, ctx.compat, allowed_roles=ctx.allowed_roles)
        members = _members_of(data) if rt.name == "Group" else None

        def write(unknown: frozenset[str]) -> StoredResource:
            def updater(current: StoredResource) -> Change:
                keep_immutable(rt, current.data, data)
                delta = (
                    MemberDelta(replace=_known(members, unknown)) if members is not None else MemberDelta()
                )
                if "active" not in data and rt.name == "User":
                    return Change(data=bodies.default_active(data, current.data, ctx.compat), members=delta)
                return Change(data=data, members=delta)

            return self.store.update(
                ctx.id,
                rt.name,
                id,
                updater,
                precondition=condition,
                with_members=rt.name == "Group",
                with_groups=_wants_groups(rt, projection),
            )

        res = _skipping_unknown_members(ctx, write)
        return self._shown(200, rt, res, base_url, projection, data)

    def patch(
        self,
        ctx: TenantContext,
        rt: ResourceType,
        id: str,
        body: Any,
        base_url: str,
        projection: Projection | None = None,
        condition: Precondition | None = None,
    ) -> Outcome:
        ops = scim_patch.parse_patch_request(body, rt, ctx.compat)
        all_ops = ops
        needs_members = False
        delta = MemberDelta()
        if rt.name == "Group":
            ops, member_delta, needs_members = scim_patch.split_member_operations(rt, ops, ctx.compat)
            delta = member_delta

        no_content = rt.name == "Group" and ctx.compat.on("group_patch_no_content")

        request_returned = plan_for(rt).request_returned
        specified: Specified | None = None

        def write(unknown: frozenset[str]) -> StoredResource:
            def updater(current: StoredResource) -> Change:
                nonlocal specified
                data = scim_patch.apply_patch(
                    rt, current.data, ops, ctx.compat, allowed_roles=ctx.allowed_roles
                )
                if request_returned:  # what the PATCH names or changes is what it specified
                    named = ((op.path.path, op.value) for op in all_ops if op.path is not None)
                    specified = named_keys(named, changed_keys(rt, current.data, data))
                if needs_members:
                    members = current.members or ()

                    def computed(lookup: MemberLookup) -> MemberDelta:
                        # each operation sees the members it adds with the type they are shown with
                        full = scim_patch.apply_member_operations(
                            members, all_ops, rt, ctx.compat, lookup=lookup
                        )
                        return _known_delta(full, unknown)

                    return Change(data, computed)
                return Change(data, _known_delta(delta, unknown))

            return self.store.update(
                ctx.id,
                rt.name,
                id,
                updater,
                precondition=condition,
                with_members=needs_members
                or (
                    rt.name == "Group"
                    and not no_content
                    and (projection is None or projection.wants_members())
                ),
                with_groups=_wants_groups(rt, projection),
            )

        res = _skipping_unknown_members(ctx, write)
        headers = self._headers(rt, res, base_url)
        if no_content:
            return Outcome(204, None, headers, res.id)
        return Outcome(200, self.render(rt, res, base_url, projection, specified), headers, res.id)

    def delete(
        self, ctx: TenantContext, rt: ResourceType, id: str, condition: Precondition | None = None
    ) -> Outcome:
        self.store.delete(ctx.id, rt.name, id, precondition=condition)
        return Outcome(204)

    def search(self, ctx: TenantContext, rt: ResourceType, request: ListRequest, base_url: str) -> Outcome:
        if request.cursor is not None:
            return self._cursor_page(ctx, rt, request, request.cursor, base_url)
        total, _, resources, _, _ = self._page(self.store, ctx, rt, request, request.query, base_url)
        return Outcome(200, list_response(total, request.start_index, resources))

    def _page(
        self,
        reads: Reads,
        ctx: TenantContext,
        rt: ResourceType,
        request: ListRequest,
        query: Query,
        base_url: str,
    ) -> tuple[int, list[str], list[Body], bool, list[SortKey] | None]:
        """(totalResults, the ids, the representations, whether the page was cut short by its
        Users' groups: ``Page.cut``, each resource's position when ``query`` asks them:
        ``Page.positions``) of one page of ``query``, read with ``reads`` (the store, or a
        snapshot of it)."""
        if request.projection.only_ids(rt):  # what ``project`` would leave of each representation
            listing = reads.search_ids(ctx.id, rt.name, query)
            core = rt.schema.id
            ids = listing.ids
            return listing.total, ids, [{"schemas": [core], "id": id} for id in ids], False, listing.positions
        page = reads.search(ctx.id, rt.name, query)
        found = page.resources
        return (
            page.total,
            [r.id for r in found],
            [self.render(rt, r, base_url, request.projection) for r in found],
            page.cut,
            page.positions,
        )

    def _cursor_page(
        self, ctx: TenantContext, rt: ResourceType, request: ListRequest, cursor: Cursor, base_url: str
    ) -> Outcome:
        """A page of cursor-based pagination (RFC 9865; ``provisor.scim.cursor``): one more
        resource than ``count`` is read to know whether a next page exists. A page cut short by
        its Users' groups (``Page.cut``) has a next page too, which starts after its last
        resource."""
        query, count = request.query, request.query.count
        if query.sort_by is not None:  # the client's order, after the last resource returned
            return self._sorted_cursor_page(ctx, rt, request, cursor, base_url)
        # by id, after the last one returned
        keyed = query.filter if cursor.after is None else _after_id(query.filter, cursor.after)
        page = replace(
            query,
            filter=keyed,
            sort_by=_ID,
            descending=False,
            start_index=1,
            count=count + 1,
            with_total=cursor.after is None,  # after a key, the query's own total is read below
        )
        # after a key the page's own total counts only what follows it: the query's is read
        # too, in the page's snapshot, so totalResults counts what the page was read from
        with self.store.snapshot() as reads:
            total, ids, resources, cut, _ = self._page(reads, ctx, rt, request, page, base_url)
            if cursor.after is not None:
                total = self._page(reads, ctx, rt, request, replace(query, count=0), base_url)[0]
        following = Cursor(cursor.digest, after=ids[:count][-1] if ids else "")
        more = len(ids) > count or cut
        next_cursor = encode_cursor(following) if more else None
        return Outcome(200, list_response(total, None, resources[:count], next_cursor=next_cursor))

    def _sorted_cursor_page(
        self, ctx: TenantContext, rt: ResourceType, request: ListRequest, cursor: Cursor, base_url: str
    ) -> Outcome:
        """A cursor page of a sorted query, its ties broken by id (``Query.ties_by_id``): after
        the position of the previous page's last resource (its value of the sort and its id, as
        the store compares them), from the start, or at the offset of a cursor issued before
        sorted pages had positions. Its next cursor holds the position of its last resource."""
        query, count = request.query, request.query.count
        page = replace(
            query,
            ties_by_id=True,
            after=cursor.key,
            start_index=1 if cursor.key is not None else (cursor.offset or 0) + 1,
            count=count + 1,
        )
        total, ids, resources, cut, positions = self._page(self.store, ctx, rt, request, page, base_url)
        following = None
        if (len(ids) > count or cut) and ids and positions:
            last = positions[min(len(ids), count) - 1]
            following = encode_cursor(Cursor(cursor.digest, key=last))
        return Outcome(200, list_response(total, None, resources[:count], next_cursor=following))


def groups_json(groups: tuple[GroupRef, ...], base_url: str) -> list[dict[str, Any]]:
    """A User's ``groups`` as rendered (RFC 7643 section 4.1.2); ``display`` left out when null."""
    out: list[dict[str, Any]] = []
    for g in groups:
        item: dict[str, Any] = {"value": g.value, "$ref": f"{base_url}/Groups/{g.value}"}
        if g.display is not None:
            item["display"] = g.display
        item["type"] = g.type
        out.append(item)
    return out


def _wants_groups(rt: ResourceType, projection: Projection | None) -> bool:
    return rt.name == "User" and (projection is None or projection.wants_groups())


#: ``id``: the order of an unsorted cursor-paged query, on the store's unique index.
_ID = AttrPath(None, "id")


def _after_id(filter_: Filter | None, after: str) -> Filter:
    """``filter`` and ``id gt "<after>"``: what follows a cursor in id order."""
    keyed = Compare(_ID, CompareOp.GT, after)
    return keyed if filter_ is None else And(filter_, keyed)


def list_response(
    total: int,
    start_index: int | None,
    resources: Sequence[Body],
    *,
    next_cursor: str | None = None,
) -> dict[str, Any]:
    """A ListResponse (RFC 7644 section 3.4.2); ``Resources`` is present even when empty (Q14).

    A cursor-paged one (RFC 9865 section 2, ``start_index`` None) has no ``startIndex`` and a
    ``nextCursor`` on every page but the last.
    """
    body: dict[str, Any] = {"schemas": [LIST_RESPONSE], "totalResults": total}
    if start_index is not None:
        body["startIndex"] = start_index
    body["itemsPerPage"] = len(resources)
    body["Resources"] = resources
    if next_cursor is not None:
        body["nextCursor"] = next_cursor
    return body


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidSyntax("the request body must be a JSON object")
    return body
