"""Finding the object to provision on demand in the job's source (entra-behaviour.md 2.11): by id,
userPrincipalName (users) or displayName (groups), without reading the source as a cycle would.

A SCIM source answers ``GET /Users/{id}`` and ``filter=userName eq "..."`` queries; a CSV or
JSON-lines source is scanned, with a throw-away snapshot so the job's own (its watermark) is left
alone.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import httpx

from provisor.engine.jobs.model import Job, SourceType
from provisor.engine.matching import filter_text
from provisor.engine.model import ObjectKind, SourceError, SourceObject

__all__ = [
    "AmbiguousObject",
    "Directory",
    "FileDirectory",
    "ObjectNotFound",
    "OnDemandError",
    "ScimDirectory",
    "directory_for",
]


class OnDemandError(Exception):
    """The object cannot be provisioned on demand; the message says why (no secrets)."""


class ObjectNotFound(OnDemandError):
    """No source object has that id, userPrincipalName or displayName."""


class AmbiguousObject(OnDemandError):
    """More than one source object answers to the name given."""


class Directory(Protocol):
    """Looks objects up in the job's source without reading it as a cycle would."""

    def find(self, kind: ObjectKind, key: str) -> SourceObject:
        """By anchor, or by userPrincipalName (users) / displayName (groups)."""
        ...

    def groups_named(self, names: Iterable[str]) -> list[SourceObject]:
        """The groups with these displayNames (case-insensitive)."""
        ...

    def users(self, anchors: Iterable[str]) -> dict[str, SourceObject]:
        """These users, by anchor; anchors the source does not have are missing."""
        ...

    def close(self) -> None: ...


_ENDPOINT = {ObjectKind.USER: "/Users", ObjectKind.GROUP: "/Groups"}
_NAME = {ObjectKind.USER: ("userName", "userPrincipalName"), ObjectKind.GROUP: ("displayName", "displayName")}


class ScimDirectory:
    """A SCIM source: ``GET /Users/{id}`` or ``filter=userName eq "..."`` (``displayName`` for
    groups); never a full read."""

    def __init__(self, job: Job, *, client: httpx.Client | None = None) -> None:
        from provisor.engine.sources.scim import ScimSource

        config = job.source
        if not config.url or config.token is None:
            raise OnDemandError("a scim source needs a url and a token")
        self._base = config.url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {config.token.reveal()}",
            "Accept": "application/scim+json",
        }
        self._client = client or httpx.Client(timeout=30.0)
        self._source = ScimSource.from_config(config, client=self._client)
        self._nickname = (config.option("nickname_from_external_id", "true") or "true").lower() != "false"

    def close(self) -> None:
        self._client.close()

    def _by_id(self, kind: ObjectKind, anchor: str) -> SourceObject | None:
        try:
            return self._source.get(kind, anchor)
        except SourceError as exc:
            if "(HTTP 400)" in str(exc):
                return None  # an id the server cannot parse is no id of it
            raise

    def _by_name(self, kind: ObjectKind, name: str) -> list[SourceObject]:
        from provisor.engine.sources.scim_normalise import to_source_object

        attribute = _NAME[kind][0]
        params = {"filter": filter_text(attribute, name)}
        if kind is ObjectKind.USER:
            params["excludedAttributes"] = "groups"
        try:
            response = self._client.get(self._base + _ENDPOINT[kind], params=params, headers=self._headers)
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot reach the SCIM source at {self._base}: {type(exc).__name__}") from exc
        if response.status_code in (401, 403):
            raise SourceError(f"the SCIM source refused the token ({response.status_code})")
        if response.status_code != 200:
            raise SourceError(f"GET {self._base}{_ENDPOINT[kind]} answered {response.status_code}")
        resources = response.json().get("Resources") or []
        return [
            to_source_object(kind, r, nickname_from_external_id=self._nickname)
            for r in resources
            if isinstance(r, Mapping)
        ]

    def find(self, kind: ObjectKind, key: str) -> SourceObject:
        by_name = "@" in key if kind is ObjectKind.USER else False
        if not by_name:
            found = self._by_id(kind, key)
            if found is not None:
                return found
        return _one(kind, key, self._by_name(kind, key))

    def groups_named(self, names: Iterable[str]) -> list[SourceObject]:
        out: list[SourceObject] = []
        for name in sorted(set(names)):
            out.extend(
                g
                for g in self._by_name(ObjectKind.GROUP, name)
                if str(g.get("displayName")).lower() == name.lower()
            )
        return out

    def users(self, anchors: Iterable[str]) -> dict[str, SourceObject]:
        out: dict[str, SourceObject] = {}
        for anchor in anchors:
            found = self._source.get(ObjectKind.USER, anchor)
            if found is not None:
                out[anchor] = found
        return out


class FileDirectory:
    """A CSV or JSON-lines source: a scan of the file, with a throw-away snapshot so that the
    job's own snapshot (its watermark) is not touched."""

    def __init__(self, job: Job) -> None:
        from provisor.engine.sources import files

        self._tmp = tempfile.TemporaryDirectory(prefix="provisor-ondemand-")
        config = replace(job.source, options=tuple((k, v) for k, v in job.source.options if k != "snapshot"))
        self._source = files.from_config(config, snapshot_path=Path(self._tmp.name) / "scan.db")

    def close(self) -> None:
        self._tmp.cleanup()

    def _scan(self, keep: Callable[[SourceObject], bool]) -> list[SourceObject]:
        return [o for o in self._source.read_all().objects if not o.deleted and keep(o)]

    def find(self, kind: ObjectKind, key: str) -> SourceObject:
        name = _NAME[kind][1]
        low = key.lower()
        hits = self._scan(
            lambda o: o.kind is kind and (o.anchor == key or str(o.get(name) or "").lower() == low)
        )
        exact = [o for o in hits if o.anchor == key]
        return exact[0] if exact else _one(kind, key, hits)

    def groups_named(self, names: Iterable[str]) -> list[SourceObject]:
        wanted = {n.lower() for n in names}
        return self._scan(
            lambda o: o.kind is ObjectKind.GROUP and str(o.get("displayName") or "").lower() in wanted
        )

    def users(self, anchors: Iterable[str]) -> dict[str, SourceObject]:
        wanted = set(anchors)
        return {o.anchor: o for o in self._scan(lambda o: o.kind is ObjectKind.USER and o.anchor in wanted)}


def _one(kind: ObjectKind, key: str, found: Sequence[SourceObject]) -> SourceObject:
    what = "user" if kind is ObjectKind.USER else "group"
    if not found:
        by = "id or userPrincipalName" if kind is ObjectKind.USER else "id or displayName"
        raise ObjectNotFound(f"no {what} with {by} {key!r} in the source")
    if len(found) > 1:
        raise AmbiguousObject(f"{len(found)} {what}s answer to {key!r}; give the id instead")
    return found[0]


def directory_for(job: Job) -> Directory:
    """The lookup for the job's source (SCIM: queries; files: a scan)."""
    if job.source.type is SourceType.SCIM:
        return ScimDirectory(job)
    return FileDirectory(job)
