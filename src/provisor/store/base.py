"""The store contract: what the server needs from persistence, independent of SQL.

Resources are kept as JSON-shaped dicts of their attributes (canonical names, extension attributes
nested under their schema URN), without ``id``, ``meta``, ``schemas`` or group ``members``: those
are columns and relations the store owns. Group membership is its own relation, changed by deltas
so that adding or removing k members costs O(k) whatever the group's size.

A User's ``groups`` (RFC 7643 section 4.1.2) is derived from that relation when read, never stored:
the groups the User is a member of, ``direct`` ones and ``indirect`` ones (reached only through
groups that are members of groups; a cycle of groups is walked once).

``version`` and ``lastModified`` move with every change of the representation, derived attributes
included (a weak ETag changes on every significant change, RFC 7232 section 2.1; ``meta.version``
is the ETag, RFC 7643 section 3.1): a User's when its ``groups`` change (it joins or leaves a
group; a group it is in, directly or through nesting, is renamed, deleted, or joins or leaves a
group), a Group's when the display it shows for a member changes (the member is renamed and no
display was sent for it). The store moves them in the transaction of the write that causes the
change, in O(what changed): adding k members touches those k (and the Users below the ones that
are groups), never the rest of the group; renaming or deleting a group touches every User in it,
all of whose ``groups`` change.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import orjson

from provisor.scim.cursor import SortKey as SortKey  # where a resource stands in a sorted listing
from provisor.scim.filter.ast import AttrPath, Filter

# Membership values are protocol data; the store keeps them in their own relation.
from provisor.scim.patch.members import Member as Member
from provisor.scim.patch.members import MemberDelta as MemberDelta
from provisor.scim.patch.members import MemberLookup as MemberLookup


class StoreError(Exception):
    """Root of the store's exceptions; ``server/errors.py`` translates them."""


class StoreBusy(StoreError):
    """Another writer held the database past the store's busy timeout: nothing was written, and
    the same write may succeed a moment later."""


class StoreFull(StoreError):
    """The database has no room left (its disk is full, or it reached a size limit): nothing
    was written, and writes fail until someone makes room."""


class StoreUnavailable(StoreError):
    """The database cannot be used as it is now: its file is gone, replaced, unreadable, damaged,
    or on a read-only file system (a statement failed so, or a readiness check found it:
    ``store/sql/database_file.py``). Nothing was written, and requests fail until an operator
    repairs it. ``orig`` is the database driver's own error, when one was raised."""

    def __init__(self, message: str, orig: BaseException | None = None) -> None:
        super().__init__(message)
        self.orig = orig


class UnusableDatabase(StoreError):
    """A database the store will not open as it is: of a kind it does not run on, another
    application's, or at a schema revision this code does not know. Nothing was written to it."""


class QueryTooComplex(StoreError):
    """The database refused a statement compiled from a client's filter as too deeply nested
    (SQLite's parser stack): the filter is refused, nothing was read or changed."""


class ResourceNotFound(StoreError):
    """No resource with that id in that tenant (or a referenced member does not exist)."""


class UniquenessViolation(StoreError):
    """A value that must be unique in the tenant (userName, case-insensitively) is taken."""

    def __init__(self, attribute: str, value: str) -> None:
        shown = value if len(value) <= 100 else f"{value[:100]}..."  # the message is the 409's detail
        super().__init__(f"{attribute} {shown!r} is already in use")
        self.attribute = attribute
        self.value = value


class VersionMismatch(StoreError):
    """A precondition on the resource's version (If-Match, If-None-Match) does not hold."""


