"""HR exports as the source directory: CSV (:class:`CsvSource`) and JSON lines (:class:`JsonlSource`).

One object per row (line). Columns (keys) are Entra source attribute names already
(docs/sources.md, "File sources"): the anchor column (``objectId`` unless configured), ``objectType``
(``user`` or ``group``, default ``user``), ``userPrincipalName`` for users, ``displayName`` for
groups; ``members`` / ``memberGroups`` hold ``;``-separated anchors (a JSON list in JSONL);
``accountEnabled`` and ``securityEnabled`` are ``true``/``false``. Empty cells are absent values.

Changes are found by diffing content hashes against the snapshot of the last completed cycle
(:mod:`.snapshot`); the watermark is that snapshot's id. ``get`` / ``get_many`` answer objects by
anchor from the file as it is now, for the engine's escrow retries and for users whose scope
changed through a group while their own row did not (entra-behaviour.md 2.5, 2.8).

A malformed row stops the read with a SourceError naming the file, the line and the problem:
skipping it instead would make a known object look deleted and deprovision it.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import orjson

from provisor.engine.jobs.model import SourceConfig, SourceType
from provisor.engine.model import (
    ChangeSet,
    KnownAnchors,
    ObjectKind,
    SourceCapabilities,
    SourceError,
    SourceObject,
)
from provisor.engine.sources._entra import finish_group, finish_user
from provisor.engine.sources.snapshot import DuplicateAnchor, SnapshotStore

BOOLEANS = frozenset({"accountEnabled", "securityEnabled"})
LISTS = frozenset({"members", "memberGroups"})
#: Computed by the connector (entra-behaviour.md 2.6): a value in the file is ignored.
DERIVED = frozenset({"IsSoftDeleted"})


class _RowError(Exception):
    """A problem with one row; the source adds the file and line."""


class FileSource:
    """What CSV and JSON-lines sources share: two streaming passes (users, then groups) over one
    open file, hashing each row and diffing against the last committed snapshot."""

    capabilities = SourceCapabilities(full_read=True, changes=True, test=True)

    def __init__(self, path: Path | str, *, snapshot_path: Path | str, anchor: str = "objectId") -> None:
        self.path = Path(path)
        self.anchor = anchor
        self._snapshots = SnapshotStore(Path(snapshot_path))

    # -- the Source port ---------------------------------------------------------------------

    def test(self) -> None:
        """The file exists, is readable and names the required columns."""
        with self._open() as handle:
            self._check_header(handle)

    def read_all(self) -> ChangeSet:
        """Every row: users, then groups. Starts a snapshot that a later ``read_changes`` with
        this watermark diffs against (once the engine has finished this cycle)."""
        watermark, _, new = self._snapshots.begin(None)
        return ChangeSet(objects=self._read(None, new), watermark=watermark)

    def read_changes(self, watermark: str, known_anchors: KnownAnchors | None = None) -> ChangeSet:
        """Rows added or changed since the snapshot ``watermark`` names, and its anchors missing
        from the file as deleted objects. ``known_anchors`` is not needed (the snapshot knows)."""
        new_watermark, base, new = self._snapshots.begin(watermark)
        return ChangeSet(objects=self._read(base, new), watermark=new_watermark)

    def get(self, kind: ObjectKind, anchor: str) -> SourceObject | None:
        """The ``kind`` with this anchor in the file as it is now, or None when the file no longer
        has it (as a ``kind``: a row whose type changed is gone, as ``read_changes`` says)."""
        return self.get_many(kind, (anchor,)).get(anchor)

    def get_many(self, kind: ObjectKind, anchors: Iterable[str]) -> dict[str, SourceObject]:
        """The objects of ``kind`` among ``anchors``, by anchor, in one streaming pass over the
        file as it is now, which stops once every anchor is found; anchors the file no longer has
        are left out. Only the rows asked for are normalised (a malformed one raises SourceError
        with its line, as a read does); memory holds the answers only. The snapshot is untouched."""
        wanted = set(anchors)
        found: dict[str, SourceObject] = {}
        if not wanted:
            return found
        with self._open() as handle:
            for line, raw in self._rows(handle):
                anchor = _anchor_of(raw.get(self.anchor))
                if anchor is None or anchor not in wanted:
                    continue
                wanted.discard(anchor)  # an anchor is unique in the file: its first row is it
                obj = self._object(raw, line)
                if obj.kind is kind:
                    found[anchor] = obj
                if not wanted:
                    break
        return found

    # -- reading -----------------------------------------------------------------------------

    def _open(self) -> IO[str]:
        try:
            return self.path.open(encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror or exc}") from None

    def _read(self, base: int | None, new: int) -> Iterator[SourceObject]:
        writer = self._snapshots.writer(base, new)
        try:
            with self._open() as handle:
                for kind in (ObjectKind.USER, ObjectKind.GROUP):
                    handle.seek(0)
                    for line, raw in self._rows(handle):
                        obj = self._object(raw, line)
                        if obj.kind is not kind:
                            continue
                        digest = _digest(obj)
                        try:
                            changed = writer.record(kind, obj.anchor, digest, line)
                        except DuplicateAnchor as dup:
                            problem = f"{self.anchor} {obj.anchor!r} repeats line {dup.line}"
                            raise self._error(line, problem) from None
                        if changed:
                            yield obj
                    for anchor in writer.missing(kind):
                        yield SourceObject(kind=kind, anchor=anchor, deleted=True)
            writer.complete()
        finally:
            writer.close()

    def _object(self, raw: Mapping[str, Any], line: int) -> SourceObject:
        try:
            return self._normalise(raw)
        except _RowError as exc:
            raise self._error(line, str(exc)) from None

    def _normalise(self, raw: Mapping[str, Any]) -> SourceObject:
        anchor = _anchor_of(raw.get(self.anchor))
        if anchor is None:
            raise _RowError(f"no {self.anchor} (the anchor)")
        kind_text = raw.get("objectType") or "user"
        if not isinstance(kind_text, str) or kind_text.strip().lower() not in ("user", "group"):
            raise _RowError(f"objectType must be user or group, not {kind_text!r}")
        kind = ObjectKind(kind_text.strip().lower())
        attrs: dict[str, Any] = {}
        for name, value in raw.items():
            if name in ("objectType", *DERIVED):
                continue
            converted = _value(name, value)
            if converted is not None:
                attrs[name] = converted
        attrs["objectId"] = anchor
        if kind is ObjectKind.USER:
            if not attrs.get("userPrincipalName"):
                raise _RowError("a user needs a userPrincipalName")
            present = sorted(name for name in LISTS if attrs.get(name))
            if present:
                raise _RowError(f"{present[0]} is a group column, and this row is a user")
            for name in LISTS:
                attrs.pop(name, None)
            return SourceObject(ObjectKind.USER, anchor, finish_user(attrs))
        if not attrs.get("displayName"):
            raise _RowError("a group needs a displayName")
        return SourceObject(ObjectKind.GROUP, anchor, finish_group(attrs))

    def _error(self, line: int, problem: str) -> SourceError:
        return SourceError(f"{self.path}, line {line}: {problem}")

    # -- format-specific ---------------------------------------------------------------------

    def _rows(self, handle: IO[str]) -> Iterator[tuple[int, Mapping[str, Any]]]:
        """``(first line number, fields)`` per object, in file order."""
        raise NotImplementedError

    def _check_header(self, handle: IO[str]) -> None:
        raise NotImplementedError


def _anchor_of(value: Any) -> str | None:
    """A row's anchor cell or JSON value as the anchor (a JSON number as text); None when absent."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def _value(name: str, value: Any) -> Any:
    """A cell or JSON value as the attribute value; None when absent."""
    if value is None or value == "":
        return None
    if name in BOOLEANS:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise _RowError(f"{name} must be true or false, not {value!r}")
    if name in LISTS:
        items = value.split(";") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise _RowError(f"{name} must be ;-separated anchors (a list of strings in JSON)")
        return [i.strip() for i in items if i.strip()]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise _RowError(f"{name} must be a text value, not {type(value).__name__}")
    return value


