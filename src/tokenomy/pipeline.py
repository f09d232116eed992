"""The stage protocol, the services stages are built with, and the pipeline that runs them.

A stage is `async def __call__(self, call, next) -> Result`: it may change the
call before calling `next`, answer the call itself, or wrap the result (see
`Result.wrap_stream` for streams). The last handler talks to a backend.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tokenomy.call import Call, Result
from tokenomy.config import Settings

if TYPE_CHECKING:
    from tokenomy.budgets.service import Budgets
    from tokenomy.upstreams.router import Router

Next = Callable[[Call], Awaitable[Result]]


@runtime_checkable
class Stage(Protocol):
    name: str

    async def __call__(self, call: Call, next: Next) -> Result: ...


@dataclass
class Services:
    """What the engine hands each stage factory: nothing is looked up behind its back."""

    settings: Settings
    router: Router
    budgets: Budgets | None = None  # None when `[ledger] enabled = false`


class Pipeline:
    """Runs stages in order; the innermost `next` is the terminal handler."""

    def __init__(self, stages: Sequence[Stage], terminal: Callable[[Call], Awaitable[Result]]):
        self.stages = list(stages)
        self.terminal = terminal
        # Build the chain once; a call only walks it.
        handler: Next = terminal
        for stage in reversed(self.stages):
            handler = _bind(stage, handler)
        self._handler = handler

    async def run(self, call: Call) -> Result:
        return await self._handler(call)

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    async def aclose(self) -> None:
        for stage in self.stages:
            close = getattr(stage, "aclose", None)  # stages that hold resources define it
            if close is not None:
                await close()


def _bind(stage: Stage, inner: Next) -> Next:
    async def handler(call: Call) -> Result:
        return await stage(call, inner)

    return handler


def stage_order(configured: Sequence[str] | None, defaults: Sequence[str],
                placed: dict[str, str | None], known: set[str]) -> list[str]:
    """The stage names in order: the configured list, else the defaults with every other
    registered stage placed after the stage it names (or last)."""
    if configured is not None:
        unknown = [name for name in configured if name not in known]
        if unknown:
            raise ValueError(f"[pipeline] stages names unknown stage(s) {unknown}; "
                             f"registered: {sorted(known)}")
        return list(configured)
    order = [name for name in defaults if name in known]
    pending = [name for name in sorted(placed) if name not in order]
    while pending:
        progressed = False
        for name in list(pending):
            anchor = placed[name]
            if anchor is None or anchor not in known:
                order.append(name)
            elif anchor in order:
                order.insert(order.index(anchor) + 1, name)
            else:
                continue
            pending.remove(name)
            progressed = True
        if not progressed:  # anchors that form a loop: append in name order
            order.extend(pending)
            break
    return order
