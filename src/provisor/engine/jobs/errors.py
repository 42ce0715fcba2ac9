"""The job loader's one exception: a job file that cannot be used, with its file and line."""

from __future__ import annotations

__all__ = ["JobFileError"]


class JobFileError(ValueError):
    """An invalid job file. The message reads ``<file>:<line>: <problem>`` so editors and people
    can jump to it; ``line`` and ``column`` are 1-based (``None`` when unknown). The message never
    contains a secret's value nor a value read from the environment."""

    def __init__(
        self, source_name: str, problem: str, line: int | None = None, column: int | None = None
    ) -> None:
        where = source_name if line is None else f"{source_name}:{line}"
        super().__init__(f"{where}: {problem}")
        self.source_name = source_name
        self.problem = problem
        self.line = line
        self.column = column
