"""PlanStage: in a pipeline with a recording backend, and end to end through `tokenomy serve`."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tokenomy.call import Call, Result, TokenomyOptions, Usage
from tokenomy.config import Settings
from tokenomy.errors import BadRequest, ConfigError
from tokenomy.pipeline import Pipeline
from tokenomy.planners.stage import PlanStage
from tokenomy.testing.processes import Server, echo_config, run_proxy

HARD = (
    "A baker makes 3 batches of 24 cookies, then, after selling 40% of them at $2 each, gives "
    "a dozen away, and, with the money, buys flour at $4 per bag. How many bags can she buy, "
    "and how many cookies are left?"
)


class Recorder:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, call: Call) -> Result:
        self.bodies.append(call.body)
        usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        return Result(response={"choices": [{"message": {"content": "ok"}}], "usage": usage},
                      usage=Usage.from_openai(usage))


def _call(model: str, content: Any = HARD, reasoning: str | None = None, **body: Any) -> Call:
    messages = [{"role": "system", "content": "You are exact."},
                {"role": "user", "content": content}]
    return Call(body={"model": model, "messages": messages, **body},
                options=TokenomyOptions(reasoning=reasoning))


async def _run(call: Call, settings: Settings | None = None) -> Recorder:
    recorder = Recorder()
    await Pipeline([PlanStage(settings or Settings())], recorder).run(call)
    return recorder


async def test_no_reasoning_asked_leaves_the_call_alone() -> None:
    call = _call("gpt-5")
    recorder = await _run(call)
    assert recorder.bodies[0] == call.body and "reasoning_effort" not in call.body
    assert call.mode is None and not call.events


async def test_a_fixed_mode_sets_the_knob_header_and_event() -> None:
    call = _call("gpt-5", reasoning="deliberate")
    recorder = await _run(call)
    assert recorder.bodies[0]["reasoning_effort"] == "high"
    assert call.mode == "deliberate" and call.headers["x-tokenomy-mode"] == "deliberate"
    event = call.events[-1]
    assert event.stage == "plan" and event.technique == "reasoning"
    assert event.detail["mode"] == "deliberate" and 0 <= event.detail["difficulty"] <= 1
    assert event.detail["applied"] == {"reasoning_effort": "high"}


async def test_client_parameters_are_never_overwritten() -> None:
    call = _call("gpt-5", reasoning="deliberate", reasoning_effort="low")
    recorder = await _run(call)
    assert recorder.bodies[0]["reasoning_effort"] == "low"
    call = _call("local", reasoning="direct", max_tokens=77)
    recorder = await _run(call)
    assert recorder.bodies[0]["max_tokens"] == 77


async def test_instructions_go_at_the_end_so_the_prefix_stays_cacheable() -> None:
    call = _call("local", content=[{"type": "text", "text": "Name a colour."}], reasoning="brief")
    original_system = dict(call.messages[0])
    recorder = await _run(call)
    sent = recorder.bodies[0]
    assert sent["messages"][0] == original_system
    parts = sent["messages"][1]["content"]
    assert parts[0] == {"type": "text", "text": "Name a colour."}
    assert "words" in parts[-1]["text"]
    assert "max_tokens" not in sent  # asking for a mode is not asking for a cap


async def test_prompt_tokens_sent_counts_the_appended_instruction() -> None:
    call = _call("gpt-4o", reasoning="direct")
    call.prompt_tokens_original = 100
    await _run(call)
    event = call.events[-1]
    assert event.tokens_before == 100 and call.prompt_tokens_sent == event.tokens_after
    assert 100 < call.prompt_tokens_sent < 130


async def test_team_policy_auto_and_budget_pressure() -> None:
    settings = Settings(planner={"reasoning": "auto"})
    normal = _call("gpt-5")
    await _run(normal, settings)
    pressured = _call("gpt-5")
    pressured.degrade = True
    await _run(pressured, settings)
    order = ["direct", "brief", "consensus", "deliberate"]
    assert normal.mode is not None and pressured.mode is not None
    assert order.index(pressured.mode) <= order.index(normal.mode)
    assert pressured.events[-1].detail["degrade"] is True


ESSAY = "Write a detailed 3000-word essay on the history of the printing press."


async def test_auto_never_makes_a_model_without_a_knob_worse() -> None:
    """Issue 15, item 10: gpt-4o has no reasoning knob; `auto` sends it what the client
    sent (no "Answer directly" appended, no max_tokens: 1024 added)."""
    for model in ("gpt-4o", "local", "claude-3-5-haiku-20241022"):
        call = _call(model, content=ESSAY, reasoning="auto")
        sent = dict(call.body)
        recorder = await _run(call)
        assert recorder.bodies[0] == sent, model
        assert call.mode is None and "x-tokenomy-mode" not in call.headers
        assert call.prompt_tokens_sent == call.prompt_tokens_original
        assert call.events[-1].detail["reason"] == "no reasoning knob: unchanged"
    # The team's own `[planner] reasoning = "auto"` behaves the same.
    call = _call("gpt-4o", content=ESSAY)
    recorder = await _run(call, Settings(planner={"reasoning": "auto"}))
    assert "max_tokens" not in recorder.bodies[0] and call.mode is None


async def test_instruction_modes_are_a_teams_choice_and_add_no_cap() -> None:
    settings = Settings(planner={"reasoning": "auto", "instructions": True})
    call = _call("gpt-4o", content="Say hi to Bo.")
    recorder = await _run(call, settings)
    assert call.mode == "direct"
    assert "directly" in recorder.bodies[0]["messages"][-1]["content"]
    assert "max_tokens" not in recorder.bodies[0]
    # An output cap only with cap_output, and never below the client's own.
    capped = Settings(planner={"reasoning": "auto", "instructions": True, "cap_output": True})
    recorder = await _run(_call("gpt-4o", content="Say hi to Bo."), capped)
    assert recorder.bodies[0]["max_tokens"] == 1024
    recorder = await _run(_call("gpt-4o", content="Say hi to Bo.", max_tokens=5000), capped)
    assert recorder.bodies[0]["max_tokens"] == 5000


async def test_a_models_knob_never_lowers_the_clients_max_tokens() -> None:
    for model, reasoning in (("claude-sonnet-4-5", "deliberate"), ("gpt-5", "deliberate"),
                             ("gpt-4o", "brief"), ("local", "direct")):
        recorder = await _run(_call(model, reasoning=reasoning, max_tokens=3000))
        assert recorder.bodies[0]["max_tokens"] == 3000, model


async def test_bad_request_and_bad_config_errors() -> None:
    with pytest.raises(BadRequest) as error:
        await _run(_call("gpt-5", reasoning="ponder"))
    assert error.value.param == "tokenomy.reasoning"
    with pytest.raises(ConfigError, match="team 'ops'"):
        PlanStage(Settings(teams={"ops": {"planner": {"thresholds": {"direct": 2}}}}))


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def plan_proxy(upstream: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    thinker = {"backend": "test", "model": "gpt-5-mini"}
    claude = {"backend": "test", "model": "claude-opus-4-7"}
    config = echo_config(upstream.v1, models={"thinker": thinker, "claude": claude})
    folder = Path(tmp_path_factory.mktemp("plan-proxy"))
    with run_proxy(config, folder=folder) as proxy:
        proxy.folder = folder  # type: ignore[attr-defined]
        yield proxy


def _ledger_row(proxy: Server, request_id: str) -> dict[str, Any]:
    """The proxy's own SQLite ledger row for one request (written in the background)."""
    database = proxy.folder / "ledger.db"  # type: ignore[attr-defined]
    deadline = time.monotonic() + 15
    while True:
        with contextlib.closing(sqlite3.connect(database)) as connection:
            connection.row_factory = sqlite3.Row
            row = connection.execute(
                "SELECT mode, total_tokens FROM tk_requests WHERE request_id = ?", (request_id,)
            ).fetchone()
        if row is not None or time.monotonic() > deadline:
            assert row is not None, f"no ledger row for {request_id}"
            return dict(row)
        time.sleep(0.1)


