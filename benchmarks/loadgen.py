"""A lean closed-loop HTTP/1.1 load generator for the benchmarks (run it as its own process).

Each of `concurrency` workers holds one keep-alive connection and sends POSTs
back to back; every request's latency (send -> last byte of the response) is
recorded. The client is raw asyncio + httptools on uvloop, so the load
generator itself costs as little CPU as possible on a small machine: what we
want to see is the servers' cost, not the client's.

    python benchmarks/loadgen.py --url http://127.0.0.1:9100/v1/chat/completions \
        --concurrency 8 --requests 2000 [--stream] [--warmup 200]

It prints one JSON object: the sorted latencies (seconds), errors, wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import httptools
import orjson

PROMPT = "Summarize the quarterly report in two sentences, keep the numbers."


def chat_body(model: str, stream: bool) -> bytes:
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": PROMPT},
        ],
        "max_tokens": 64,
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; `request()` sends and awaits the whole response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future[int] | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.body_bytes = 0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.done and not self.done.done():
                self.done.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done and not self.done.done():
            self.done.set_exception(ConnectionError("connection closed mid-response"))
        if not self.closed.done():
            self.closed.set_result(None)

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)

    def on_message_complete(self) -> None:
        if self.done and not self.done.done():
            self.done.set_result(self.parser.get_status_code())

    async def request(self, raw: bytes) -> int:
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.done


async def _worker(host: str, port: int, raw: bytes, stop_at: list[int], counter: list[int],
                  latencies: list[float], errors: list[str]) -> None:
    loop = asyncio.get_running_loop()
    conn: _Connection | None = None
    while counter[0] < stop_at[0]:
        counter[0] += 1
        if conn is None or conn.transport is None or conn.transport.is_closing():
            _, conn = await loop.create_connection(_Connection, host, port)
        start = time.perf_counter()
        try:
            status = await conn.request(raw)
        except Exception as exc:  # record and reconnect
            errors.append(type(exc).__name__)
            conn = None
            continue
        latencies.append(time.perf_counter() - start)
        if status != 200:
            errors.append(str(status))
    if conn is not None and conn.transport is not None:
        conn.transport.close()


async def run(url: str, body: bytes, concurrency: int, requests: int,
              warmup: int) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    raw = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer bench\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    for phase, count in (("warmup", warmup), ("measure", requests)):
        latencies: list[float] = []
        errors: list[str] = []
        counter, stop_at = [0], [count]
        started = time.perf_counter()
        await asyncio.gather(*(
            _worker(host, port, raw, stop_at, counter, latencies, errors)
            for _ in range(concurrency)
        ))
        wall = time.perf_counter() - started
        if phase == "measure":
            latencies.sort()
            return {"latencies": latencies, "errors": errors, "wall": wall,
                    "rps": len(latencies) / wall if wall else 0.0}
    raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--body-file", help="a JSON chat body to send instead of the default "
                        "(its model and stream fields are replaced)")
    args = parser.parse_args()
    import uvloop

    body = chat_body(args.model, args.stream)
    if args.body_file:
        with open(args.body_file, "rb") as handle:
            custom = orjson.loads(handle.read())
        custom["model"] = args.model
        custom.pop("stream", None)
        if args.stream:
            custom["stream"] = True
        body = orjson.dumps(custom)
    out = uvloop.run(run(args.url, body, args.concurrency, args.requests, args.warmup))
    sys.stdout.buffer.write(orjson.dumps(out))


if __name__ == "__main__":
    main()