@dataclass(frozen=True, slots=True)
class Precondition:
    """What a write or read requires of a resource's current version (RFC 7232 sections 3.1-3.2;
    RFC 7644 section 3.14): checked in the transaction that reads the resource, so no other write
    can come between the check and the change.

    ``match``: the versions If-Match lists, one of which must be current (None: no If-Match, or
    ``*``, which any existing resource meets; an empty set, only tags that are not ours, never
    holds). ``none_match``: the versions If-None-Match lists, none of which may be current;
    ``none_match_any`` is If-None-Match ``*``, which no existing resource meets.
    """

    match: frozenset[int] | None = None
    none_match: frozenset[int] = frozenset()
    none_match_any: bool = False

    def matched(self, version: int) -> bool:
        """If-Match holds for a resource at ``version`` (RFC 7232 section 3.1)."""
        return self.match is None or version in self.match

    def excluded(self, version: int) -> bool:
        """If-None-Match names ``version`` or is ``*`` (RFC 7232 section 3.2): a write must not go
        on (412), a read answers 304."""
        return self.none_match_any or version in self.none_match

    def check_match(self, what: str, version: int) -> None:
        """Raise VersionMismatch unless If-Match holds for ``what`` at ``version``."""
        if not self.matched(version):
            listed = ", ".join(f'W/"{v}"' for v in sorted(self.match or ())) or "no version of ours"
            raise VersionMismatch(f'{what} is at version W/"{version}"; If-Match names {listed}')

    def check(self, what: str, version: int) -> None:
        """Raise VersionMismatch unless ``what``, at ``version``, meets the precondition of a write."""
        self.check_match(what, version)
        if self.excluded(version):
            raise VersionMismatch(f'{what} is at version W/"{version}", which If-None-Match excludes')


class UnknownMember(StoreError):
    """A group member value that is not the id of a User or Group in the tenant."""

    def __init__(self, values: Sequence[str]) -> None:
        super().__init__("no such member: " + ", ".join(values))
        self.values = tuple(values)


class SelfMember(StoreError):
    """A group named among its own members."""

    def __init__(self, value: str) -> None:
        super().__init__(f"a group cannot be a member of itself ({value})")
        self.value = value


class TenantExists(StoreError):
    """A tenant with that name already exists."""


class TenantNotFound(StoreError):
    """No tenant with that name."""


