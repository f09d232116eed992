"""A bounded soak: mixed streaming and non-streaming load through a real proxy, ledger on.

No errors, no leaked file descriptors or connections (psutil on the proxy),
memory flat after warm-up, and every request exactly one ledger row.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import psutil
import pytest

from perf_support import db_url, ledger_rows, open_reservations
from tokenomy.testing.processes import Server, echo_config, run_proxy

WARMUP = 1000  # RSS settles after ~1k requests (caches, lazy imports), then stays flat
REQUESTS = 1500
CONCURRENCY = 8
RSS_GROWTH_LIMIT = 24 * 2**20  # bytes, after warm-up
TIME_LIMIT = 60.0


async def _drive(proxy: Server, count: int, offset: int) -> list[tuple[int, str, bool]]:
    """`count` requests, every third one streamed; returns (status, request id, stream)."""
    results: list[tuple[int, str, bool]] = []
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=proxy.v1, timeout=30, limits=limits) as client:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(offset, offset + count):
            queue.put_nowait(index)

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                stream = index % 3 == 0
                body = {"model": "echo", "stream": stream, "tokenomy": {"team": "soak"},
                        "messages": [{"role": "user", "content": f"request {index}"}]}
                if stream:
                    async with client.stream("POST", "/chat/completions", json=body) as response:
                        text = "".join([piece async for piece in response.aiter_text()])
                        ok = response.status_code == 200 and text.endswith("data: [DONE]\n\n")
                        status = response.status_code if ok else 599
                else:
                    response = await client.post("/chat/completions", json=body)
                    status = response.status_code
                results.append((status, response.headers["x-tokenomy-request-id"], stream))

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return results


def _snapshot(process: psutil.Process) -> tuple[int, int, int]:
    connections = [c for c in process.net_connections(kind="tcp")
                   if c.status == psutil.CONN_ESTABLISHED]
    return process.num_fds(), len(connections), process.memory_info().rss


@pytest.mark.slow
def test_soak_mixed_load_with_ledger(tmp_path: Path, upstream: Server) -> None:
    url = db_url(tmp_path)
    config = echo_config(upstream.v1, ledger={"url": url},
                         teams={"soak": {"tokens": 10_000_000_000}})
    with run_proxy(config, folder=tmp_path) as proxy:
        process = psutil.Process(proxy.process.pid)
        warm = asyncio.run(_drive(proxy, WARMUP, 0))
        time.sleep(0.5)
        fds0, conns0, rss0 = _snapshot(process)
        began = time.monotonic()
        results = asyncio.run(_drive(proxy, REQUESTS, WARMUP))
        elapsed = time.monotonic() - began
        time.sleep(0.5)  # closed client connections are gone from the proxy's table
        fds1, conns1, rss1 = _snapshot(process)
        print(f"soak: {REQUESTS} requests in {elapsed:.1f} s; fds {fds0}->{fds1}, "
              f"established {conns0}->{conns1}, rss {rss0 / 2**20:.1f}->{rss1 / 2**20:.1f} MiB")
        assert elapsed < TIME_LIMIT
        assert [r for r in results if r[0] != 200] == []
        assert fds1 <= fds0 + 2, (fds0, fds1)
        assert conns1 <= conns0 + 2, (conns0, conns1)
        assert rss1 - rss0 < RSS_GROWTH_LIMIT, (rss0, rss1)
        rows = ledger_rows(url)
        ids = [r["request_id"] for r in rows]
        assert len(ids) == len(set(ids)) == WARMUP + REQUESTS
        assert set(ids) == {r[1] for r in results} | {r[1] for r in warm}
        assert {r["outcome"] for r in rows} == {"ok"}
        assert all(r["total_tokens"] > 0 for r in rows)  # real usage, streams included
        assert open_reservations(url) == 0
