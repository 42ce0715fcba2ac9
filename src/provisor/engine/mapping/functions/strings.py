"""String functions (entra-behaviour.md section 3.3): Append, ConvertToBase64, ConvertToUTF8Hex,
CStr, InStr, Left, Mid, NormalizeDiacritics, PCase, StripSpaces, ToLower, ToUpper, Word.

Null handling: transformations of a null source return null (the attribute stays unprovisioned);
the slicing functions Left, Mid and Word return ``""`` for a null string, as the doc says of Left.
Case mapping is the simple, length-preserving mapping .NET uses (``ß`` stays ``ß`` in ToUpper).
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Callable, Sequence

from provisor.engine.mapping.context import EvalContext
from provisor.engine.mapping.errors import FunctionError
from provisor.engine.mapping.functions.spec import FunctionSpec, eager
from provisor.engine.mapping.values import Value, to_int, to_text

__all__ = ["SPECS", "lower_char", "normalize_diacritics", "upper_char"]


def _int(value: Value, what: str) -> int:
    number = to_int(value, what)
    if number is None:
        raise FunctionError(f"{what} is required")
    return number


def upper_char(c: str, turkic: bool = False) -> str:
    """One character upper-cased, .NET simple mapping (``i`` -> ``İ`` in tr/az)."""
    if turkic and c == "i":
        return "\u0130"
    up = c.upper()
    return up if len(up) == 1 else c


def lower_char(c: str, turkic: bool = False) -> str:
    """One character lower-cased, .NET simple mapping (``I`` -> dotless ``\\u0131`` in tr/az)."""
    if turkic and c == "I":
        return "\u0131"
    if c == "\u0130":
        return "i"
    low = c.lower()
    return low if len(low) == 1 else c


def _append(args: Sequence[Value], ctx: EvalContext) -> Value:
    source, suffix = to_text(args[0]), to_text(args[1])
    if source is None and suffix is None:
        return None
    return (source or "") + (suffix or "")


def _base64(args: Sequence[Value], ctx: EvalContext) -> Value:
    text = to_text(args[0])
    return None if text is None else base64.b64encode(text.encode("utf-16-le", "surrogatepass")).decode()


def _utf8_hex(args: Sequence[Value], ctx: EvalContext) -> Value:
    text = to_text(args[0])
    return None if text is None else text.encode("utf-8", "surrogatepass").hex().upper()


def _cstr(args: Sequence[Value], ctx: EvalContext) -> Value:
    return to_text(args[0])


_TEXT_COMPARE = frozenset({"vbtextcompare", "1"})
_BINARY_COMPARE = frozenset({"vbbinarycompare", "0"})


def _instr(args: Sequence[Value], ctx: EvalContext) -> Value:
    haystack, needle = to_text(args[0]), to_text(args[1])
    start = to_int(args[2], "start") if len(args) > 2 else None
    mode = to_text(args[3]) if len(args) > 3 else None
    if start is None:
        start = 1
    if start < 1:
        raise FunctionError(f"start must be 1 or more, got {start}")
    if mode is not None and mode.lower() not in _TEXT_COMPARE | _BINARY_COMPARE:
        raise FunctionError(f"compareType must be vbTextCompare or vbBinaryCompare, got {mode!r}")
    if haystack is None or needle is None:
        return None
    if start > len(haystack) + (1 if needle == "" else 0):
        return 0
    if mode is not None and mode.lower() in _TEXT_COMPARE:
        haystack = "".join(lower_char(c) for c in haystack)
        needle = "".join(lower_char(c) for c in needle)
    return haystack.find(needle, start - 1) + 1


def _left(args: Sequence[Value], ctx: EvalContext) -> Value:
    text = to_text(args[0])
    count = _int(args[1], "numChars")
    if text is None:
        return ""
    return text if count < 0 else text[:count]


def _mid(args: Sequence[Value], ctx: EvalContext) -> Value:
    text = to_text(args[0])
    start = _int(args[1], "start")
    length = to_int(args[2], "length")
    if start < 1:
        raise FunctionError(f"start is 1-based and must be 1 or more, got {start}")
    if length is not None and length < 0:
        raise FunctionError(f"length must not be negative, got {length}")
    if text is None:
        return ""
    return text[start - 1 :] if length is None else text[start - 1 : start - 1 + length]


#: Letters NFKD does not decompose into a base letter plus marks (section 3.3 table).
_LETTERS = {
    "æ": "ae", "Æ": "AE", "ø": "oe", "Ø": "OE", "œ": "oe", "Œ": "OE", "ß": "ss", "ẞ": "SS",
    "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH",
    "\u0131": "i", "ħ": "h", "Ħ": "H", "ŀ": "l", "Ŀ": "L", "ŧ": "t", "Ŧ": "T",
}  # fmt: skip


def normalize_diacritics(text: str) -> str:
    """Accented letters to their ASCII base (``Zoë`` -> ``Zoe``, ``ø`` -> ``oe``, ``ß`` -> ``ss``)."""
    replaced = "".join(_LETTERS.get(c, c) for c in text)
    decomposed = unicodedata.normalize("NFKD", replaced)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _normalize(args: Sequence[Value], ctx: EvalContext) -> Value:
    text = to_text(args[0])
    return None if text is None else normalize_diacritics(text)


def _default_separator(c: str) -> bool:
    return c.isspace() or unicodedata.category(c).startswith("P")


def _pcase(args: Sequence[Value], ctx: EvalContext) -> Value:
    text = to_text(args[0])
    chosen = to_text(args[1]) if len(args) > 1 else None
    if text is None:
        return None
    is_separator: Callable[[str], bool] = _default_separator if chosen is None else chosen.__contains__
    out: list[str] = []
    at_word_start = True
    for c in text:
        if is_separator(c):
            out.append(c)
            at_word_start = True
        else:
            out.append(upper_char(c) if at_word_start else lower_char(c))
            at_word_start = False
    return "".join(out)


def _strip_spaces(args: Sequence[Value], ctx: EvalContext) -> Value:
    text = to_text(args[0])
    return None if text is None else text.replace(" ", "")


_CULTURE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")


def _turkic(culture: Value) -> bool:
    name = to_text(culture)
    if name is None or name == "":
        return False
    if _CULTURE.fullmatch(name) is None:
        raise FunctionError(f"culture must be an RFC 4646 name like 'tr-TR', got {name!r}")
    return name.split("-", 1)[0].lower() in ("tr", "az")


def _to_lower(args: Sequence[Value], ctx: EvalContext) -> Value:
    turkic = _turkic(args[1]) if len(args) > 1 else False
    text = to_text(args[0])
    return None if text is None else "".join(lower_char(c, turkic) for c in text)


def _to_upper(args: Sequence[Value], ctx: EvalContext) -> Value:
    turkic = _turkic(args[1]) if len(args) > 1 else False
    text = to_text(args[0])
    return None if text is None else "".join(upper_char(c, turkic) for c in text)


def _word(args: Sequence[Value], ctx: EvalContext) -> Value:
    text = to_text(args[0])
    number = to_int(args[1], "wordNumber")
    delimiters = to_text(args[2]) or ""
    if text is None or number is None or number < 1:
        return ""
    words: list[str] = []
    current: list[str] = []
    for c in text:
        if c in delimiters:
            if current:
                words.append("".join(current))
            current = []
        else:
            current.append(c)
    if current:
        words.append("".join(current))
    return words[number - 1] if number <= len(words) else ""


SPECS: list[FunctionSpec] = [
    eager("Append(source, suffix)", 2, 2, _append),
    eager("ConvertToBase64(source)", 1, 1, _base64),
    eager("ConvertToUTF8Hex(source)", 1, 1, _utf8_hex),
    eager("CStr(value)", 1, 1, _cstr),
    eager("InStr(value1, value2[, start][, compareType])", 2, 4, _instr),
    eager("Left(string, numChars)", 2, 2, _left),
    eager("Mid(source, start, length)", 3, 3, _mid),
    eager("NormalizeDiacritics(source)", 1, 1, _normalize),
    eager("PCase(source[, wordSeparators])", 1, 2, _pcase),
    eager("StripSpaces(source)", 1, 1, _strip_spaces),
    eager("ToLower(source[, culture])", 1, 2, _to_lower),
    eager("ToUpper(source[, culture])", 1, 2, _to_upper),
    eager("Word(string, wordNumber, delimiters)", 3, 3, _word),
]