class TenantDeleting(StoreError):
    """The tenant is being deleted (``Tenant.deleting``): it takes no new token or setting, and its
    name stays taken until the deletion is finished (``delete_tenant`` again)."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


class InvalidTenantName(StoreError):
    """A tenant name that is blank, too long, holds a control character or looks like a tenant id."""


#: The longest tenant name (the ``tenants.name`` column is ``VARCHAR(200)``).
TENANT_NAME_MAX = 200
_TENANT_ID_SHAPE = re.compile(r"[0-9a-fA-F]{32}")
_LINE_BREAKING = frozenset(("Cc", "Zl", "Zp"))


def check_tenant_name(name: str) -> None:
    """Raise InvalidTenantName unless ``name`` is 1-200 characters, not only whitespace, free of
    control characters and line separators, and not 32 hex digits (the shape of a tenant id, which
    ``tenant set`` and ``delete`` also accept in place of a name)."""
    if not name.strip():
        raise InvalidTenantName("the tenant name must not be empty or only whitespace")
    if len(name) > TENANT_NAME_MAX:
        raise InvalidTenantName(
            f"the tenant name must be at most {TENANT_NAME_MAX} characters, not {len(name)}"
        )
    if any(unicodedata.category(c) in _LINE_BREAKING for c in name):
        raise InvalidTenantName(
            f"the tenant name must not contain control characters (tab, newline...): {name!r}"
        )
    if _TENANT_ID_SHAPE.fullmatch(name):
        raise InvalidTenantName(
            f"the tenant name {name!r} has the shape of a tenant id (32 hexadecimal digits); choose another"
        )


class TokenNotFound(StoreError):
    """No Secret Token with that id."""


class SchemaExtensionExists(StoreError):
    """An extension schema with that URN (any case) is declared already."""


class RequiredExtensionMissing(StoreError):
    """A required extension cannot be declared while resources of its type exist: none carries it,
    and each would then refuse every write (an Entra disable included) until one added it."""

    def __init__(self, urn: str, resource_type: str, count: int) -> None:
        super().__init__(
            f"{count} stored {resource_type}(s) do not carry {urn}: declared required, it would make "
            f"every later write to them fail until a write gave them its required attributes; declare "
            f"it optional (without --required)"
        )
        self.count = count


class SchemaExtensionNotFound(StoreError):
    """No extension schema with that URN is declared."""


class SchemaExtensionInUse(StoreError):
    """Stored resources hold values of the extension schema being removed."""

    def __init__(self, urn: str, holders: int) -> None:
        super().__init__(
            f"{holders} stored resource(s) hold values of {urn}; removing the schema without removing "
            "them would leave values no schema declares (purge them with the schema, or keep it)"
        )
        self.urn = urn
        self.holders = holders


class SchemaExtensionRemoving(StoreError):
    """The extension schema's removal began and was not finished (its declaration is marked): it is
    in no registry, and its URN cannot be declared again until ``remove_schema_extension`` with
    ``purge`` finishes the removal."""

    def __init__(self, urn: str) -> None:
        super().__init__(f"the extension schema {urn} is being removed")
        self.urn = urn


class GroupRef(NamedTuple):
    """One group a User is a member of (RFC 7643 section 4.1.2 ``groups``): its id and displayName.

    ``type`` is ``"direct"``, or ``"indirect"`` for a group the User reaches only through nested
    groups (each group is listed once: direct when it is both). A NamedTuple rather
    than a frozen dataclass: it is built for every group of every User read, at a third the cost.
    """

    value: str
    display: str | None = None
    type: str = "direct"


class StoredResource:
    """A resource as stored. ``version`` is a counter that grows on every change (the ETag).

    ``data`` is the resource's canonical document (``provisor.scim.resources.document``). A store
    that keeps it as JSON text hands that text over as ``document_json`` and may leave ``data`` to
    be decoded from it on first use: a read that is only rendered (``render_json``) then never
    decodes it. Read-only by convention; equality compares the fields, ``data`` decoded.
    """

    __slots__ = (
        "_data",
        "created",
        "document_json",
        "groups",
        "id",
        "last_modified",
        "members",
        "resource_type",
        "version",
    )

    def __init__(
        self,
        id: str,
        resource_type: str,
        data: dict[str, Any] | None,
        created: datetime,
        last_modified: datetime,
        version: int,
        members: tuple[Member, ...] | None = None,
        groups: tuple[GroupRef, ...] | None = None,
        *,
        document_json: str | None = None,
    ) -> None:
        if data is None and document_json is None:
            raise ValueError("a StoredResource needs its data or its document's JSON text")
        self.id = id
        self.resource_type = resource_type
        self._data = data
        self.document_json = document_json
        self.created = created
        self.last_modified = last_modified
        self.version = version
        #: groups, when loaded
        self.members = members
        #: Users: the groups it is a member of, directly or not, in the order the groups were
        #: created, when loaded (``()`` for none); None when not loaded, and always for Groups.
        self.groups = groups

    @property
    def data(self) -> dict[str, Any]:
        data = self._data
        if data is None:
            assert self.document_json is not None
            data = self._data = orjson.loads(self.document_json)
        return data

    def _key(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.resource_type,
            self.data,
            self.created,
            self.last_modified,
            self.version,
            self.members,
            self.groups,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StoredResource):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable-looking data: not hashable, as before

    def __repr__(self) -> str:
        return (
            f"StoredResource(id={self.id!r}, resource_type={self.resource_type!r}, data={self.data!r}, "
            f"version={self.version!r}, members={self.members!r}, groups={self.groups!r})"
        )


#: A membership delta that depends on what member values name (a PATCH whose later operation
#: filters on the ``type`` of a member an earlier one added): the store calls it in the write's
#: transaction with a :data:`MemberLookup` over the tenant's Users and Groups.
DeltaFromLookup = Callable[[MemberLookup], MemberDelta]


@dataclass(frozen=True, slots=True)
class Change:
    """What an update callback returns: the new attribute dict and any membership delta (or the
    function that makes it, given what member values name)."""

    data: dict[str, Any]
    members: MemberDelta | DeltaFromLookup = field(default_factory=MemberDelta)


@dataclass(frozen=True, slots=True)
class Query:
    """A list/search request (RFC 7644 section 3.4.2); ``start_index`` is 1-based."""

    filter: Filter | None = None
    sort_by: AttrPath | None = None
    descending: bool = False
    start_index: int = 1
    count: int = 100
    with_members: bool = True
    #: Load each User's ``groups`` (ignored for other resource types).
    with_groups: bool = True
    #: Break ties of ``sort_by`` (equal values, and every resource without one) on ``id``, not on
    #: creation order, and tell each resource's :class:`SortKey` (``Page.positions``: the value
    #: the store sorts it by, a boolean as 0 or 1, a dateTime as the instant it keeps): what
    #: cursor-based pagination resumes from (``after``).
    ties_by_id: bool = False
    #: With ``sort_by`` and ``ties_by_id``: only the resources after this position in that order.
    after: SortKey | None = None
    #: Count every match for ``total``; without it ``total`` is only a lower bound (the rows
    #: before and on the page), for a caller that counts otherwise (a cursor page after a key).
    with_total: bool = True
    #: The most group references the Users of the page may carry together (their ``groups``,
    #: when ``with_groups``): the page ends at the User whose groups reach it, and is ``cut``
    #: when resources that match follow. At least one User is returned, whole. None: no limit.
    #: The same budget holds the members of a page of Groups (when ``with_members``).
    group_budget: int | None = None


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    resources: list[StoredResource]
    #: Fewer resources than the query's ``count`` because its ``group_budget`` was reached, and
    #: more follow: the next page starts after the last resource returned.
    cut: bool = False
    #: Each resource's position, for a query with ``sort_by`` and ``ties_by_id``; else None.
    positions: list[SortKey] | None = None


@dataclass(frozen=True, slots=True)
class IdPage:
    total: int
    ids: list[str]
    #: As ``Page.positions``.
    positions: list[SortKey] | None = None


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    settings: Mapping[str, Any]
    created: datetime
    #: when its deletion began, while it is being deleted (``TenantStore.delete_tenant``)
    deleting: datetime | None = None
    #: why its stored settings cannot be read (a hand-edited database: not JSON, or JSON that is
    #: no object), with ``settings`` then empty; such a tenant accepts no request until they are
    #: set again (``provisor tenant set``), rather than run without its allowed networks
    unreadable: str | None = None


@dataclass(frozen=True, slots=True)
class DeletionProgress:
    """How far a tenant's deletion is: the resources deleted so far of those it held when this
    run of the deletion began."""

    tenant: Tenant
    deleted: int
    total: int


@dataclass(frozen=True, slots=True)
class PurgeProgress:
    """How far the purge of an extension's values is: the resources of its type checked so far of
    those stored when this run of the purge began, and how many of them held values of it."""

    urn: str
    checked: int
    total: int
    purged: int


@dataclass(frozen=True, slots=True)
class Trace:
    """One request a tenant sent while tracing was on, as answered (``provisor tenant trace``).

    ``target`` is the path with its query string; the bodies are JSON text as sent and answered,
    secrets redacted and cut at the server's limit (``provisor.server.tracing``). No header is kept.
    """

    seq: int
    tenant_id: str
    time: datetime
    method: str
    target: str
    status: int
    request: str | None
    response: str | None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A Secret Token's record; the token itself is never stored, only its hash."""

    id: str
    tenant_id: str
    label: str
    prefix: str
    created: datetime
    expires: datetime | None
    revoked: datetime | None
    last_used: datetime | None = None
    #: The stored SHA-256 of the token (filled by ``token_by_hash`` only, for the constant-time check).
    hash: bytes = field(default=b"", repr=False, compare=False)


