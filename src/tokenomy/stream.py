"""`ChunkStream`: a stream of chunks that owns what it wraps.

Stages watch a stream (`observe`), change or hide chunks (`transform`) and need
its end (`on_end`); the server and the SDK consume it and close it. One object
does all of that, so there is exactly one place that closes the source and
exactly one call of the end hooks, whatever happens: the last chunk, an error,
a consumer that stops early (`aclose`), or a cancelled task.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio

Chunk = dict[str, Any]
Observer = Callable[[Chunk], None]
Transform = Callable[[Chunk], Chunk | None]  # None: drop the chunk
EndHook = Callable[[BaseException | None], Awaitable[None]]
Tail = Callable[[], Awaitable[Chunk | None]]


async def close_source(source: object) -> None:
    """Close an async iterator that may own a connection (generators, streams); the one
    place that asks whether it can be closed."""
    close = getattr(source, "aclose", None)
    if close is not None:
        await close()


class ChunkStream:
    def __init__(self, source: AsyncIterator[Chunk]):
        self._source = source
        self._steps: list[tuple[bool, Callable[[Chunk], Any]]] = []  # (is_transform, fn)
        self._end_hooks: list[EndHook] = []
        self._tails: list[Tail] = []
        self._ended = False
        self.delivered = 0  # chunks handed to the consumer

    @classmethod
    def of(cls, source: AsyncIterator[Chunk] | ChunkStream) -> ChunkStream:
        return source if isinstance(source, ChunkStream) else cls(source)

    # -- what stages add -------------------------------------------------------------

    def observe(self, fn: Observer) -> None:
        """See every chunk (after the transforms added before this call)."""
        self._steps.append((False, fn))

    def transform(self, fn: Transform) -> None:
        """Change or drop chunks (None drops) for everything added after this call."""
        self._steps.append((True, fn))

    def add_tail(self, tail: Tail) -> None:
        """When the source ends normally, `await tail()` may add one last chunk (None: not);
        it goes to the consumer as it is (no observer or transform sees it)."""
        self._tails.append(tail)

    def on_end(self, hook: EndHook) -> None:
        """Run `hook(error)` exactly once when the stream ends, however it ends.

        It runs shielded from cancellation: a client that disconnects cancels the
        response task, and the end of the stream (settling the ledger) must still
        run to completion.
        """
        self._end_hooks.append(hook)

    # -- consuming -------------------------------------------------------------------

    def __aiter__(self) -> ChunkStream:
        return self

    async def __anext__(self) -> Chunk:
        while True:
            try:
                chunk = await self._source.__anext__()
            except StopAsyncIteration:
                while self._tails:
                    last = await self._tails.pop(0)()
                    if last is not None:
                        self.delivered += 1
                        return last
                await self._end(None)
                raise
            except BaseException as exc:  # includes cancellation
                await self._end(exc)
                raise
            out = self._apply(chunk)
            if out is not None:
                self.delivered += 1
                return out

    def _apply(self, chunk: Chunk) -> Chunk | None:
        current: Chunk | None = chunk
        for is_transform, fn in self._steps:
            assert current is not None
            if is_transform:
                current = fn(current)
                if current is None:
                    return None
            else:
                fn(current)
        return current

    async def aclose(self) -> None:
        """Stop early: close the source (releasing the backend) and run the end hooks."""
        if self._ended:
            return
        with anyio.CancelScope(shield=True):
            try:
                await close_source(self._source)
            finally:
                await self._end(GeneratorExit())

    async def _end(self, error: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        with anyio.CancelScope(shield=True):
            for hook in self._end_hooks:
                await hook(error)

    @property
    def ended(self) -> bool:
        return self._ended
