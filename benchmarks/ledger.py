"""Ledger benchmark: reserve + settle throughput and the latency the budget adds.

For SQLite (a WAL file) and PostgreSQL (127.0.0.1:5432, database `test`, a
throwaway schema), it measures:

- ledger ops/s: reserve + settle cycles per second, one thread (sequential)
  and N threads (concurrent; SQLite serialises writers, PostgreSQL does not);
- added latency per request: a pipeline of identify + budget in front of an
  instant backend, minus the same backend alone, p50 and p99 (ms). This is
  what a proxied request pays for budgets (one reserve and one settle
  transaction, each in the ledger's thread).

Run: python benchmarks/ledger.py [--requests 2000] [--threads 8] [--skip-postgres]
Goal: under 1 ms p50 added on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import create_engine, text

from tokenomy.budgets.rows import RequestRow, Scope
from tokenomy.budgets.service import Budgets
from tokenomy.budgets.settings import BudgetSpec
from tokenomy.call import Call, Result, TokenomyOptions
from tokenomy.config import Settings
from tokenomy.pipeline import Pipeline

PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MESSAGES = [{"role": "user", "content": "How many tokens does this cost?"}]
USAGE = {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}


async def instant_backend(call: Call) -> Result:
    return Result(response={"choices": [], "usage": USAGE})


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ledger_ops(budgets: Budgets, n: int, threads: int) -> tuple[float, float, float]:
    """(sequential ops/s, concurrent ops/s, CPU ms per cycle) of reserve+settle."""
    ledger = budgets.ledger
    scope = Scope(kind="team", id="bench", spec=BudgetSpec(tokens=10**15, window="month"))

    def cycle(i: int) -> None:
        rid = f"ops-{uuid.uuid4().hex}"
        row = RequestRow(request_id=rid, ts=time.time(), team="bench")
        res = ledger.reserve(rid, [scope], 1000, 0.0, row)
        ledger.settle(res, row.model_copy(update={"total_tokens": 42, "outcome": "ok"}))

    began, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        cycle(i)
    sequential = n / (time.perf_counter() - began)
    # CPU time of this process per cycle: what the ledger costs on a quiet machine
    # (wall time also counts waiting for other processes on a busy one).
    cpu_ms = (time.process_time() - cpu) / n * 1000
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(cycle, range(n)))
    concurrent = n / (time.perf_counter() - began)
    return sequential, concurrent, cpu_ms


async def added_latency(budgets: Budgets, n: int) -> tuple[float, float, float, float]:
    """p50/p99 ms of (identify+budget+backend) minus (backend alone), and stage-path p50/p99."""
    with_budget = Pipeline([budgets.identify_stage(), budgets.budget_stage()], instant_backend)
    bare = Pipeline([], instant_backend)

    def call() -> Call:
        body = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 100}
        c = Call(body=body, options=TokenomyOptions(team="bench"))
        c.prompt_tokens_original = 14  # the engine counts this before the stages run
        return c

    async def timed(pipeline: Pipeline) -> list[float]:
        out = []
        for _ in range(n):
            c = call()
            began = time.perf_counter()
            await pipeline.run(c)
            out.append((time.perf_counter() - began) * 1000)
        return out

    await timed(with_budget)  # warm up: caches, connections, prices
    base = await timed(bare)
    full = await timed(with_budget)
    base_p50 = statistics.median(base)
    return (
        statistics.median(full) - base_p50,
        pct(full, 0.99) - base_p50,
        statistics.median(full),
        pct(full, 0.99),
    )


async def concurrent_rps(budgets: Budgets, n: int, width: int) -> float:
    pipeline = Pipeline([budgets.identify_stage(), budgets.budget_stage()], instant_backend)

    async def one() -> None:
        body = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 100}
        c = Call(body=body, options=TokenomyOptions(team="bench"))
        c.prompt_tokens_original = 14
        await pipeline.run(c)

    began = time.perf_counter()
    for start in range(0, n, width):
        await asyncio.gather(*(one() for _ in range(min(width, n - start))))
    return n / (time.perf_counter() - began)


def run_backend(name: str, url: str, args: argparse.Namespace) -> list[str]:
    settings = Settings(
        ledger={"url": url},
        teams={"bench": {"tokens": 10**15, "window": "month"}},
    )
    budgets = Budgets.from_settings(settings, background=False)
    try:
        seq, conc, cpu_ms = ledger_ops(budgets, args.requests, args.threads)
        p50, p99, raw50, raw99 = asyncio.run(added_latency(budgets, args.requests))
        rps = asyncio.run(concurrent_rps(budgets, args.requests, 64))
    finally:
        budgets.close()
    return [
        name,
        f"{seq:,.0f}",
        f"{conc:,.0f}",
        f"{rps:,.0f}",
        f"{p50:.3f}",
        f"{p99:.3f}",
        f"{raw50:.3f}",
        f"{raw99:.3f}",
        f"{cpu_ms:.3f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows.append(run_backend("sqlite (WAL)", f"sqlite:///{Path(folder) / 'ledger.db'}", args))
    if not args.skip_postgres:
        schema = "tk_bench_" + uuid.uuid4().hex[:10]
        try:
            rows.append(run_backend("postgresql", f"{PG_BASE}?schema={schema}", args))
        finally:
            engine = create_engine(PG_BASE)
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            engine.dispose()
    headers = [
        "ledger",
        "ops/s 1 thread",
        f"ops/s {args.threads} threads",
        "req/s 64 in flight",
        "added p50 ms",
        "added p99 ms",
        "stage p50 ms",
        "stage p99 ms",
        "cpu ms/cycle",
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"reserve + settle, {args.requests} requests per measurement; "
        f"{os.cpu_count()} CPUs, load average {load}"
    )
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
