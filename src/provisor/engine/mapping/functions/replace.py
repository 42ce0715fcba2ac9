"""Replace and its five modes (entra-behaviour.md section 3.3), with .NET regex dialect support.

``Replace(source, oldValue, regexPattern, regexGroupName, replacementValue,
replacementAttributeName, template)``; an argument is "given" when it is not null/omitted. The
mode is chosen from the given arguments, regex modes first:

1. regexPattern + regexGroupName + replacementAttributeName (no replacementValue): if source has a
   value return it, else apply the pattern to replacementAttributeName's value and return the
   group (null when it does not match).
2. regexPattern + regexGroupName + replacementValue: replace only that group in every match.
3. regexPattern + replacementValue: regex replace-all; replacementValue may use .NET
   substitutions ``$1``, ``${name}``, ``$$``, ``$&``, ``$```, ``$'``, ``$_``.
4. oldValue + template: every oldValue in template becomes the source value.
5. oldValue + replacementValue: literal, case-sensitive replace-all.

Patterns use .NET syntax; the named-group forms ``(?<name>..)``, ``(?'name'..)`` and ``\\k<name>``
are translated to Python's. Everything is case-sensitive.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from provisor.engine.mapping.context import EvalContext
from provisor.engine.mapping.errors import FunctionError
from provisor.engine.mapping.functions.spec import FunctionSpec, eager
from provisor.engine.mapping.values import Value, to_text

__all__ = ["SPECS", "expand_replacement", "translate_pattern"]


def translate_pattern(pattern: str) -> str:
    """A .NET regex as a Python one (named groups and named back-references)."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            end = pattern.find(">", i)
            if not in_class and pattern.startswith("\\k<", i) and end > 0:
                out.append(f"(?P={pattern[i + 3 : end]})")
                i = end + 1
            else:
                out.append(pattern[i : i + 2])
                i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern.startswith("[^]", i) or pattern.startswith("[]", i):
                close = i + (3 if pattern[i + 1] == "^" else 2)
                out.append(pattern[i:close])
                i = close
                continue
        elif pattern.startswith("(?<", i) and pattern[i + 3 : i + 4] not in ("=", "!"):
            out.append("(?P<")
            i += 3
            continue
        elif pattern.startswith("(?'", i):
            end = pattern.find("'", i + 3)
            if end > 0:
                out.append(f"(?P<{pattern[i + 3 : end]}>")
                i = end + 1
                continue
        out.append(c)
        i += 1
    return "".join(out)


def _group(m: re.Match[str], ref: str) -> str | None:
    """The text of group ``ref`` (number or name), "" if it did not take part, None if no such group."""
    key: int | str = int(ref) if ref.isdigit() else ref
    try:
        return m.group(key) or ""
    except (IndexError, re.error):
        return None


def expand_replacement(template: str, m: re.Match[str]) -> str:
    """.NET ``Regex.Replace`` substitutions; an unknown group reference stays literal, as in .NET."""
    out: list[str] = []
    i = 0
    while i < len(template):
        c = template[i]
        nxt = template[i + 1 : i + 2]
        if c != "$" or not nxt:
            out.append(c)
            i += 1
            continue
        specials = {
            "$": "$",
            "&": m.group(0),
            "`": m.string[: m.start()],
            "'": m.string[m.end() :],
            "_": m.string,
        }
        if nxt in specials:
            out.append(specials[nxt])
            i += 2
            continue
        if nxt == "{":
            end = template.find("}", i)
            text = _group(m, template[i + 2 : end]) if end > 0 else None
            if text is not None:
                out.append(text)
                i = end + 1
                continue
        elif nxt.isdigit():
            j = i + 1
            while j < len(template) and template[j].isdigit():
                j += 1
            # the longest run of digits that names a group, as .NET does
            for k in range(j, i + 1, -1):
                text = _group(m, template[i + 1 : k])
                if text is not None:
                    out.append(text)
                    i = k
                    break
            else:
                out.append(c)
                i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(translate_pattern(pattern))
    except re.error as exc:
        raise FunctionError(f"invalid regexPattern {pattern!r}: {exc}") from None


def _replace_group(regex: re.Pattern[str], group: str, source: str, replacement: str) -> str:
    if group not in regex.groupindex and not (group.isdigit() and int(group) <= regex.groups):
        raise FunctionError(f"regexPattern has no group named {group!r}")
    key: int | str = int(group) if group.isdigit() else group
    out: list[str] = []
    last = 0
    for m in regex.finditer(source):
        start, end = m.span(key)
        if start < 0:
            continue
        out.append(source[last:start])
        out.append(expand_replacement(replacement, m))
        last = end
    out.append(source[last:])
    return "".join(out)


def _replace(args: Sequence[Value], ctx: EvalContext) -> Value:
    source, old, pattern, group, replacement, other, template = (to_text(a) for a in args)
    if pattern is not None:
        regex = _compile(pattern)
        if group is not None and replacement is None and other is not None:
            if source:
                return source
            found = regex.search(other)
            return None if found is None else _group(found, group)
        if replacement is None:
            raise FunctionError(
                "regexPattern needs replacementValue (or regexGroupName and replacementAttributeName)"
            )
        if source is None:
            return None
        if group is not None:
            return _replace_group(regex, group, source, replacement)
        return regex.sub(lambda m: expand_replacement(replacement, m), source)
    if old is not None:
        if old == "":
            raise FunctionError("oldValue must not be empty")
        if template is not None:
            return None if source is None else template.replace(old, source)
        if replacement is None:
            raise FunctionError("oldValue needs replacementValue or template")
        return None if source is None else source.replace(old, replacement)
    raise FunctionError(
        "give oldValue or regexPattern (with replacementValue, template or "
        "regexGroupName and replacementAttributeName)"
    )


SPECS: list[FunctionSpec] = [
    eager(
        "Replace(source, oldValue, regexPattern, regexGroupName, replacementValue, "
        "replacementAttributeName, template)",
        7,
        7,
        _replace,
    ),
]
