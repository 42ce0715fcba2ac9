"""The engine's vocabulary: source objects as Entra names them (entra-behaviour.md sections 2 and 3).

Every source connector normalises what it reads to these shapes, so that Entra's mapping
templates and expressions (``[userPrincipalName]``, ``[mailNickname]``, ``[IsSoftDeleted]``...)
work verbatim whatever the directory is.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class ObjectKind(enum.StrEnum):
    USER = "user"
    GROUP = "group"


@dataclass(frozen=True, slots=True)
class SourceObject:
    """One user or group of the source directory.

    ``anchor`` is the source's stable id (Entra's objectId): the key of the object connection.
    ``attributes`` uses Entra's source attribute names; a user's ``manager`` is the manager's
    anchor, a group's ``members`` the anchors of its direct members. ``deleted`` marks a hard
    delete seen by an incremental read (the object then carries only its anchor).
    """

    kind: ObjectKind
    anchor: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    deleted: bool = False

    def get(self, name: str) -> Any:
        """An attribute by name, case-insensitively (an exact spelling wins)."""
        if name in self.attributes:
            return self.attributes[name]
        low = name.lower()
        for key, value in self.attributes.items():
            if key.lower() == low:
                return value
        return None


@dataclass(frozen=True, slots=True)
class SourceCapabilities:
    """What a connector can do (issue 3, "sources"): a full read, changes since a watermark, a test."""

    full_read: bool = True
    changes: bool = False
    test: bool = True
    #: ``read_changes`` reports hard deletions only when given ``known_anchors`` (a SCIM directory
    #: has no tombstones: a deletion is an anchor the engine knows that the source no longer lists).
    needs_known_anchors: bool = False


#: The anchors the engine holds object connections for, per kind (sorted order not required).
#: Called lazily by ``read_changes``, at most once per kind, after that kind's changes are yielded.
KnownAnchors = Callable[[ObjectKind], Iterable[str]]


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """Objects changed (or deleted) since a watermark, and the watermark to keep once all are done.

    ``watermark`` is known before the read and always safe to keep. A source whose best watermark
    depends on what it read (e.g. the latest ``meta.lastModified`` seen) also gives ``settle``;
    the engine persists :meth:`final_watermark` once ``objects`` is exhausted.
    """

    objects: Iterator[SourceObject]
    watermark: str
    settle: Callable[[], str] | None = None

    def final_watermark(self) -> str:
        """The watermark to persist after every object has been processed."""
        return self.watermark if self.settle is None else self.settle()


class Source(Protocol):
    """A source directory connector. Reads stream: memory never grows with the directory's size."""

    capabilities: SourceCapabilities

    def test(self) -> None:
        """Raise SourceError when the source cannot be read (credentials, URL, file)."""
        ...

    def read_all(self) -> ChangeSet:
        """Every user, then every group; the watermark to start incremental reads from."""
        ...

    def read_changes(self, watermark: str, known_anchors: KnownAnchors | None = None) -> ChangeSet:
        """What changed since ``watermark`` (users, then groups), deletions included.

        ``known_anchors`` lets a source without tombstones report hard deletions (see
        :attr:`SourceCapabilities.needs_known_anchors`); sources that track deletions themselves
        ignore it. A watermark is only ever passed back once the engine has finished the cycle
        that received it, so a source may treat that call as the commit of the previous read.
        """
        ...


@runtime_checkable
class LooksUpOne(Protocol):
    """A source that reads one object by anchor (a SCIM directory: ``GET /Users/{id}``)."""

    def get(self, kind: ObjectKind, anchor: str) -> SourceObject | None:
        """The object, or None when the source no longer has it."""
        ...


@runtime_checkable
class LooksUpMany(Protocol):
    """A source that reads many objects by anchor at once (a file, in one pass)."""

    def get_many(self, kind: ObjectKind, anchors: Iterable[str]) -> dict[str, SourceObject]:
        """The objects it still has, by anchor."""
        ...


@runtime_checkable
class ListsDeletions(Protocol):
    """A source without tombstones that finds deleted objects by listing what it still has; an
    incremental cycle runs it beside the change read (``read_changes`` then lists no users)."""

    def deletions(self, kind: ObjectKind, known: Iterable[str]) -> list[SourceObject]:
        """The ``known`` anchors of ``kind`` the source no longer has, as deleted objects."""
        ...


class SourceError(Exception):
    """The source cannot be read; the message says why, without secrets."""
