"""What a stream is charged when things go wrong, through a real `tokenomy serve`.

- A proxy killed (SIGKILL) mid-stream: its reservation carries a checkpoint of
  what the stream had delivered, so reconciliation writes that row and charges
  it (the old code wrote an `abandoned` row with 0 tokens, charged nothing).
  SQLite (the proxy restarts) and PostgreSQL (a second replica reconciles).
- A client that asked for stream usage gets a usage chunk even when the backend
  sends none; the ledger records the same figures, marked estimated.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

import budget_support
from budget_support import sqlite_url
from tokenomy.budgets.db import make_engine
from tokenomy.testing.processes import Server, echo_config, run_proxy, start_proxy
from tokenomy.tokenizers import count_text

pg_url = budget_support.pg_url  # the fixture: a fresh PostgreSQL schema


def config(upstream: Server, url: str) -> dict[str, Any]:
    return echo_config(
        upstream.v1,
        models={"echo": {"backend": "test", "model": "gpt-4o"}},
        ledger={"url": url, "reconcile_interval": 1, "owner_ttl": 3,
                "checkpoint_interval": 0.3},
        teams={"drip": {"tokens": 1_000_000, "window": "1d"}},
    )


def rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql)).all())


def stream_in_background(proxy: Server, seen: list[str]) -> threading.Thread:
    """A 6 s stream (300 words, 20 ms apart); it dies with the proxy."""
    body = {"model": "echo", "stream": True, "max_tokens": 1000,
            "metadata": {"test_fault": "drip"}, "tokenomy": {"team": "drip"},
            "messages": [{"role": "user", "content": "talk slowly"}]}

    def read() -> None:
        try:
            with httpx.stream("POST", proxy.v1 + "/chat/completions", json=body,
                              timeout=30) as response:
                for line in response.iter_lines():
                    if line.startswith("data: {"):
                        chunk = json.loads(line[6:])
                        for choice in chunk.get("choices") or ():
                            seen.append(choice["delta"].get("content") or "")
        except httpx.HTTPError:
            pass  # the proxy was killed under it

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def kill_mid_stream(upstream: Server, url: str, folder: Path) -> int:
    """Start a proxy, SIGKILL it mid-stream; the chunks its client had received."""
    victim = start_proxy(config(upstream, url), folder=folder)
    seen: list[str] = []
    try:
        stream_in_background(victim, seen)
        deadline = time.monotonic() + 30
        while len(seen) < 60:  # ~1.2 s of the stream, several checkpoints
            assert time.monotonic() < deadline, "the stream never started"
            time.sleep(0.05)
        time.sleep(0.4)
        victim.process.kill()  # SIGKILL: nothing settles
        victim.process.wait()
    finally:
        if victim.process.poll() is None:
            victim.process.kill()
    return len(seen)


def assert_delivered_was_charged(engine: Engine, delivered: int) -> None:
    deadline = time.monotonic() + 30
    while rows(engine, "select count(*) from tk_reservations")[0][0]:
        assert time.monotonic() < deadline, "the dead proxy's reservation was never released"
        time.sleep(0.2)
    [(outcome, prompt, completion, total, estimated)] = rows(
        engine, "select outcome, prompt_tokens, completion_tokens, total_tokens, estimated "
                "from tk_requests where team='drip'")
    assert outcome == "abandoned" and estimated
    assert prompt > 0
    # The last checkpoint holds what had streamed by then: part of the whole answer.
    whole = count_text(" ".join(f"w{i}" for i in range(300)), "gpt-4o")
    assert 40 <= completion < whole, (completion, delivered, whole)
    [(spent, held)] = rows(engine, "select spent_tokens, reserved_tokens from tk_budget_usage "
                                   "where scope_id='drip'")
    assert (spent, held) == (total, 0)


def test_a_proxy_killed_mid_stream_charges_what_it_delivered_sqlite(
    upstream: Server, tmp_path: Path
) -> None:
    url = sqlite_url(tmp_path)
    engine = make_engine(url)
    delivered = kill_mid_stream(upstream, url, tmp_path)
    with run_proxy(config(upstream, url), folder=tmp_path):  # reconciles the dead owner
        assert_delivered_was_charged(engine, delivered)
    engine.dispose()


@pytest.mark.postgres
def test_a_replica_killed_mid_stream_charges_what_it_delivered_postgres(
    upstream: Server, tmp_path: Path, pg_url: str
) -> None:
    engine = make_engine(pg_url)
    try:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        with run_proxy(config(upstream, pg_url), folder=tmp_path / "b"):
            delivered = kill_mid_stream(upstream, pg_url, tmp_path / "a")
            assert_delivered_was_charged(engine, delivered)
    finally:
        engine.dispose()


def test_stream_usage_is_computed_when_the_backend_sends_none(
    upstream: Server, tmp_path: Path
) -> None:
    url = sqlite_url(tmp_path)
    with run_proxy(config(upstream, url), folder=tmp_path) as proxy:
        body = {"model": "echo", "stream": True, "stream_options": {"include_usage": True},
                "metadata": {"test_fault": "nousage"}, "tokenomy": {"team": "drip"},
                "messages": [{"role": "user", "content": "count these words please"}]}
        with httpx.stream("POST", proxy.v1 + "/chat/completions", json=body) as response:
            chunks = [json.loads(line[6:]) for line in response.iter_lines()
                      if line.startswith("data: {")]
        usage = chunks[-1]["usage"]
        assert chunks[-1]["choices"] == []
        text_out = "".join(c["choices"][0]["delta"].get("content") or ""
                           for c in chunks if c["choices"])
        assert text_out == "echo: count these words please"
        # Not asked for: no usage chunk is invented.
        body.pop("stream_options")
        with httpx.stream("POST", proxy.v1 + "/chat/completions", json=body) as response:
            plain = [json.loads(line[6:]) for line in response.iter_lines()
                     if line.startswith("data: {")]
        assert all("usage" not in c or c["usage"] is None for c in plain)
        engine = make_engine(url)
        time.sleep(0.3)
        first = rows(engine, "select prompt_tokens, completion_tokens, total_tokens, estimated "
                             "from tk_requests where team='drip' order by id")[0]
        engine.dispose()
    assert tuple(first) == (usage["prompt_tokens"], usage["completion_tokens"],
                            usage["total_tokens"], True)
    assert usage["completion_tokens"] == 6 and usage["prompt_tokens"] > 0


def test_a_backend_usage_chunk_is_never_doubled_without_a_ledger(
    upstream: Server, tmp_path: Path
) -> None:
    config = echo_config(upstream.v1, ledger={"enabled": False})
    with run_proxy(config, folder=tmp_path) as proxy:
        body = {"model": "echo", "stream": True, "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": "one usage chunk"}]}
        with httpx.stream("POST", proxy.v1 + "/chat/completions", json=body) as response:
            chunks = [json.loads(line[6:]) for line in response.iter_lines()
                      if line.startswith("data: {")]
    reports = [c["usage"] for c in chunks if c.get("usage")]
    assert len(reports) == 1 and reports[0]["completion_tokens"] == 4
