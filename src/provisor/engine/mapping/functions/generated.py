"""Generated values (entra-behaviour.md section 3.3): Guid, RandomString. Randomness comes from
the context (:class:`provisor.engine.mapping.context.EvalContext`), never from a global source."""

from __future__ import annotations

import string
import uuid
from collections.abc import Sequence

from provisor.engine.mapping.context import EvalContext, random_below, shuffle
from provisor.engine.mapping.errors import FunctionError
from provisor.engine.mapping.functions.spec import FunctionSpec, eager
from provisor.engine.mapping.values import Value, to_int, to_text

__all__ = ["MAX_RANDOM_LENGTH", "SPECIAL_CHARACTERS", "SPECS"]

#: RandomString's documented maximum length (section 3.3).
MAX_RANDOM_LENGTH = 256
#: The special characters RandomString draws from: ASCII punctuation.
SPECIAL_CHARACTERS = string.punctuation


def _guid(args: Sequence[Value], ctx: EvalContext) -> Value:
    return str(uuid.UUID(int=ctx.random.getrandbits(128), version=4))


def _count(value: Value, what: str) -> int:
    number = to_int(value, what)
    number = 0 if number is None else number
    if number < 0:
        raise FunctionError(f"{what} must not be negative, got {number}")
    return number


def _random_string(args: Sequence[Value], ctx: EvalContext) -> Value:
    length = to_int(args[0], "length")
    if length is None or not 1 <= length <= MAX_RANDOM_LENGTH:
        raise FunctionError(f"length must be 1 to {MAX_RANDOM_LENGTH}, got {length}")
    avoid = set(to_text(args[5]) or "") if len(args) > 5 else set()
    classes = [
        (_count(args[1], "minNumbers"), string.digits),
        (_count(args[2], "minSpecial"), SPECIAL_CHARACTERS),
        (_count(args[3], "minCapital"), string.ascii_uppercase),
        (_count(args[4], "minLower"), string.ascii_lowercase),
    ]
    if sum(minimum for minimum, _ in classes) > length:
        raise FunctionError(f"the minimum counts add up to more than length {length}")
    chars: list[str] = []
    pool: list[str] = []
    for minimum, alphabet in classes:
        allowed = [c for c in alphabet if c not in avoid]
        if minimum and not allowed:
            raise FunctionError("charactersToAvoid excludes a whole character class that has a minimum")
        chars.extend(allowed[random_below(ctx.random, len(allowed))] for _ in range(minimum))
        pool.extend(allowed)
    if len(chars) < length and not pool:
        raise FunctionError("charactersToAvoid leaves no characters to choose from")
    chars.extend(pool[random_below(ctx.random, len(pool))] for _ in range(length - len(chars)))
    shuffle(ctx.random, chars)
    return "".join(chars)


SPECS: list[FunctionSpec] = [
    eager("Guid()", 0, 0, _guid),
    eager(
        "RandomString(length, minimumNumbers, minimumSpecialCharacters, minimumCapital, "
        "minimumLowerCase[, charactersToAvoid])",
        5,
        6,
        _random_string,
    ),
]
