"""The batcher merges concurrent work into batches and never blocks the event loop."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tokenomy.scoring.batching import Batcher

DATA = Path(__file__).resolve().parents[1] / "data" / "qa_passages.dev.jsonl"


@pytest.fixture(scope="module")
def qa_items() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()[:40]]


def _slow_square(items: list[int]) -> list[int]:
    time.sleep(0.05)  # a model call: the cost is per batch, not per item
    return [x * x for x in items]


async def test_concurrent_submits_share_batches_and_match_one_by_one():
    batcher = Batcher(_slow_square, max_batch=8, max_wait_ms=20)
    try:
        one_by_one = [await batcher.submit(x) for x in range(6)]
        assert batcher.stats.batches == 6
        batched = await asyncio.gather(*(batcher.submit(x) for x in range(24)))
        assert list(batched) == [x * x for x in range(24)]
        assert one_by_one == [x * x for x in range(6)]
        # 24 items in batches of at most 8: far fewer than 24 model calls.
        assert batcher.stats.batches - 6 <= 6
        assert batcher.stats.largest_batch > 1
        assert batcher.stats.largest_batch <= 8
    finally:
        batcher.close()


async def test_submits_from_several_tasks_and_threads_are_merged():
    batcher = Batcher(_slow_square, max_batch=32, max_wait_ms=30)
    try:
        async def client(offset: int) -> list[int]:
            return await batcher.submit_many(list(range(offset, offset + 5)))

        thread_results: list[int] = []
        worker = threading.Thread(
            target=lambda: thread_results.extend(batcher.map_sync([100, 101]))
        )
        worker.start()
        results = await asyncio.gather(*(client(10 * k) for k in range(4)))
        await asyncio.to_thread(worker.join)
        assert results == [[x * x for x in range(10 * k, 10 * k + 5)] for k in range(4)]
        assert thread_results == [10000, 10201]
        assert batcher.stats.items == 22
        assert batcher.stats.batches <= 3
    finally:
        batcher.close()


async def test_cost_cap_splits_batches():
    batcher = Batcher(lambda xs: list(xs), max_batch=100, max_wait_ms=30, max_cost=10,
                      cost=float)
    try:
        out = await asyncio.gather(*(batcher.submit(4) for _ in range(6)))
        assert out == [4] * 6
        assert batcher.stats.largest_batch == 2  # 4 + 4 <= 10 < 4 + 4 + 4
    finally:
        batcher.close()


async def test_errors_reach_every_caller_of_the_batch_and_the_worker_survives():
    def picky(items: list[int]) -> list[int]:
        if any(x < 0 for x in items):
            raise ValueError("negative")
        return items

    batcher = Batcher(picky, max_batch=4, max_wait_ms=30)
    try:
        results = await asyncio.gather(batcher.submit(1), batcher.submit(-1),
                                       return_exceptions=True)
        assert all(isinstance(r, ValueError) for r in results)
        assert await batcher.submit(7) == 7
    finally:
        batcher.close()


async def test_event_loop_keeps_ticking_while_a_batch_runs():
    def busy(items: list[int]) -> list[int]:
        time.sleep(0.6)
        return items

    batcher = Batcher(busy, max_batch=4, max_wait_ms=1)
    gaps: list[float] = []
    try:
        async def ticker(stop: asyncio.Event) -> None:
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(stop))
        assert await batcher.submit(3) == 3
        stop.set()
        await tick
        assert len(gaps) > 20
        assert max(gaps) < 0.2
    finally:
        batcher.close()


def test_closed_batcher_refuses_work():
    batcher = Batcher(lambda xs: xs)
    batcher.close()
    with pytest.raises(RuntimeError):
        batcher.submit_future(1)


@pytest.mark.slow
async def test_surprisal_scores_batched_equal_one_by_one(qa_items):
    """The real SmolLM2 scorer: padded batches give the same surprisal as single windows."""
    import os

    import torch

    from tokenomy.scoring.surprisal import SurprisalScorer

    threads = torch.get_num_threads()
    if os.getloadavg()[0] > (os.cpu_count() or 1):  # see test_surprisal_tokens.py
        torch.set_num_threads(1)
    scorer = SurprisalScorer(window=64, overlap=16, max_batch=8, max_wait_ms=50)
    try:
        passages = [(item["passage"][:400], item["question"]) for item in qa_items[:3]]
        singles = [await scorer.ascore(p, q) for p, q in passages]
        before = scorer.batcher.stats.batches
        together = await asyncio.gather(*(scorer.ascore(p, q) for p, q in passages))
        assert scorer.batcher.stats.batches - before < sum(
            len(scorer.windows(p, q)[0]) for p, q in passages
        )
        for one, many in zip(singles, together, strict=True):
            assert one.spans == many.spans
            np.testing.assert_allclose(one.nll, many.nll, atol=2e-3, rtol=1e-3)
    finally:
        scorer.batcher.close()
        torch.set_num_threads(threads)
