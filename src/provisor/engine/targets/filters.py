"""The only filters Entra writes: ``<attrPath> eq <value>`` (entra-behaviour.md 1.1, 1.3, Q11).

Values are written as RFC 7644 section 3.4.2.2 compValues: strings are JSON strings, so ``"`` and
``\\`` (and control characters) are escaped; booleans are ``true``/``false``, numbers bare, ``None``
is ``null``. Entra itself does not support special characters in matching values (1.1 "KNOWN"); we
escape instead of failing the object.
"""

from __future__ import annotations

import json
import re

__all__ = ["eq_filter", "quote_value"]

FilterValue = str | bool | int | float | None
#: An attribute path, a full-URN one, or a value path like ``emails[type eq "work"].value`` (Q11).
_PATH = re.compile(r"[A-Za-z0-9:._$-]+(\[[^\[\]]+\](\.[A-Za-z0-9_$-]+)?)?")


def quote_value(value: FilterValue) -> str:
    """``value`` as a filter compValue (RFC 7644 3.4.2.2)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False)


def eq_filter(attribute_path: str, value: FilterValue) -> str:
    """``<attribute_path> eq <value>``, e.g. ``userName eq "alice@contoso.com"`` (1.3 step 1)."""
    if not _PATH.fullmatch(attribute_path):
        raise ValueError(f"not an attribute path: {attribute_path!r}")
    return f"{attribute_path} eq {quote_value(value)}"
