"""How a function of the expression language is described (entra-behaviour.md section 3.3)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from provisor.engine.mapping.context import EvalContext
from provisor.engine.mapping.values import Value

__all__ = ["EagerImpl", "FunctionSpec", "LazyImpl", "Thunk", "eager", "lazy"]

#: Receives the evaluated arguments (omitted ones as None; Redacted already unwrapped).
EagerImpl = Callable[[Sequence[Value], EvalContext], Value]
#: A deferred argument: calling it evaluates the argument.
Thunk = Callable[[], Value]
#: Receives deferred arguments and evaluates only those it needs (IIF, Switch, Coalesce, ...).
LazyImpl = Callable[[Sequence[Thunk], EvalContext], Value]


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One function: its documented ``signature``, argument bounds and implementation.

    ``max_args`` None means variadic. ``check_arity`` may reject an argument count the bounds
    allow (Switch wants key/value pairs); ``top_level_only`` functions may not be nested.
    """

    name: str
    signature: str
    min_args: int
    max_args: int | None
    impl: EagerImpl | None = None
    lazy_impl: LazyImpl | None = None
    check_arity: Callable[[int], str | None] | None = None
    top_level_only: bool = False

    def arity_error(self, count: int) -> str | None:
        """Why ``count`` arguments are wrong for this function, or None if they are fine."""
        too_few = count < self.min_args
        too_many = self.max_args is not None and count > self.max_args
        if too_few or too_many:
            if self.max_args == self.min_args:
                wanted = f"{self.min_args}"
            elif self.max_args is None:
                wanted = f"at least {self.min_args}"
            else:
                wanted = f"{self.min_args} to {self.max_args}"
            plural = "" if wanted.endswith(" 1") or wanted == "1" else "s"
            return f"{self.name} takes {wanted} argument{plural}, got {count}: {self.signature}"
        if self.check_arity is not None:
            problem = self.check_arity(count)
            if problem is not None:
                return f"{problem}: {self.signature}"
        return None


def _name(signature: str) -> str:
    return signature.split("(", 1)[0]


def eager(signature: str, min_args: int, max_args: int | None, impl: EagerImpl) -> FunctionSpec:
    """A function whose arguments are all evaluated before it runs."""
    return FunctionSpec(_name(signature), signature, min_args, max_args, impl=impl)


def lazy(
    signature: str,
    min_args: int,
    max_args: int | None,
    impl: LazyImpl,
    *,
    check_arity: Callable[[int], str | None] | None = None,
    top_level_only: bool = False,
) -> FunctionSpec:
    """A function that decides which of its arguments to evaluate."""
    return FunctionSpec(
        _name(signature),
        signature,
        min_args,
        max_args,
        lazy_impl=impl,
        check_arity=check_arity,
        top_level_only=top_level_only,
    )
