"""Target attribute paths as Entra writes them in mappings (entra-behaviour.md 1.3, 1.4, 3.1).

Four forms, which are also the PATCH paths of Entra's default dialect (1.4)::

    displayName                                   plain attribute
    name.givenName                                sub-attribute of a complex attribute
    emails[type eq "work"].value                  sub-attribute of one element of a multi-valued
                                                  attribute, chosen by a value filter
    urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department
                                                  an extension attribute: full URN + ":" + path

:func:`read_path` finds a path's value in a resource as the target returned it (names matched
case-insensitively, RFC 7643 section 2.1); :func:`write_path` builds the resource Entra POSTs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = [
    "BOOLEAN_TARGETS",
    "TargetPath",
    "as_bool",
    "get_key",
    "parse_target_path",
    "read_path",
    "write_path",
]

#: Target attributes of type Boolean (section 5: ``active``); values are normalised to bool.
BOOLEAN_TARGETS = frozenset({"active"})

_NAME = r"[A-Za-z$][\w$-]*"
_PATH = re.compile(
    rf'(?:(?P<urn>urn:[^\[\]"\s]+):)?(?P<attr>{_NAME})'
    rf'(?:\[\s*(?P<fattr>{_NAME})\s+eq\s+"(?P<fvalue>[^"]*)"\s*\])?'
    rf"(?:\.(?P<sub>{_NAME}))?",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class TargetPath:
    """A parsed target path; ``text`` is the path as written."""

    text: str
    urn: str | None
    attribute: str
    filter_attribute: str | None = None
    filter_value: str | None = None
    sub: str | None = None

    @property
    def boolean(self) -> bool:
        """The target is Boolean (``active``)."""
        return self.urn is None and self.sub is None and self.attribute.casefold() in BOOLEAN_TARGETS

    def selects(self, element: Any) -> bool:
        """Whether a multi-valued ``element`` is the one this path's filter chooses.

        ``type`` values compare case-insensitively (RFC 7643 caseExact false); ``primary``
        compares as a boolean, ``"True"`` and ``true`` alike (1.3: Clarizen's role path).
        """
        if not isinstance(element, Mapping) or self.filter_attribute is None:
            return False
        have = get_key(element, self.filter_attribute)
        want = self.filter_value or ""
        if isinstance(have, bool) or want.casefold() in ("true", "false"):
            return as_bool(have) == as_bool(want)
        return isinstance(have, str) and have.casefold() == want.casefold()

    def filter_literal(self) -> Any:
        """The filter value as an element attribute: a bool for ``primary``, else the string."""
        want = self.filter_value or ""
        return as_bool(want) if want.casefold() in ("true", "false") else want


@lru_cache(maxsize=1024)
def parse_target_path(text: str) -> TargetPath:
    """Parse ``text``; raises ValueError for anything that is not one of the four forms."""
    m = _PATH.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a target attribute path")
    return TargetPath(
        text=text,
        urn=m.group("urn"),
        attribute=m.group("attr"),
        filter_attribute=m.group("fattr"),
        filter_value=m.group("fvalue"),
        sub=m.group("sub"),
    )


def as_bool(value: Any) -> bool | None:
    """A bool from a bool or ``"True"``/``"False"`` in any case (1.5: Entra sends strings);
    None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().casefold() in ("true", "false"):
        return value.strip().casefold() == "true"
    return None


def get_key(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]`` with the name matched case-insensitively (an exact spelling wins)."""
    if name in obj:
        return obj[name]
    folded = name.casefold()
    for key, value in obj.items():
        if isinstance(key, str) and key.casefold() == folded:
            return value
    return None


def read_path(resource: Mapping[str, Any], path: TargetPath) -> Any:
    """The value at ``path`` in ``resource``; None when any step is missing."""
    container: Any = resource
    if path.urn is not None:
        container = get_key(resource, path.urn)
        if not isinstance(container, Mapping):
            return None
    value = get_key(container, path.attribute)
    if path.filter_attribute is not None:
        if not isinstance(value, list):
            return None
        chosen = next((e for e in value if path.selects(e)), None)
        if chosen is None:
            return None
        return get_key(chosen, path.sub or "value")
    if path.sub is not None:
        return get_key(value, path.sub) if isinstance(value, Mapping) else None
    return value


def write_path(resource: dict[str, Any], path: TargetPath, value: Any) -> None:
    """Set ``path`` to ``value`` in ``resource``, creating the extension object, the complex
    attribute or the filtered element (carrying the filter attribute, e.g. ``type``) on the way."""
    container = resource
    if path.urn is not None:
        container = resource.setdefault(path.urn, {})
    if path.filter_attribute is not None:
        elements = container.setdefault(path.attribute, [])
        chosen = next((e for e in elements if path.selects(e)), None)
        if chosen is None:
            chosen = {path.filter_attribute: path.filter_literal()}
            elements.append(chosen)
        chosen[path.sub or "value"] = value
    elif path.sub is not None:
        container.setdefault(path.attribute, {})[path.sub] = value
    else:
        container[path.attribute] = value