Updater = Callable[[StoredResource], Change]


class Reads(Protocol):
    """The searches of a :meth:`ResourceStore.snapshot`: as the store's, all in one state."""

    def search(self, tenant_id: str, resource_type: str, query: Query) -> Page: ...

    def search_ids(self, tenant_id: str, resource_type: str, query: Query) -> IdPage: ...


class ResourceStore(Protocol):
    """Users and Groups of one or many tenants. Every method is scoped by ``tenant_id``."""

    def create(
        self, tenant_id: str, resource_type: str, data: dict[str, Any], members: Sequence[Member] = ()
    ) -> StoredResource: ...

    def get(
        self,
        tenant_id: str,
        resource_type: str,
        id: str,
        *,
        with_members: bool = True,
        with_groups: bool = True,
    ) -> StoredResource:
        """One resource; a Group's ``members`` / a User's ``groups`` are loaded only when asked."""
        ...

    def search(self, tenant_id: str, resource_type: str, query: Query) -> Page: ...

    def search_ids(self, tenant_id: str, resource_type: str, query: Query) -> IdPage:
        """``search`` reading only ids: the same matches, order and ``total``, no documents."""
        ...

    def update(
        self,
        tenant_id: str,
        resource_type: str,
        id: str,
        updater: Updater,
        *,
        precondition: Precondition | None = None,
        with_members: bool = False,
        with_groups: bool = False,
    ) -> StoredResource:
        """Read, apply ``updater`` and write in one transaction; all or nothing.

        Raises ResourceNotFound, VersionMismatch (``precondition`` given and not met),
        UniquenessViolation, UnknownMember. The resource given to ``updater`` and the one returned
        have a Group's members loaded only when ``with_members`` is true, a User's groups only when
        ``with_groups`` is true.
        """
        ...

    def snapshot(self) -> AbstractContextManager[Reads]:
        """``with store.snapshot() as reads:`` searches that all see the database in one state,
        whatever is written meanwhile: for an answer that takes several (a search across resource
        types, a cursor page and the total of its query), so its ``totalResults`` counts what its
        pages were read from. Each of the store's own methods reads one state already."""
        ...

    def delete(
        self, tenant_id: str, resource_type: str, id: str, *, precondition: Precondition | None = None
    ) -> None: ...

    def batch(self) -> AbstractContextManager[None]:
        """Group commit: the writes made in the block share one transaction, each isolated in its
        own savepoint (a failing write rolls back alone and raises); one commit at the end."""
        ...


