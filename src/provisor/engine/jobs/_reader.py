"""Typed, position-aware reads from a composed YAML node tree (the job file's mechanics).

The loader walks PyYAML *nodes* (``yaml.compose``), not constructed Python objects, so every
value keeps its line and column for :class:`JobFileError`, duplicate and unknown keys are
caught, and scalars are typed by the field that reads them (``name: yes`` is the string "yes";
``concurrency: ${N:-8}`` is the integer 8). ``${VAR}`` is expanded in every scalar value.

Errors quote the value as written in the file (``${APP_TOKEN}``, never its expansion), with any
URL user-info masked; secret fields are never quoted.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import NoReturn, overload
from urllib.parse import urlsplit

import yaml

from provisor.engine.jobs.errors import JobFileError
from provisor.engine.jobs.interpolate import InterpolationError, interpolate
from provisor.engine.jobs.model import Secret

__all__ = ["Reader", "Section"]

_NULL_TAG = "tag:yaml.org,2002:null"
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_TRUE = frozenset({"true", "yes", "on"})
_FALSE = frozenset({"false", "no", "off"})
_USERINFO = re.compile(r"//[^/@\s]*@")


def describe(node: yaml.Node) -> str:
    """What a node is, for "must be a ... (got ...)" messages."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    kind = node.tag.rsplit(":", 1)[-1]
    return {"int": "a number", "float": "a number", "bool": "a boolean", "null": "null"}.get(kind, "a string")


def shown(node: yaml.Node) -> str:
    """The scalar as written, quoted, URL passwords masked: safe to put in a message."""
    return repr(_USERINFO.sub("//***@", str(node.value)))


def normalise(word: str) -> str:
    """Choice matching key: case-insensitive, blind to spaces, underscores and hyphens."""
    return re.sub(r"[\s_\-]+", "", word).casefold()


class Reader:
    """Shared state of one parse: the file's display name and the environment, and what a variable
    that is not set reads as, given its name and the key it is in (``loader.parse_job``)."""

    def __init__(
        self, source_name: str, env: Mapping[str, str], unset: Callable[[str, str], str | None] | None = None
    ) -> None:
        self.source_name = source_name
        self.env = env
        self.unset = unset

    def fail(self, node: yaml.Node | None, problem: str) -> NoReturn:
        """Raise a :class:`JobFileError` at ``node``'s position (or the file, if ``None``)."""
        if node is None:
            raise JobFileError(self.source_name, problem)
        mark = node.start_mark
        raise JobFileError(self.source_name, problem, mark.line + 1, mark.column + 1)

    def text(self, node: yaml.Node, path: str) -> str | None:
        """A scalar's text with ``${...}`` expanded; ``None`` for YAML null."""
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, f"{path} must be a string (got {describe(node)})")
        if node.tag == _NULL_TAG:
            return None
        raw = str(node.value)
        try:
            unset = self.unset
            return interpolate(raw, self.env, None if unset is None else lambda name: unset(name, path))
        except InterpolationError as exc:
            line, column = _position_in_scalar(node, raw, exc.offset)
            raise JobFileError(self.source_name, exc.problem, line, column) from None

    def section(
        self, node: yaml.Node, path: str, keys: Collection[str] | None, key_node: yaml.Node | None = None
    ) -> Section:
        """``node`` as a mapping whose keys must be among ``keys`` (any key if ``None``);
        ``key_node`` is the key that introduced it (missing keys are reported on its line)."""
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{path or 'the job file'} must be a mapping (got {describe(node)})")
        return Section(self, node, path, keys, key_node)

    def items(self, node: yaml.Node, path: str) -> list[yaml.Node]:
        """``node`` as a list (a single scalar is not a list)."""
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, f"{path} must be a list (got {describe(node)})")
        return list(node.value)


