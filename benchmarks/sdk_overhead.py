"""What the SDK costs per call: the step decorator, and each way into the engine.

    python benchmarks/sdk_overhead.py [--calls 200]

Everything runs on loopback against the deterministic test upstream (no model
time), so the figures are tokenomy's own overhead: the decorator alone, then
one chat completion through each path, p50 / p95 latency in milliseconds.
The ledger is a SQLite file in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import openai

import tokenomy
from tokenomy.config import Settings
from tokenomy.testing.processes import echo_config, run_proxy, run_upstream

MESSAGES = [{"role": "user", "content": "How many invoices are overdue this quarter?"}]


def per_call_us(fn: Callable[[], object], n: int = 200_000) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def decorator_rows() -> list[tuple[str, float]]:
    def plain() -> int:
        return 1

    stepped = tokenomy.step(name="bench")(plain)

    async def aplain() -> int:
        return 1

    astepped = tokenomy.step(name="bench")(aplain)

    def run_async(fn: Callable[[], object], n: int = 50_000) -> float:
        async def loop() -> float:
            started = time.perf_counter()
            for _ in range(n):
                await fn()  # type: ignore[misc]
            return (time.perf_counter() - started) / n * 1e6

        return asyncio.run(loop())

    base, base_async = per_call_us(plain), run_async(aplain)
    return [
        ("sync function, undecorated", base),
        ("sync function, @tokenomy.step", per_call_us(stepped)),
        ("async function, undecorated", base_async),
        ("async function, @tokenomy.step", run_async(astepped)),
    ]


def latency(fn: Callable[[], object], calls: int, warmup: int = 20) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()

    print("step decorator (µs per call)")
    print(f"{'function':<34} {'µs':>8}")
    for name, value in decorator_rows():
        print(f"{name:<34} {value:>8.2f}")

    folder = Path(tempfile.mkdtemp(prefix="tokenomy-sdk-bench-"))
    ledger = {"url": f"sqlite:///{folder / 'ledger.db'}"}
    rows: list[tuple[str, float, float]] = []
    with run_upstream() as upstream:
        config = echo_config(upstream.v1, ledger=ledger)
        direct = openai.OpenAI(base_url=upstream.v1, api_key="x")
        rows.append(("openai -> test upstream (no tokenomy)", *latency(
            lambda: direct.chat.completions.create(model="echo-model", messages=MESSAGES),
            args.calls)))

        with tokenomy.Client(Settings.model_validate(config)) as client, \
                tokenomy.step("bench"):
            rows.append(("tokenomy.Client in process, in a step", *latency(
                lambda: client.chat.completions.create(model="echo", messages=MESSAGES),
                args.calls)))
            from tokenomy.sdk.langchain import chat_model

            llm = chat_model("echo", client=client)
            rows.append(("chat_model (ChatOpenAI) in process", *latency(
                lambda: llm.invoke("How many invoices are overdue this quarter?"),
                args.calls)))

        proxy_config = echo_config(upstream.v1, ledger={"url": f"sqlite:///{folder / 'p.db'}"})
        with run_proxy(proxy_config, folder=folder) as proxy:
            via = openai.OpenAI(base_url=proxy.v1, api_key="x")
            rows.append(("openai -> tokenomy serve -> upstream", *latency(
                lambda: via.chat.completions.create(model="echo", messages=MESSAGES),
                args.calls)))
            with tokenomy.Client(base_url=proxy.v1) as remote, tokenomy.step("bench"):
                rows.append(("tokenomy.Client(base_url=proxy), in a step", *latency(
                    lambda: remote.chat.completions.create(model="echo", messages=MESSAGES),
                    args.calls)))

    print(f"\none chat completion, {args.calls} calls each (ms)")
    print(f"{'path':<44} {'p50':>7} {'p95':>7}")
    for name, p50, p95 in rows:
        print(f"{name:<44} {p50:>7.2f} {p95:>7.2f}")


if __name__ == "__main__":
    main()
