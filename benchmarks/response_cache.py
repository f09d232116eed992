"""Latency of the response cache through `tokenomy serve` on loopback (SQLite ledger).

Four runs of sequential requests against the deterministic test upstream
(which answers in about a millisecond, so the figures are tokenomy's own
cost; with a real backend a hit also saves the backend's seconds):

- off:  temperature-0 requests of a team without the cache (the baseline);
- miss: the same, cache on, every prompt new (a lookup, then a background store);
- hit:  cache on, one prompt asked again (answered from the ledger's table);
- stream hit: the same as a stream, replayed as SSE.

    python benchmarks/response_cache.py [--requests 300] [--store ledger|redis]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tokenomy.testing.processes import echo_config, run_proxy, run_upstream

RUNS = ("off", "miss", "hit", "stream hit")


def body(team: str, text: str, stream: bool = False) -> dict[str, Any]:
    return {"model": "echo", "temperature": 0, "stream": stream,
            "messages": [{"role": "user", "content": text}],
            "tokenomy": {"team": team, "compress": {"enabled": False}, "reasoning": "off"}}


def timed(client: httpx.Client, url: str, payload: dict[str, Any], expect: str | None) -> float:
    started = time.perf_counter()
    if payload["stream"]:
        with client.stream("POST", url, json=payload) as response:
            for _ in response.iter_bytes():
                pass
    else:
        response = client.post(url, json=payload)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.text
    assert response.headers.get("x-tokenomy-cache") == expect, response.headers
    return elapsed


def row(name: str, times: list[float]) -> str:
    times = sorted(times)
    p95 = times[int(0.95 * (len(times) - 1))]
    return f"| {name:<12} | {len(times):>5} | {statistics.median(times):8.2f} | {p95:8.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--store", choices=["ledger", "redis"], default="ledger")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tokenomy-bench-cache-"))
    n = args.requests
    cache: dict[str, Any] = {"store": args.store,
                             "redis_prefix": f"tokenomy-bench:{uuid.uuid4().hex}:"}
    with run_upstream() as upstream:
        config = echo_config(upstream.v1, response_cache=cache,
                             teams={"off": {}, "on": {"response_cache": {"enabled": True}}})
        with run_proxy(config, folder=folder) as proxy, httpx.Client(timeout=30) as client:
            url = proxy.v1 + "/chat/completions"
            for i in range(20):
                timed(client, url, body("off", f"warm up {i}"), None)
            timed(client, url, body("on", "again"), "miss")
            timed(client, url, body("on", "again", True), "miss")
            time.sleep(0.5)  # the background stores land
            results: dict[str, list[float]] = {name: [] for name in RUNS}
            # Interleaved request by request, so the machine's noise hits every run alike.
            for i in range(n):
                results["off"].append(timed(client, url, body("off", f"q {i}"), None))
                results["miss"].append(timed(client, url, body("on", f"q {i}"), "miss"))
                results["hit"].append(timed(client, url, body("on", "again"), "hit"))
                results["stream hit"].append(
                    timed(client, url, body("on", "again", True), "hit"))
    print(f"store: {args.store}; {n} sequential requests per run, interleaved (ms)\n")
    print("| run          | reqs  |    p50   |    p95   |")
    print("|--------------|-------|----------|----------|")
    for name, times in results.items():
        print(row(name, times))


if __name__ == "__main__":
    main()
