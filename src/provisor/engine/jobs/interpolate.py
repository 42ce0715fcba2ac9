"""``${VAR}`` and ``${VAR:-default}`` in job-file values, read from a given environment mapping.

* ``${VAR}``: the variable's value; unset is an error (an empty value is allowed).
* ``${VAR:-default}``: the default when the variable is unset *or empty* (shell semantics).
* ``$${`` is a literal ``${``; any other ``$`` is literal, so secrets containing ``$`` survive.
* A default ends at the first ``}`` and cannot itself hold a ``${...}`` reference.

Pure: the environment is an argument, never ``os.environ``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

__all__ = ["InterpolationError", "interpolate"]

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(ValueError):
    """A reference that cannot be expanded; ``offset`` is its index in the raw text."""

    def __init__(self, problem: str, offset: int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.offset = offset


def interpolate(text: str, env: Mapping[str, str], unset: Callable[[str], str | None] | None = None) -> str:
    """``text`` with every ``${...}`` reference replaced from ``env``; a variable that is unset and
    has no default reads as ``unset(name)`` when that gives a value (a command that uses none of
    the job's secrets), else is an error.

    :raises InterpolationError: for an unset variable, an invalid name or an unterminated ``${``.
    """
    if "$" not in text:
        return text
    parts: list[str] = []
    end = 0
    for match in _TOKEN.finditer(text):
        parts.append(text[end : match.start()])
        end = match.end()
        if match.group(0) == "$${":
            parts.append("${")
            continue
        body = match.group(1)
        if body is None:
            raise InterpolationError("unterminated ${ (expected ${NAME} or ${NAME:-default})", match.start())
        name, has_default, default = body.partition(":-")
        if _NAME.fullmatch(name) is None:
            raise InterpolationError(
                f"invalid variable reference ${{{name}}} (expected ${{NAME}} or ${{NAME:-default}})",
                match.start(),
            )
        if "${" in default:
            raise InterpolationError("nested ${...} in a default is not supported", match.start())
        value = env.get(name)
        if has_default and not value:
            value = default
        if value is None and unset is not None:
            value = unset(name)
        if value is None:
            raise InterpolationError(f"${{{name}}} is not set in the environment", match.start())
        parts.append(value)
    parts.append(text[end:])
    return "".join(parts)
