"""What an evaluation may consult besides the source object: time, randomness, uniqueness.

The mapping code is pure (architecture.md principle 1): Now() reads ``clock``, Guid() and
RandomString() draw from ``random``, SelectUniqueValue asks ``is_unique`` (entra-behaviour.md
section 3.3). The composition root supplies real ones; tests supply fixed ones.
"""

from __future__ import annotations

from collections.abc import Callable, MutableSequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

__all__ = ["EvalContext", "RandomSource", "random_below", "shuffle"]

_T = TypeVar("_T")


class RandomSource(Protocol):
    """Anything with ``getrandbits``: :class:`random.Random`, :class:`random.SystemRandom`."""

    def getrandbits(self, k: int, /) -> int: ...


@dataclass(frozen=True, slots=True)
class EvalContext:
    """The evaluation's window on the world.

    ``clock`` returns the current time (timezone-aware; converted to UTC). ``is_unique`` answers
    "is this value free in the target?" for SelectUniqueValue; without it SelectUniqueValue fails.
    """

    clock: Callable[[], datetime]
    random: RandomSource
    is_unique: Callable[[str], bool] | None = None


def random_below(source: RandomSource, n: int) -> int:
    """A uniform integer in ``[0, n)`` by rejection sampling on ``getrandbits``."""
    if n <= 0:
        raise ValueError("n must be positive")
    bits = n.bit_length()
    while True:
        r = source.getrandbits(bits)
        if r < n:
            return r


def shuffle(source: RandomSource, items: MutableSequence[_T]) -> None:
    """Fisher-Yates shuffle in place."""
    for i in range(len(items) - 1, 0, -1):
        j = random_below(source, i + 1)
        items[i], items[j] = items[j], items[i]
