"""The identify + budget stages in a real pipeline over a real SQLite ledger.

The terminal stage is a small deterministic backend written here (the thing
under test is the budget stage, not a backend).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from budget_support import sqlite_url
from tokenomy.budgets.service import Budgets
from tokenomy.budgets.stage import BudgetStage, estimate_prompt_tokens
from tokenomy.call import Call, Credentials, Result, TokenomyOptions
from tokenomy.config import Settings
from tokenomy.errors import (
    BudgetExceeded,
    Forbidden,
    TokenomyError,
    Unauthorized,
    UpstreamError,
)
from tokenomy.identify import IdentifyStage
from tokenomy.pipeline import Pipeline


def _settings(tmp_path: Path, teams: dict[str, Any] | None = None, **ledger: Any) -> Settings:
    return Settings(ledger={"url": sqlite_url(tmp_path), **ledger}, teams=teams or {})


async def backend(call: Call) -> Result:
    """Answers with fixed usage: prompt 50, completion 10; 'fail' in the text -> 502."""
    text_in = str(call.messages[-1].get("content"))
    if "fail" in text_in:
        raise UpstreamError("backend down")
    call.upstream_model = call.model
    call.backend = "test"
    usage = {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}
    if call.stream:

        async def chunks():
            for word in ["hello", " world"]:
                yield {"choices": [{"index": 0, "delta": {"content": word}}]}
                await asyncio.sleep(0)
            yield {"choices": [], "usage": usage}

        return Result(chunks=chunks())
    message = {"role": "assistant", "content": "hello world"}
    return Result(response={"choices": [{"index": 0, "message": message}], "usage": usage})


class Compressor:
    """Stands in for a compression stage: records a saving the ledger must attribute."""

    name = "compress"

    async def __call__(self, call: Call, next):
        call.record("compress", technique="extractive", tokens_before=80, tokens_after=50)
        call.prompt_tokens_original = 50  # what this stand-in "sends" (the stream estimate)
        return await next(call)


@pytest.fixture
def make(tmp_path: Path):
    made: list[Budgets] = []

    def build(
        teams: dict[str, Any] | None = None, terminal=backend, **ledger: Any
    ) -> tuple[Budgets, Pipeline]:
        budgets = Budgets.from_settings(_settings(tmp_path, teams, **ledger), background=False)
        made.append(budgets)
        stages = [IdentifyStage(budgets), BudgetStage(budgets), Compressor()]
        return budgets, Pipeline(stages, terminal)

    yield build
    for budgets in made:
        budgets.close()


def _call(
    content: str = "hi", team: str | None = None, key: str | None = None, **body: Any
) -> Call:
    call = Call(
        body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], **body},
        options=TokenomyOptions(team=team, step="draft"),
    )
    if key:
        call.credentials = Credentials(api_key=key)
    return call


def _rows(budgets: Budgets) -> list[dict[str, Any]]:
    with budgets.ledger.reader.connect() as conn:
        return [
            dict(r) for r in conn.execute(text("select * from tk_requests order by id")).mappings()
        ]


async def test_dev_mode_records_one_row_with_cost_and_savings(make) -> None:
    budgets, pipeline = make()
    call = _call(team="research")
    await pipeline.run(call)
    [row] = _rows(budgets)
    assert row["team"] == "research" and row["step"] == "draft" and row["outcome"] == "ok"
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (50, 10, 60)
    # gpt-4o-mini from litellm's cost map: 0.15$/M in, 0.60$/M out.
    assert row["cost_usd"] == pytest.approx(50 * 0.15e-6 + 10 * 0.6e-6)
    assert row["saved_tokens"] == 30 and row["saved_usd"] == pytest.approx(30 * 0.15e-6)
    assert row["prompt_tokens_original"] == call.prompt_tokens_original > 0


async def test_price_override_in_config(make) -> None:
    prices = {"gpt-4o-mini": {"input_cost_per_token": 1.0, "output_cost_per_token": 2.0}}
    budgets, pipeline = make(prices=prices)
    await pipeline.run(_call())
    assert _rows(budgets)[0]["cost_usd"] == pytest.approx(50 * 1.0 + 10 * 2.0)


async def test_hard_limit_refuses_with_429_and_records_refusal(make) -> None:
    budgets, pipeline = make({"small": {"tokens": 100, "window": "1d"}})
    await pipeline.run(_call(team="small", max_tokens=20))  # reserves ~30, spends 60
    with pytest.raises(BudgetExceeded) as info:
        await pipeline.run(_call(team="small", max_tokens=50))
    err = info.value.to_dict()["error"]
    assert err["type"] == "budget_exceeded" and err["scope"] == "team"
    assert "team 'small'" in err["message"] and "100 tokens per 1d" in err["message"]
    assert err["spent_tokens"] == 60 and err["resets_at"].endswith("T00:00:00Z")
    outcomes = [(r["outcome"], r["status"]) for r in _rows(budgets)]
    assert outcomes == [("ok", 200), ("refused", 429)]


async def test_soft_limit_degrades_and_warns(make) -> None:
    teams = {
        "thrifty": {"tokens": 1000, "soft_limit": 0.05, "soft_action": "degrade"},
        "chatty": {"tokens": 1000, "soft_limit": 0.05, "soft_action": "warn"},
    }
    _, pipeline = make(teams)
    call = _call(team="thrifty", max_tokens=100)
    await pipeline.run(call)
    assert call.degrade is True
    call = _call(team="chatty", max_tokens=100)
    await pipeline.run(call)
    assert call.degrade is False
    assert "team 'chatty' at" in call.headers["x-tokenomy-budget-warning"]


async def test_stream_settles_at_end(make) -> None:
    budgets, pipeline = make({"s": {"tokens": 10_000}})
    # No max_tokens: gpt-4o-mini's documented 16,384 output tokens would be reserved.
    result = await pipeline.run(_call(team="s", stream=True, max_tokens=1000))
    assert budgets.ledger.open_reservations() == 1  # held while the stream runs
    chunks = [c async for c in result.chunks]
    assert len(chunks) == 3
    [row] = _rows(budgets)
    assert row["stream"] and row["total_tokens"] == 60 and row["outcome"] == "ok"
    assert budgets.ledger.open_reservations() == 0


async def test_stream_client_disconnect_charges_what_streamed(make) -> None:
    budgets, pipeline = make({"s": {"tokens": 10_000}})
    result = await pipeline.run(_call(team="s", stream=True, max_tokens=1000))
    first = await anext(result.chunks)
    assert first["choices"][0]["delta"]["content"] == "hello"
    await result.chunks.aclose()  # the client went away
    [row] = _rows(budgets)
    assert row["outcome"] == "cancelled" and row["status"] == 499
    assert row["completion_tokens"] == 1 and row["prompt_tokens"] == 50
    assert budgets.ledger.open_reservations() == 0


async def test_backend_error_releases_and_records(make) -> None:
    budgets, pipeline = make({"e": {"tokens": 300}})
    with pytest.raises(UpstreamError):
        await pipeline.run(_call("please fail", team="e", max_tokens=250))
    [row] = _rows(budgets)
    assert (row["outcome"], row["status"], row["total_tokens"]) == ("error", 502, 0)
    # The whole budget is available again.
    await pipeline.run(_call(team="e", max_tokens=250))


async def test_keys_auth_401_403_and_key_budget(make) -> None:
    budgets, pipeline = make()
    from tokenomy.budgets.settings import BudgetSpec

    info, key = budgets.keys.create("alpha", budget=BudgetSpec(tokens=100, window="1h"))
    with pytest.raises(Unauthorized):
        await pipeline.run(_call())  # auth is on now that a key exists
    with pytest.raises(Unauthorized):
        await pipeline.run(_call(key=key[:-2] + "xx"))
    with pytest.raises(Forbidden) as forbidden:
        await pipeline.run(_call(key=key, team="beta"))
    assert "team 'alpha'" in forbidden.value.message
    call = _call(key=key, max_tokens=20)
    await pipeline.run(call)
    assert (call.identity.team, call.identity.key_id) == ("alpha", info.key_id)
    with pytest.raises(BudgetExceeded) as info_exc:
        await pipeline.run(_call(key=key, max_tokens=60))
    assert info_exc.value.extra["scope"] == "key"
    assert budgets.keys.revoke(info.key_id)
    with pytest.raises(Unauthorized):
        await pipeline.run(_call(key=key))


async def spend_the_estimate(call: Call) -> Result:
    """A backend that uses every token the call was allowed, after a pause."""
    await asyncio.sleep(0.01)
    prompt, completion = call.prompt_tokens_original or 0, call.body["max_tokens"]
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    return Result(response={"choices": [], "usage": usage})


async def test_two_hundred_concurrent_calls_admit_ten(make) -> None:
    # Each call estimates (and spends) exactly 100 tokens: the budget admits ten.
    budgets, pipeline = make({"burst": {"tokens": 1000, "window": "1d"}}, spend_the_estimate)
    max_tokens = 100 - await estimate_prompt_tokens(_call(team="burst"))

    async def one() -> bool:
        try:
            await pipeline.run(_call(team="burst", max_tokens=max_tokens))
            return True
        except BudgetExceeded:
            return False

    wins = sum(await asyncio.gather(*(one() for _ in range(200))))
    assert wins == 10
    rows = _rows(budgets)
    assert len(rows) == 200 and sum(r["outcome"] == "ok" for r in rows) == wins


async def test_ledger_failure_fails_closed_before_and_open_after(make) -> None:
    budgets, pipeline = make({"guarded": {"tokens": 10_000}})
    with budgets.ledger.engine.begin() as conn:
        conn.execute(text("DROP TABLE tk_budget_usage"))
    # A budget that cannot be checked refuses the call (503), it is never sent.
    with pytest.raises(TokenomyError) as info:
        await pipeline.run(_call(team="guarded"))
    assert info.value.status == 503 and info.value.code == "ledger_unavailable"
    # A failure to record after the backend answered still returns the answer.
    with budgets.ledger.engine.begin() as conn:
        conn.execute(text("DROP TABLE tk_requests"))
    result = await pipeline.run(_call(team="free"))
    assert result.response is not None and result.response["usage"]["total_tokens"] == 60


def test_config_typos_name_the_key() -> None:
    from tokenomy.budgets.settings import BudgetConfig
    from tokenomy.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        BudgetConfig.from_settings(Settings(teams={"research": {"tokns": 5}}))
    assert "teams.research.tokns" in info.value.message
    with pytest.raises(ConfigError) as info:
        BudgetConfig.from_settings(Settings(teams={"research": {"tokens": 5, "window": "2w"}}))
    assert "teams.research.window" in info.value.message