class Section:
    """A YAML mapping at a dotted ``path`` with known keys; typed accessors per field."""

    def __init__(
        self,
        reader: Reader,
        node: yaml.MappingNode,
        path: str,
        keys: Collection[str] | None,
        key_node: yaml.Node | None = None,
    ) -> None:
        self.reader = reader
        self.node = node
        self.anchor = key_node or node
        self.path = path
        self._entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                reader.fail(key_node, f"{self._name('')}keys must be plain strings")
            if key == "<<":
                reader.fail(key_node, "YAML merge keys (<<) are not supported")
            if keys is not None and key not in keys:
                reader.fail(key_node, self._unknown(key, keys))
            if key in self._entries:
                first = self._entries[key][0].start_mark.line + 1
                reader.fail(key_node, f"duplicate key {self._name(key)} (first at line {first})")
            self._entries[key] = (key_node, value_node)

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path and key else self.path or key

    def _unknown(self, key: str, keys: Collection[str]) -> str:
        folded = {k.casefold(): k for k in keys}
        close = difflib.get_close_matches(key.casefold(), list(folded), n=1, cutoff=0.6)
        hint = f"; did you mean {folded[close[0]]!r}?" if close else f" (expected one of {', '.join(keys)})"
        where = f" in {self.path}" if self.path else ""
        return f"unknown key {key!r}{where}{hint}"

    def name(self, key: str) -> str:
        """The dotted path of ``key`` for messages."""
        return self._name(key)

    def value_node(self, key: str) -> yaml.Node | None:
        """The value node of ``key``; ``None`` when absent or YAML null."""
        entry = self._entries.get(key)
        if entry is None or (isinstance(entry[1], yaml.ScalarNode) and entry[1].tag == _NULL_TAG):
            return None
        return entry[1]

    def has(self, key: str) -> bool:
        return self.value_node(key) is not None

    def require(self, key: str) -> yaml.Node:
        """The value node of a required key."""
        node = self.value_node(key)
        if node is None:
            entry = self._entries.get(key)
            self.reader.fail(entry[0] if entry else self.anchor, f"{self._name(key)} is required")
        return node

    def fail(self, key: str, problem: str) -> NoReturn:
        """Fail at ``key``: its value if a scalar, else the key's own line (or the mapping's)."""
        node = self.value_node(key)
        if node is None or not isinstance(node, yaml.ScalarNode):
            entry = self._entries.get(key)
            node = entry[0] if entry else self.anchor
        self.reader.fail(node, problem)

    def section(self, key: str, keys: Collection[str] | None) -> Section | None:
        node = self.value_node(key)
        if node is None:
            return None
        return self.reader.section(node, self._name(key), keys, self._entries[key][0])

    def require_section(self, key: str, keys: Collection[str] | None) -> Section:
        """A required nested mapping."""
        return self.reader.section(self.require(key), self._name(key), keys, self._entries[key][0])

    def items(self, key: str) -> list[yaml.Node]:
        node = self.value_node(key)
        return [] if node is None else self.reader.items(node, self._name(key))

    def string(self, key: str, *, required: bool = False, allow_empty: bool = False) -> str | None:
        node = self.require(key) if required else self.value_node(key)
        if node is None:
            return None
        value = self.reader.text(node, self._name(key))
        if value is None or (not allow_empty and not value.strip()):
            self.reader.fail(node, f"{self._name(key)} must not be empty")
        return value

    def secret(self, key: str, *, required: bool = False) -> Secret | None:
        value = self.string(key, required=required)
        return None if value is None else Secret(value)

    def integer(self, key: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        node = self.value_node(key)
        if node is None:
            return default
        text = self.reader.text(node, self._name(key)) or ""
        if _INTEGER.fullmatch(text.strip()) is None:
            self.reader.fail(node, f"{self._name(key)} must be an integer (got {shown(node)})")
        value = int(text)
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            self.reader.fail(node, f"{self._name(key)} must be {bound} (got {value})")
        return value

    def number(self, key: str, default: float, *, maximum: float) -> float:
        node = self.value_node(key)
        if node is None:
            return default
        text = (self.reader.text(node, self._name(key)) or "").strip()
        if _NUMBER.fullmatch(text) is None or not 0 < float(text) <= maximum:
            self.reader.fail(node, f"{self._name(key)} must be a number above 0 and at most {maximum:g}")
        return float(text)

    def boolean(self, key: str, default: bool) -> bool:
        node = self.value_node(key)
        if node is None:
            return default
        text = (self.reader.text(node, self._name(key)) or "").strip().casefold()
        if text not in _TRUE | _FALSE:
            self.reader.fail(node, f"{self._name(key)} must be true or false (got {shown(node)})")
        return text in _TRUE

    @overload
    def choice(self, key: str, options: Sequence[str], default: str) -> str: ...
    @overload
    def choice(self, key: str, options: Sequence[str], default: None = None) -> str | None: ...
    def choice(self, key: str, options: Sequence[str], default: str | None = None) -> str | None:
        """One of ``options`` (canonical spelling), matched as :func:`normalise` does."""
        node = self.value_node(key)
        if node is None:
            return default
        text = self.reader.text(node, self._name(key)) or ""
        for option in options:
            if normalise(option) == normalise(text):
                return option
        self.reader.fail(node, f"{self._name(key)} must be one of {', '.join(options)} (got {shown(node)})")


def _position_in_scalar(node: yaml.ScalarNode, raw: str, offset: int) -> tuple[int, int | None]:
    """1-based line and column of ``raw[offset]`` inside ``node``: exact for single-line
    scalars, the line only for literal blocks (``|``), the scalar's start for folded ones."""
    line, column = node.start_mark.line + 1, node.start_mark.column + 1
    if node.style == "|":
        return line + 1 + raw[:offset].count("\n"), None
    if "\n" in raw[:offset] or node.style == ">":
        return line, column
    return line, column + offset + (1 if node.style in ("'", '"') else 0)


def url_problem(url: str, schemes: Collection[str]) -> str | None:
    """Why ``url`` is not an absolute URL with one of ``schemes`` and a host, or ``None``."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.casefold() not in schemes:
        return f"must be a {'/'.join(sorted(schemes))} URL"
    if not parts.hostname or any(c.isspace() for c in url):
        return "must be a URL with a host name"
    return None
