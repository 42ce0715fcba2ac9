"""Any SCIM 2.0 service provider as the source directory (a Provisor tenant included).

Synchronous httpx: every read is a generator the engine drives (in a worker thread if its loop is
async). Reads stream one page at a time; nothing but the current page is held, except the id set
of one resource type while hard deletions are detected (docs/sources.md, "SCIM source").

Paging (RFC 7644 section 3.4.2.4). ``paging="keyset"`` asks ``sortBy=id`` and, after the first
page, ``filter=id gt "<last id>"`` with ``startIndex=1``: inserts and deletes during the read
shift nothing. ``paging="offset"`` walks ``startIndex`` in the server's own order, re-reading
``totalResults`` on every page and skipping ids repeated from the previous page. ``"auto"`` (the
default) tries keyset on the first page and falls back to offset when the server rejects the
parameters or does not return ids in ascending order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import httpx
import orjson

from provisor.engine.jobs.model import SourceConfig
from provisor.engine.model import (
    ChangeSet,
    KnownAnchors,
    ObjectKind,
    SourceCapabilities,
    SourceError,
    SourceObject,
)
from provisor.engine.sources import scim_watermark as wm
from provisor.engine.sources.scim_normalise import to_source_object

Paging = Literal["auto", "keyset", "offset"]
_ENDPOINTS = ((ObjectKind.USER, "/Users"), (ObjectKind.GROUP, "/Groups"))
#: A user's ``groups`` is computed by the server and unused here (membership comes from groups).
_EXTRA: Mapping[ObjectKind, Mapping[str, str]] = {
    ObjectKind.USER: {"excludedAttributes": "groups"},
    ObjectKind.GROUP: {},
}


class _Rejected(SourceError):
    """HTTP 400: the server refused a query parameter (sortBy, a filter...)."""


class ScimSource:
    """A SCIM 2.0 directory behind the :class:`~provisor.engine.model.Source` port."""

    capabilities = SourceCapabilities(full_read=True, changes=True, test=True, needs_known_anchors=True)

    def __init__(
        self,
        url: str,
        token: str,
        *,
        page_size: int = 500,
        id_page_size: int | None = None,
        client: httpx.Client | None = None,
        paging: Paging = "auto",
        overlap_seconds: float = 1.0,
        seen_cap: int = 5000,
        timeout_seconds: float = 30.0,
        nickname_from_external_id: bool = True,
    ) -> None:
        if page_size < 1 or (id_page_size is not None and id_page_size < 1):
            raise ValueError("page_size and id_page_size must be at least 1")
        self._base = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/scim+json"}
        self._client = client if client is not None else httpx.Client(timeout=timeout_seconds)
        self._page_size = page_size
        # Deletion detection lists every id (``attributes=id``): small rows, so bigger pages (fewer
        # round trips, and fewer keyset queries the server answers by scanning what remains).
        self._id_page_size = id_page_size if id_page_size is not None else max(page_size, 1000)
        self._paging: Paging = paging
        self._mode: Paging | None = None if paging == "auto" else paging
        self._overlap = timedelta(seconds=overlap_seconds)
        self._seen_cap = seen_cap
        self._nickname_from_external_id = nickname_from_external_id

    @classmethod
    def from_config(cls, config: SourceConfig, *, client: httpx.Client | None = None) -> ScimSource:
        """A source from a job's ``source:`` block; options ``page_size``, ``id_page_size`` (the
        deletion-detection id listing's pages: 1000, or ``page_size`` when only that is set),
        ``paging``, ``overlap_seconds`` and ``nickname_from_external_id`` are read from its text
        values."""
        if not config.url or config.token is None:
            raise SourceError("a scim source needs a url and a token")
        paging: Paging
        match config.option("paging", "auto"):
            case "auto" | "keyset" | "offset" as chosen:
                paging = chosen
            case other:
                raise SourceError(f"paging must be auto, keyset or offset, not {other!r}")
        try:
            page_size = int(config.option("page_size", "500") or "500")
            id_pages = config.option("id_page_size", None)
            # a page_size set for a server that allows no more is the id listing's too
            id_page_size = (
                int(id_pages) if id_pages else (page_size if config.option("page_size", None) else None)
            )
            overlap = float(config.option("overlap_seconds", "1") or "1")
        except ValueError as exc:
            raise SourceError(f"scim source option: {exc}") from None
        nickname = (config.option("nickname_from_external_id", "true") or "true").lower() != "false"
        return cls(
            config.url,
            config.token.reveal(),
            page_size=page_size,
            id_page_size=id_page_size,
            client=client,
            paging=paging,
            overlap_seconds=overlap,
            nickname_from_external_id=nickname,
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    # -- the Source port ---------------------------------------------------------------------

    def test(self) -> None:
        """One ``GET /Users?count=1``: raises SourceError on a refused token, a wrong URL, an
        unreachable host or a reply that is not a SCIM ListResponse."""
        body = self._get("/Users", {"startIndex": "1", "count": "1"}, None)
        if "totalResults" not in body and "Resources" not in body:
            raise SourceError(f"{self._base}/Users did not answer with a SCIM ListResponse")

    def read_all(self) -> ChangeSet:
        """Every user, then every group, streamed page by page.

        ``watermark`` (known up front) makes the next incremental read re-read everything;
        ``final_watermark()`` once the objects are exhausted is the settled one.
        """
        window = wm.Window(self._overlap, self._seen_cap)
        objects = self._read(window, None, frozenset(), None)
        return ChangeSet(objects=objects, watermark=wm.encode(None, []), settle=lambda: window.settle(None))

    def read_changes(self, watermark: str, known_anchors: KnownAnchors | None = None) -> ChangeSet:
        """Users then groups modified since ``watermark``; after each kind, the anchors in
        ``known_anchors(kind)`` the server no longer has, as ``deleted`` objects.

        Without ``known_anchors`` hard deletions go unreported (SCIM has no tombstones).
        """
        since, seen = wm.decode(watermark)
        window = wm.Window(self._overlap, self._seen_cap)
        objects = self._read(window, since, seen, known_anchors)
        return ChangeSet(objects=objects, watermark=watermark, settle=lambda: window.settle(since))

    # -- reading -----------------------------------------------------------------------------

    def _read(
        self,
        window: wm.Window,
        since: datetime | None,
        skip: frozenset[str],
        known: KnownAnchors | None,
    ) -> Iterator[SourceObject]:
        changed = None if since is None else f'meta.lastModified ge "{wm.format_instant(since)}"'
        nickname = self._nickname_from_external_id
        for kind, endpoint in _ENDPOINTS:
            for resource in self._list(endpoint, changed, _EXTRA[kind], window):
                anchor = _id_of(resource, endpoint)
                meta = resource.get("meta")
                meta = meta if isinstance(meta, Mapping) else {}
                modified_text = meta.get("lastModified")
                version = meta.get("version")
                key = wm.version_key(kind, anchor, str(version if version is not None else modified_text))
                window.observe(key, wm.parse_instant(modified_text))
                if key in skip:
                    continue
                yield to_source_object(kind, resource, nickname_from_external_id=nickname)
            if known is not None:
                yield from self.deletions(kind, known(kind))
        window.done = True

    def get(self, kind: ObjectKind, anchor: str) -> SourceObject | None:
        """One object by anchor (``GET /Users/{id}``), or None when the source no longer has it.

        The engine uses it in incremental cycles for users whose scope changed through a group's
        membership while the user itself did not change (2.5)."""
        endpoint = dict(_ENDPOINTS)[kind]
        path = f"{endpoint}/{quote(anchor, safe='')}"
        try:
            response = self._client.get(self._base + path, params=_EXTRA[kind], headers=self._headers)
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot reach the SCIM source at {self._base}: {type(exc).__name__}") from exc
        if response.status_code == 404:
            return None
        self._check(response, path)
        return to_source_object(
            kind, self._object(response, path), nickname_from_external_id=self._nickname_from_external_id
        )

    def deletions(self, kind: ObjectKind, known: Iterable[str]) -> list[SourceObject]:
        """The ``known`` anchors of ``kind`` the server no longer has: missing from a paged
        ``attributes=id`` listing, each confirmed by a ``GET {endpoint}/{id}`` answering 404 (a
        paging anomaly never becomes a deletion). Nothing known, nothing listed.

        It may run in a worker thread beside the rest of a cycle (the engine starts the users'
        listing first and needs its answer only when it deprovisions).

        The listing pages by ``startIndex`` in the server's own order, never ``sortBy=id``: a
        server answers an unsorted page by walking its index, whereas a page sorted by id after a
        cursor makes it sort what remains (100 pages of a 100,000-user directory took 8 s). An id
        that an insert or delete shifts past a page boundary only costs its confirming GET.
        """
        anchors = list(known)
        if not anchors:
            return []
        endpoint = dict(_ENDPOINTS)[kind]
        listing = self._offset(endpoint, None, {"attributes": "id"}, None, self._id_page_size)
        present = {_id_of(r, endpoint) for r in listing}
        return [
            SourceObject(kind=kind, anchor=anchor, deleted=True)
            for anchor in anchors
            if anchor not in present and self._gone(endpoint, anchor)
        ]

    def _gone(self, endpoint: str, anchor: str) -> bool:
        path = f"{endpoint}/{quote(anchor, safe='')}"
        try:
            response = self._client.get(self._base + path, params={"attributes": "id"}, headers=self._headers)
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot reach the SCIM source at {self._base}: {type(exc).__name__}") from exc
        if response.status_code == 404:
            return True
        self._check(response, path)
        return False

    def _list(
        self,
        endpoint: str,
        changed: str | None,
        extra: Mapping[str, str],
        window: wm.Window | None,
        page_size: int | None = None,
    ) -> Iterator[Mapping[str, Any]]:
        page = page_size or self._page_size
        if self._mode in (None, "keyset"):
            yield from self._keyset(endpoint, changed, extra, window, page)
        else:
            yield from self._offset(endpoint, changed, extra, window, page)

    def _keyset(
        self,
        endpoint: str,
        changed: str | None,
        extra: Mapping[str, str],
        window: wm.Window | None,
        page_size: int,
    ) -> Iterator[Mapping[str, Any]]:
        cursor: str | None = None
        while True:
            probing = self._mode is None
            after = None if cursor is None else f"id gt {json.dumps(cursor)}"
            params = {**extra, "sortBy": "id", "sortOrder": "ascending", "startIndex": "1"}
            params["count"] = str(page_size)
            if query := _and(changed, after):
                params["filter"] = query
            try:
                body = self._get(endpoint, params, window)
            except _Rejected:
                if not probing:
                    raise
                self._mode = "offset"
                yield from self._offset(endpoint, changed, extra, window, page_size)
                return
            resources = _resources(body, endpoint)
            ids = [_id_of(r, endpoint) for r in resources]
            if not _ascending(ids, cursor):
                if probing:
                    self._mode = "offset"
                    yield from self._offset(endpoint, changed, extra, window, page_size)
                    return
                raise SourceError(
                    f"{self._base}{endpoint} does not page by id consistently (sortBy=id with "
                    "'id gt'); set the source option paging: offset"
                )
            self._mode = "keyset"
            yield from resources
            total = body.get("totalResults")
            if not resources or (isinstance(total, int) and len(resources) >= total):
                return
            cursor = ids[-1]

    def _offset(
        self,
        endpoint: str,
        changed: str | None,
        extra: Mapping[str, str],
        window: wm.Window | None,
        page_size: int,
    ) -> Iterator[Mapping[str, Any]]:
        start = 1
        previous: set[str] = set()
        while True:
            params = {**extra, "startIndex": str(start), "count": str(page_size)}
            if changed:
                params["filter"] = changed
            body = self._get(endpoint, params, window)
            resources = _resources(body, endpoint)
            current: set[str] = set()
            for resource in resources:
                rid = _id_of(resource, endpoint)
                current.add(rid)
                if rid not in previous:  # an insert before the cursor shifts a row onto this page
                    yield resource
            if not resources:
                return
            start += len(resources)
            total = body.get("totalResults")
            if isinstance(total, int) and start > total:
                return
            previous = current

    # -- HTTP --------------------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, str], window: wm.Window | None) -> Mapping[str, Any]:
        try:
            response = self._client.get(self._base + path, params=params, headers=self._headers)
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot reach the SCIM source at {self._base}: {type(exc).__name__}") from exc
        self._check(response, path)
        if window is not None:
            window.saw_date(response.headers.get("date"))
        return self._object(response, path)

    def _object(self, response: httpx.Response, path: str) -> dict[str, Any]:
        """The body as a JSON object (orjson: a 20,000-member group is ~2 MB of JSON)."""
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise SourceError(f"{self._base}{path} did not answer with JSON") from None
        if not isinstance(body, dict):
            raise SourceError(f"{self._base}{path} did not answer with a JSON object")
        return body

    def _check(self, response: httpx.Response, path: str) -> None:
        status = response.status_code
        if status < 400:
            return
        where = f"{self._base}{path}"
        if status in (401, 403):
            raise SourceError(f"the SCIM source at {self._base} refused the token (HTTP {status})")
        if status == 404:
            raise SourceError(f"no SCIM endpoint at {where} (HTTP 404): check the source url")
        detail = _detail(response)
        if status == 400:
            raise _Rejected(f"{where} rejected the request (HTTP 400){detail}")
        raise SourceError(f"{where} failed (HTTP {status}){detail}")


def _detail(response: httpx.Response) -> str:
    """``: <detail>`` from a SCIM Error body (RFC 7644 section 3.12), shortened, else nothing."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    return f": {detail[:200]}" if isinstance(detail, str) and detail else ""


def _resources(body: Mapping[str, Any], endpoint: str) -> list[Mapping[str, Any]]:
    resources = body.get("Resources", [])
    if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
        raise SourceError(f"{endpoint}: Resources is not a list of objects")
    return resources


def _id_of(resource: Mapping[str, Any], endpoint: str) -> str:
    rid = resource.get("id")
    if not isinstance(rid, str) or not rid:
        raise SourceError(f"{endpoint}: a resource without an id")
    return rid


def _ascending(ids: list[str], cursor: str | None) -> bool:
    previous = cursor
    for rid in ids:
        if previous is not None and rid <= previous:
            return False
        previous = rid
    return True


def _and(left: str | None, right: str | None) -> str | None:
    if left and right:
        return f"({left}) and ({right})"
    return left or right
