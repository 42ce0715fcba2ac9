"""Filter normalisers: what Entra ID sends in a ``filter`` that a strict RFC 7644 section 3.4.2.2
reading refuses. The filter parser takes each switch as a flag (``parse_filter(...,
string_booleans=...)``), which the server sets from the tenant's :class:`CompatSettings`.

| switch              | quirk | here                    |
|---------------------|-------|-------------------------|
| ``string_booleans`` | Q2    | :func:`quoted_boolean`  |

(``unquoted_filter_values``, Q11, and ``extension_dot_names``, Q15, change the grammar itself and
live in :mod:`provisor.scim.filter.parser`.)
"""

from __future__ import annotations

_BOOLEANS = {"true": True, "false": False}


def quoted_boolean(text: str) -> bool | None:
    """Q2 (``string_booleans``) in filters: the boolean a quoted ``"True"``/``"false"`` (any case)
    compared with a boolean attribute means, or None for any other string.

    Entra writes booleans as strings (entra-behaviour.md Q2) and targets the app role
    ``roles[primary eq "True"].value`` (sections 3.3 and 5); it matches on such an attribute with
    the same spelling (``roles[primary eq "True"].value eq "User"``). RFC 7644 section 3.4.2.2
    compares a boolean with the literal ``true`` or ``false``.
    """
    return _BOOLEANS.get(text.lower())
