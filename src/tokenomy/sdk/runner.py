"""The engine in process, on a private event loop thread.

The engine's upstreams hold pooled `httpx.AsyncClient`s and model workers that
belong to one event loop, while SDK callers come from anywhere: plain sync
code, `asyncio.run()` in a script (a new loop each time), a LangGraph worker
thread, a notebook whose loop is already running. So the engine lives on one
background loop that nobody else drives, and callers hand it coroutines:
sync callers block on the future, async callers await it without blocking
their own loop. Streams are pulled one chunk per hop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Generator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from tokenomy.call import Call, Chunk, ChunkStream
from tokenomy.config import Settings
from tokenomy.engine import Engine

T = TypeVar("T")


class LoopThread:
    """One daemon thread running one event loop until `stop()`."""

    def __init__(self, name: str = "tokenomy-engine") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Block until `coro` finishes on the loop (safe from inside another running loop)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("tokenomy: a sync call was made from the engine's own loop")
        return self.submit(coro).result()

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` on the loop from any other loop."""
        return await asyncio.wrap_future(self.submit(coro))

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)


@dataclass
class Outcome:
    """What the engine did with one request: the call (events, token counts) and its answer."""

    call: Call
    response: dict[str, Any] | None = None
    chunks: ChunkStream | None = None  # lives on the engine loop


class InProcessEngine:
    """An `Engine` built from settings, run on its own loop thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.thread = LoopThread()
        self.engine: Engine = self.thread.run(self._build())
        # The latest calls (identity, events, token counts), for examples and debugging.
        self.recent: deque[Call] = deque(maxlen=256)
        _at_exit(self.close)

    async def _build(self) -> Engine:
        return Engine(self.settings)

    async def _handle(self, body: dict[str, Any], api_key: str | None) -> Outcome:
        call = self.engine.prepare(body, api_key=api_key, route="sdk")
        self.recent.append(call)
        result = await self.engine.run(call)
        return Outcome(call, response=result.response, chunks=result.chunks)

    def handle(self, body: dict[str, Any], api_key: str | None = None) -> Outcome:
        """Run one request; `api_key` is checked as the proxy would when the ledger has keys."""
        return self.thread.run(self._handle(body, api_key))

    async def ahandle(self, body: dict[str, Any], api_key: str | None = None) -> Outcome:
        return await self.thread.arun(self._handle(body, api_key))

    def iterate(self, chunks: ChunkStream) -> Generator[Chunk, None, None]:
        """Pull an engine-loop stream from sync code, closing it if the consumer stops early."""
        try:
            while True:
                try:
                    yield self.thread.run(_anext(chunks))
                except StopAsyncIteration:
                    return
        finally:
            self.thread.run(chunks.aclose())

    async def aiterate(self, chunks: ChunkStream) -> AsyncGenerator[Chunk, None]:
        try:
            while True:
                try:
                    yield await self.thread.arun(_anext(chunks))
                except StopAsyncIteration:
                    return
        finally:
            await self.thread.arun(chunks.aclose())

    def close(self) -> None:
        if self.thread.loop.is_running():
            try:
                self.thread.run(self.engine.aclose())
            finally:
                self.thread.stop()


def _at_exit(close: Callable[[], None]) -> None:
    """Close the engine at exit while thread pools still take work (the ledger closes in one).

    `threading._register_atexit` callbacks run before concurrent.futures shuts its
    pools down; plain `atexit` runs after, when closing can no longer schedule.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is None:
        atexit.register(close)
        return
    with contextlib.suppress(RuntimeError):  # already shutting down
        register(close)


async def _anext(agen: AsyncIterator[Chunk]) -> Chunk:
    return await agen.__anext__()

