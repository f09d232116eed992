"""The stage protocol and the pipeline that runs stages, onion style.

A stage is `async def __call__(self, call, next) -> Result`: it may change the
call before calling `next`, answer the call itself, or wrap the result (see
`Result.wrap_stream` for streams). The last stage talks to a backend.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

from tokenomy.call import Call, Result

Next = Callable[[Call], Awaitable[Result]]


@runtime_checkable
class Stage(Protocol):
    name: str

    async def __call__(self, call: Call, next: Next) -> Result: ...


class Pipeline:
    """Runs stages in order; the innermost `next` is the terminal stage."""

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


def _bind(stage: Stage, inner: Next) -> Next:
    async def handler(call: Call) -> Result:
        return await stage(call, inner)

    return handler