def _post(proxy: Server, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(proxy.v1 + "/chat/completions", json=body, timeout=60)


def test_proxy_sets_the_mode_header_and_the_backend_gets_the_knob(
    plan_proxy: Server, upstream: Server
) -> None:
    body = {"model": "thinker", "messages": [{"role": "user", "content": HARD}],
            "tokenomy": {"reasoning": "deliberate"}}
    response = _post(plan_proxy, body)
    assert response.status_code == 200, response.text
    assert response.headers["x-tokenomy-mode"] == "deliberate"
    sent = httpx.get(upstream.url + "/_last").json()
    assert sent["reasoning_effort"] == "high" and "tokenomy" not in sent
    # auto on an easy question picks the cheapest level the model takes
    easy = {"model": "thinker", "messages": [{"role": "user", "content": "Say hi to Bo."}],
            "tokenomy": {"reasoning": "auto"}}
    response = _post(plan_proxy, easy)
    assert response.headers["x-tokenomy-mode"] == "direct"
    assert httpx.get(upstream.url + "/_last").json()["reasoning_effort"] == "minimal"
    # nothing asked: no header, nothing added
    plain = {"model": "thinker", "messages": [{"role": "user", "content": "Hi"}]}
    response = _post(plan_proxy, plain)
    assert "x-tokenomy-mode" not in response.headers
    assert "reasoning_effort" not in httpx.get(upstream.url + "/_last").json()


def test_proxy_sends_claude_4_7_adaptive_thinking_and_keeps_the_clients_output_config(
    plan_proxy: Server, upstream: Server
) -> None:
    body = {"model": "claude", "messages": [{"role": "user", "content": HARD}],
            "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
            "tokenomy": {"reasoning": "brief"}}
    response = _post(plan_proxy, body)
    assert response.status_code == 200, response.text
    assert response.headers["x-tokenomy-mode"] == "brief"
    sent = httpx.get(upstream.url + "/_last").json()
    assert sent["thinking"] == {"type": "adaptive"}
    assert sent["output_config"] == {**body["output_config"], "effort": "low"}
    assert "budget_tokens" not in str(sent)  # Opus 4.7 rejects fixed budgets with a 400


def test_proxy_consensus_stops_on_agreement_and_bills_every_sample(
    plan_proxy: Server, upstream: Server
) -> None:
    before = httpx.get(upstream.url + "/_stats").json()["count"]
    body = {"model": "echo", "messages": [{"role": "user", "content": "What is 6 times 7?"}],
            "tokenomy": {"reasoning": "consensus"}}
    response = _post(plan_proxy, body)
    assert response.status_code == 200, response.text
    after = httpx.get(upstream.url + "/_stats").json()["count"]
    assert after - before == 4  # the echo backend always agrees with itself
    assert response.headers["x-tokenomy-mode"] == "consensus"
    assert response.headers["x-tokenomy-consensus"] == "samples=4; escalated=false"
    usage = response.json()["usage"]
    single = _post(plan_proxy, {**body, "tokenomy": {"reasoning": "direct"}}).json()["usage"]
    assert usage["total_tokens"] == 4 * single["total_tokens"]
    # The ledger charges all four samples and records the mode.
    row = _ledger_row(plan_proxy, response.headers["x-tokenomy-request-id"])
    assert row == {"mode": "consensus", "total_tokens": usage["total_tokens"]}


def test_proxy_rejects_an_unknown_mode(plan_proxy: Server) -> None:
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}],
            "tokenomy": {"reasoning": "ponder"}}
    response = _post(plan_proxy, body)
    assert response.status_code == 400
    assert "ponder" in response.json()["error"]["message"]
