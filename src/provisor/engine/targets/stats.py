"""Request counters the engine reports per cycle (entra-behaviour.md 2.12 logs, 4.3 throttling)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["StatsRecorder", "TargetStats"]


@dataclass(frozen=True, slots=True)
class TargetStats:
    """A snapshot: attempts by ``(method, outcome)`` where outcome is the HTTP status as text
    (``"201"``) or the error code of a request that got no answer (``"Timeout"``,
    ``"WebExceptionProtocolError"``); ``retries`` attempts beyond the first, by the same outcome
    that caused them; ``retry_delay`` seconds waited in total before retries."""

    requests: Mapping[tuple[str, str], int] = field(default_factory=dict)
    retries: Mapping[str, int] = field(default_factory=dict)
    retry_delay: float = 0.0

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def total_retries(self) -> int:
        return sum(self.retries.values())

    def count(self, method: str, outcome: str | int) -> int:
        """Attempts of ``method`` that ended in ``outcome`` (a status or an error code)."""
        return self.requests.get((method.upper(), str(outcome)), 0)


class StatsRecorder:
    """The mutable counters behind :class:`TargetStats` (single event loop, so no lock)."""

    def __init__(self) -> None:
        self._requests: Counter[tuple[str, str]] = Counter()
        self._retries: Counter[str] = Counter()
        self._delay = 0.0

    def request(self, method: str, outcome: str | int) -> None:
        self._requests[(method.upper(), str(outcome))] += 1

    def retry(self, outcome: str | int, delay: float) -> None:
        self._retries[str(outcome)] += 1
        self._delay += delay

    def snapshot(self) -> TargetStats:
        return TargetStats(
            requests=MappingProxyType(dict(self._requests)),
            retries=MappingProxyType(dict(self._retries)),
            retry_delay=self._delay,
        )