def _digest(obj: SourceObject) -> str:
    text = json.dumps([obj.kind, obj.attributes], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class CsvSource(FileSource):
    """A CSV file with a header row (RFC 4180; a UTF-8 BOM is allowed), ``delimiter`` configurable."""

    def __init__(
        self,
        path: Path | str,
        *,
        snapshot_path: Path | str,
        anchor: str = "objectId",
        delimiter: str = ",",
    ) -> None:
        super().__init__(path, snapshot_path=snapshot_path, anchor=anchor)
        if len(delimiter) != 1:
            raise ValueError("the delimiter must be one character")
        self.delimiter = delimiter

    def _header(self, reader: Any) -> list[str]:
        try:
            header = next(reader)
        except StopIteration:
            raise self._error(1, "the file is empty: a header row is required") from None
        names = [name.strip() for name in header]
        problems = [n for n in names if not n]
        if problems:
            raise self._error(1, "the header has an empty column name")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise self._error(1, f"the header repeats the column {repeated[0]}")
        if self.anchor not in names:
            raise self._error(1, f"the header has no {self.anchor} column (the anchor)")
        if "userPrincipalName" not in names and "displayName" not in names:
            raise self._error(1, "the header needs userPrincipalName (users) or displayName (groups)")
        return names

    def _check_header(self, handle: IO[str]) -> None:
        try:
            self._header(csv.reader(handle, delimiter=self.delimiter))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise self._error(1, str(exc)) from None

    def _rows(self, handle: IO[str]) -> Iterator[tuple[int, Mapping[str, Any]]]:
        reader = csv.reader(handle, delimiter=self.delimiter)
        line = 1
        try:
            names = self._header(reader)
            end = reader.line_num
            for row in reader:
                line, end = end + 1, reader.line_num
                if not row or row == [""]:
                    continue
                if len(row) != len(names):
                    raise self._error(line, f"expected {len(names)} fields, found {len(row)}")
                yield line, {name: cell.strip() for name, cell in zip(names, row, strict=True)}
        except (csv.Error, UnicodeDecodeError) as exc:
            raise self._error(line, str(exc)) from None


class JsonlSource(FileSource):
    """JSON lines: one JSON object per line, keys are Entra names; blank lines are skipped."""

    def _check_header(self, handle: IO[str]) -> None:
        for _, fields in self._rows(handle):
            if self.anchor not in fields:
                raise self._error(1, f"the first object has no {self.anchor} (the anchor)")
            return

    def _rows(self, handle: IO[str]) -> Iterator[tuple[int, Mapping[str, Any]]]:
        line = 0
        try:
            for line, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    # orjson, not json: it refuses half a surrogate pair ("\ud800"), text no
                    # target could be sent (UTF-8 cannot hold it)
                    fields = orjson.loads(text)
                except orjson.JSONDecodeError as exc:
                    raise self._error(line, f"not JSON: {exc}") from None
                if not isinstance(fields, dict):
                    raise self._error(line, "each line must be a JSON object")
                yield line, fields
        except UnicodeDecodeError as exc:
            raise self._error(line + 1, str(exc)) from None


def from_config(config: SourceConfig, *, snapshot_path: Path) -> FileSource:
    """A file source from a job's ``source:`` block (options ``anchor``, ``delimiter`` and
    ``snapshot``, which overrides ``snapshot_path``, the composition root's default)."""
    if config.path is None:
        raise SourceError(f"a {config.type} source needs a path")
    snapshot = Path(config.option("snapshot") or snapshot_path)
    anchor = config.option("anchor", "objectId") or "objectId"
    if config.type is SourceType.CSV:
        delimiter = config.option("delimiter", ",") or ","
        return CsvSource(config.path, snapshot_path=snapshot, anchor=anchor, delimiter=delimiter)
    if config.type is SourceType.JSONL:
        return JsonlSource(config.path, snapshot_path=snapshot, anchor=anchor)
    raise SourceError(f"{config.type} is not a file source")