class TenantStore(Protocol):
    """Tenants and their Secret Tokens (stored as hashes only)."""

    def create_tenant(self, name: str, settings: Mapping[str, Any] | None = None) -> Tenant: ...

    def get_tenant(self, name_or_id: str) -> Tenant: ...

    def list_tenants(self) -> list[Tenant]: ...

    def delete_tenant(
        self, name_or_id: str, *, progress: Callable[[DeletionProgress], None] | None = None
    ) -> None:
        """Delete a tenant and everything in it. Its tokens go first, so no server accepts them
        a second later; the rest may go in steps that let other writers in between. A deletion
        that was interrupted leaves the tenant marked (``Tenant.deleting``); calling this again
        finishes it. ``progress`` hears after each step."""
        ...

    def update_settings(
        self, name_or_id: str, settings: Mapping[str, Any], replacing: Collection[str] = ()
    ) -> Tenant:
        """Merge ``settings`` into the tenant's, atomically: a key replaces the stored value,
        except that a mapping merges into a stored mapping (one ``compat`` switch changes, the
        others stay) unless the key is in ``replacing``; a None value removes a key."""
        ...

    def add_token(
        self, tenant_id: str, token_hash: bytes, prefix: str, label: str, expires: datetime | None
    ) -> TokenInfo: ...

    def token_by_hash(self, token_hash: bytes) -> tuple[TokenInfo, Tenant] | None: ...

    def list_tokens(self, tenant_id: str) -> list[TokenInfo]: ...

    def touch_token(self, token_id: str, when: datetime, *, wait: bool = True) -> None:
        """Record that a token was used at ``when`` (``TokenInfo.last_used``); unknown ids are
        ignored. Without ``wait``: StoreBusy at once, rather than wait, while another writer holds
        the database."""
        ...

    def revoke_token(self, token_id: str) -> TokenInfo: ...
