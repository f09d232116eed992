"""Merging scoring work from concurrent requests into padded batches.

One worker thread owns the model calls. Requests put items on a queue; the
worker takes the first item, keeps collecting for a few milliseconds (or until
the batch is full), runs one batch and resolves each caller's future. A small
model on a GPU (or even on CPU cores) does one batch of 16 windows in much less
than 16 times the cost of one, so concurrent requests share the forward pass.

The async API (`await batcher.submit(x)`) never blocks the event loop: the
caller awaits a future that the worker thread resolves. Threads (the
compressors run in worker threads) use `submit_sync`.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class BatcherStats:
    """What the worker has done so far (for tests, benchmarks and /healthz-style probes)."""

    items: int = 0
    batches: int = 0
    largest_batch: int = 0
    batch_sizes: list[int] = field(default_factory=list)

    @property
    def mean_batch(self) -> float:
        return self.items / self.batches if self.batches else 0.0


@dataclass
class _Job(Generic[T, R]):
    item: T
    future: Future[R]


_STOP = object()


class Batcher(Generic[T, R]):
    """Runs `fn(items) -> results` (same length, same order) on batches of submitted items.

    `max_batch` caps the items per batch; `max_cost` (with `cost(item)`) caps the
    padded work per batch, e.g. tokens, so one batch never needs unbounded memory;
    `max_wait_ms` is how long the worker waits for company after the first item.
    """

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int = 16,
        max_wait_ms: float = 5.0,
        max_cost: float | None = None,
        cost: Callable[[T], float] | None = None,
        name: str = "tokenomy-batcher",
    ):
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self._fn = fn
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_cost = max_cost
        self._cost = cost or (lambda _item: 1.0)
        self.stats = BatcherStats()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._held: _Job[T, R] | None = None  # an item that did not fit the last batch
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- submitting -------------------------------------------------------------

    def submit_future(self, item: T) -> Future[R]:
        if self._closed:
            raise RuntimeError("batcher is closed")
        future: Future[R] = Future()
        self._queue.put(_Job(item, future))
        return future

    async def submit(self, item: T) -> R:
        """Score one item; awaits without blocking the event loop."""
        return await asyncio.wrap_future(self.submit_future(item))

    async def submit_many(self, items: Sequence[T]) -> list[R]:
        futures = [asyncio.wrap_future(self.submit_future(item)) for item in items]
        return list(await asyncio.gather(*futures))

    def submit_sync(self, item: T) -> R:
        return self.submit_future(item).result()

    def map_sync(self, items: Sequence[T]) -> list[R]:
        """Submit all items at once (so they can share batches), then wait for all."""
        futures = [self.submit_future(item) for item in items]
        return [f.result() for f in futures]

    def close(self, timeout: float | None = 5.0) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join(timeout)

    # -- the worker ---------------------------------------------------------------

    def _next_job(self, timeout: float | None) -> Any:
        if self._held is not None:
            job, self._held = self._held, None
            return job
        try:
            return self._queue.get(timeout=timeout) if timeout is not None else self._queue.get()
        except queue.Empty:
            return None

    def _collect(self) -> tuple[list[_Job[T, R]], bool]:
        """The next batch, and whether the batcher was asked to stop."""
        first = self._next_job(None)
        if first is _STOP:
            return [], True
        batch = [first]
        spent = self._cost(first.item)
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            job = self._next_job(max(remaining, 0.0)) if remaining > 0 else self._drain_one()
            if job is None:
                break
            if job is _STOP:
                self._queue.put(_STOP)  # finish this batch, then stop
                break
            cost = self._cost(job.item)
            if self.max_cost is not None and spent + cost > self.max_cost:
                self._held = job  # starts the next batch
                break
            batch.append(job)
            spent += cost
        return batch, False

    def _drain_one(self) -> Any:
        """After the wait, still take what is already queued (no waiting)."""
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def _run(self) -> None:
        while True:
            batch, stop = self._collect()
            if stop:
                return
            live = [job for job in batch if job.future.set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                results = list(self._fn([job.item for job in live]))
                if len(results) != len(live):
                    raise RuntimeError(
                        f"batch function returned {len(results)} results for {len(live)} items"
                    )
            except BaseException as exc:  # hand the error to every caller of this batch
                for job in live:
                    job.future.set_exception(exc)
                continue
            self.stats.items += len(live)
            self.stats.batches += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(live))
            if len(self.stats.batch_sizes) < 10_000:
                self.stats.batch_sizes.append(len(live))
            for job, result in zip(live, results, strict=True):
                job.future.set_result(result)


def embedding_batcher(device: str | None = None, **options: Any) -> Batcher[str, Any]:
    """A batcher over the MiniLM embedder: `await b.submit(text)` -> normalised vector."""
    from tokenomy.scoring.models import load_embedder

    embedder = load_embedder(device)

    def encode(texts: list[str]) -> list[Any]:
        return list(embedder.encode(texts, batch_size=len(texts), normalize_embeddings=True))

    options.setdefault("max_batch", 64)
    return Batcher(encode, name="tokenomy-embed-batcher", **options)
