"""Reservations cover the whole call: a hard limit holds under 200 concurrent requests
that fan out (consensus samples + escalation, `n` choices), on SQLite and on two
PostgreSQL replicas (two real `tokenomy serve` processes sharing one schema).

The upstream model is `gpt-4o`, so tokenomy's count is the loopback upstream's own
(o200k and OpenAI's framing): every request's estimate bounds its bill exactly, and
the limit must hold to the token. On the old code consensus requests reserved one
call and made up to seven, and `n=100` reserved one choice.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

import budget_support
from budget_support import sqlite_url
from tokenomy.budgets.db import make_engine
from tokenomy.testing.processes import Server, echo_config, run_proxy

pg_url = budget_support.pg_url  # the fixture: a fresh PostgreSQL schema

LIMIT = 10_000


def config(upstream: Server, url: str) -> dict[str, Any]:
    return echo_config(
        upstream.v1,
        models={
            "echo": {"backend": "test", "model": "gpt-4o"},
            # With metadata.test_fault = vary the upstream answers differently every
            # call: consensus never agrees, so it runs every sample and then escalates
            # (the most calls it can make).
            "vary": {"backend": "test", "model": "gpt-4o"},
        },
        ledger={"url": url, "reconcile_interval": 1, "owner_ttl": 5},
        teams={"capped": {"tokens": LIMIT, "window": "1d"}},
        planner={"consensus": {"max_samples": 4}},
    )


def mixed_requests(count: int) -> list[dict[str, Any]]:
    """Plain calls, n=8 choices, consensus (4 samples + an escalation), streams."""
    shuffle = random.Random(11)
    bodies = []
    for i in range(count):
        kind = i % 4
        body: dict[str, Any] = {
            "model": "echo",
            "messages": [{"role": "user", "content": f"request {i}: what is {i} plus {i}?"}],
            "max_tokens": 12,
            "tokenomy": {"team": "capped", "compress": {"enabled": False}},
        }
        if kind == 1:
            body["n"] = 8
        elif kind == 2:
            body["model"] = "vary"
            body["metadata"] = {"test_fault": "vary"}
            body["tokenomy"]["reasoning"] = "consensus"
        elif kind == 3:
            body["stream"] = True
        bodies.append(body)
    shuffle.shuffle(bodies)
    return bodies


async def waves(proxies: list[Server]) -> list[int]:
    """Ten consensus requests alone (each holds all its calls: the fan-out is certain),
    then 200 mixed ones at once, which run the budget out."""
    first = [b for b in mixed_requests(40) if b["model"] == "vary"]
    return await fire(proxies, first) + await fire(proxies, mixed_requests(200))


async def fire(proxies: list[Server], bodies: list[dict[str, Any]]) -> list[int]:
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one(i: int, body: dict[str, Any]) -> int:
            url = proxies[i % len(proxies)].v1 + "/chat/completions"
            if body.get("stream"):
                async with client.stream("POST", url, json=body) as response:
                    async for _ in response.aiter_bytes():
                        pass
                    return response.status_code
            return (await client.post(url, json=body)).status_code

        return list(await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies))))


def window(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        row = conn.execute(text(
            "select spent_tokens, reserved_tokens from tk_budget_usage "
            "where scope='team' and scope_id='capped'")).one()
        charged = conn.execute(text(
            "select coalesce(sum(total_tokens), 0) from tk_requests where team='capped'"
        )).scalar()
    assert int(row[0]) == int(charged)  # the window's total is the rows' total
    return int(row[0]), int(row[1])


def assert_limit_held(engine: Engine, statuses: list[int]) -> None:
    spent, held = window(engine)
    assert statuses.count(200) > 10, statuses  # the budget admitted real work ...
    assert statuses.count(429) >= 1, statuses  # ... and it was the binding constraint
    assert set(statuses) <= {200, 429}, statuses
    assert held == 0
    assert spent <= LIMIT, f"charged {spent} against a limit of {LIMIT}"
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from tk_reservations")).scalar() == 0
        calls = conn.execute(text(
            "select count(*) from tk_requests where team='capped' and outcome='ok' "
            "and mode='consensus'")).scalar()
    assert calls, "no consensus request was admitted: the test did not exercise fan-out"


def test_limit_holds_under_fan_out_sqlite(upstream: Server, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    with run_proxy(config(upstream, url), folder=tmp_path) as proxy:
        statuses = asyncio.run(waves([proxy]))
    engine = make_engine(url)
    try:
        assert_limit_held(engine, statuses)
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_limit_holds_under_fan_out_two_postgres_replicas(
    upstream: Server, tmp_path: Path, pg_url: str
) -> None:
    engine = make_engine(pg_url)
    try:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        with run_proxy(config(upstream, pg_url), folder=tmp_path / "a") as one, \
                run_proxy(config(upstream, pg_url), folder=tmp_path / "b") as two:
            statuses = asyncio.run(waves([one, two]))
        assert_limit_held(engine, statuses)
    finally:
        engine.dispose()
