"""Consensus: the Beta stopping rule's numbers, answer extraction, and escalation.

The backend here is a scripted terminal stage: it answers each call with the
next scripted completion and remembers the body it was sent.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tokenomy.call import Call, Result, TokenomyOptions, Usage
from tokenomy.config import Settings
from tokenomy.pipeline import Pipeline
from tokenomy.planners.consensus import (
    extract_answer,
    majority_probability,
    min_samples_to_stop,
    should_stop,
)
from tokenomy.planners.stage import PlanStage
from tokenomy.transcript.anthropic_messages import ANTHROPIC_MESSAGES
from tokenomy.transcript.openai_responses import OPENAI_RESPONSES


class ScriptedBackend:
    """A terminal stage answering from a script; usage is 10 prompt + 5 completion per call."""

    def __init__(self, answers: list[str], deliberate_answer: str = "The answer is 99."):
        self.answers = list(answers)
        self.deliberate_answer = deliberate_answer
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, call: Call) -> Result:
        self.bodies.append(call.body)
        if call.body.get("reasoning_effort") == "high" or "step by step" in str(call.body):
            text = self.deliberate_answer
        else:
            text = self.answers.pop(0)
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        response = {
            "id": "x",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": usage,
        }
        return Result(response=response, usage=Usage.from_openai(usage))


def test_beta_rule_stops_after_four_identical_answers_at_095_not_three() -> None:
    assert majority_probability(3, 0) == pytest.approx(0.9375)
    assert majority_probability(4, 0) == pytest.approx(0.96875)
    assert not should_stop(Counter({"42": 3}), 0.95)
    assert should_stop(Counter({"42": 4}), 0.95)
    assert min_samples_to_stop(0.95) == 4
    assert min_samples_to_stop(0.99) == 6  # six agreeing: 1 - 2**-7 = 0.992


def test_beta_rule_with_disagreement() -> None:
    # Beta(a+1, b+1) > 1/2 with a=4, b=1: P(Bin(6, 1/2) <= 4) = 57/64.
    assert majority_probability(4, 1) == pytest.approx(57 / 64)
    assert not should_stop(Counter({"a": 4, "b": 1}), 0.95)
    assert should_stop(Counter({"a": 7, "b": 1, "c": 1}), 0.95)  # P = 0.98
    assert not should_stop(Counter(), 0.95)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("so she has 18 left.\n#### 18", "18"),
        ("The answer is 1,234.", "1234"),
        ("We get \\boxed{7}", "7"),
        ("Answer: B", "B"),
        ("B. phenotype", "B"),
        ("Final answer: $18.0", "18"),
        ("Paris", "paris"),
    ],
)
def test_extract_answer(text: str, answer: str) -> None:
    assert extract_answer(text) == answer


def _consensus_call() -> Call:
    body = {"model": "gpt-5", "messages": [{"role": "user", "content": "What is 6*7?"}]}
    return Call(body=body, options=TokenomyOptions(reasoning="consensus"))


async def test_agreeing_samples_stop_after_four_and_charge_all_of_them() -> None:
    backend = ScriptedBackend(["The answer is 42."] * 10)
    pipeline = Pipeline([PlanStage(Settings())], backend)
    call = _consensus_call()
    result = await pipeline.run(call)
    assert len(backend.bodies) == 4
    assert all(body["reasoning_effort"] == "minimal" for body in backend.bodies)
    assert all(body["stream"] is False for body in backend.bodies)
    assert result.usage is not None and result.usage.total_tokens == 4 * 15
    assert result.response["usage"]["total_tokens"] == 60
    assert result.response["choices"][0]["message"]["content"] == "The answer is 42."
    assert call.mode == "consensus"
    assert call.headers["x-tokenomy-consensus"] == "samples=4; escalated=false"
    event = next(e for e in call.events if e.stage == "plan")
    assert event.detail["votes"] == {"42": 4} and event.detail["escalated"] is False


async def test_a_late_majority_needs_more_samples() -> None:
    backend = ScriptedBackend(["41", "42", "42", "42", "42", "42", "42", "42"])
    settings = Settings(planner={"consensus": {"max_samples": 8}})
    result = await Pipeline([PlanStage(settings)], backend).run(_consensus_call())
    # 4:1 -> 0.89, 5:1 -> 0.94, 6:1 -> 0.96: stops after seven samples.
    assert len(backend.bodies) == 7
    assert result.response["choices"][0]["message"]["content"] == "42"
    assert result.usage.total_tokens == 7 * 15


async def test_disagreement_escalates_to_deliberate() -> None:
    backend = ScriptedBackend(["1", "2", "3", "4", "5", "6"], deliberate_answer="It is 7.")
    call = _consensus_call()
    result = await Pipeline([PlanStage(Settings())], backend).run(call)
    assert len(backend.bodies) == 7  # six samples (the default maximum), then one escalation
    assert backend.bodies[-1]["reasoning_effort"] == "high"
    assert result.response["choices"][0]["message"]["content"] == "It is 7."
    assert result.usage.total_tokens == 7 * 15  # the samples are charged too
    assert call.headers["x-tokenomy-consensus"] == "samples=6; escalated=true"


@pytest.mark.parametrize(
    "extra",
    [{"stream": True}, {"tools": [{"type": "function", "function": {"name": "f"}}]}, {"n": 2}],
)
async def test_single_call_requests_never_run_consensus(extra: dict[str, Any]) -> None:
    backend = ScriptedBackend(["x"] * 10)
    call = _consensus_call()
    call.body.update(extra)
    await Pipeline([PlanStage(Settings())], backend).run(call)
    assert len(backend.bodies) == 1
    assert call.mode == "deliberate"
    assert next(e for e in call.events if e.stage == "plan").detail["reason"] == "single-call"


def _anthropic_answer(text: str) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 6, "cache_read_input_tokens": 4, "output_tokens": 5}}


def _responses_answer(text: str) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "status": "completed", "output": [
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": text, "annotations": []}]}],
        "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4},
                  "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": 15}}


@pytest.mark.parametrize("protocol", [ANTHROPIC_MESSAGES, OPENAI_RESPONSES],
                         ids=["messages", "responses"])
async def test_consensus_votes_and_reports_in_the_calls_own_protocol(protocol: Any) -> None:
    """Answers are read and usage is written in the request's protocol: the votes count
    (four agreeing samples stop the run) and the client gets a valid Anthropic or
    Responses body whose usage covers every sample."""
    sent: list[dict[str, Any]] = []

    async def backend(call: Call) -> Result:
        sent.append(call.body)
        shape = _anthropic_answer if protocol is ANTHROPIC_MESSAGES else _responses_answer
        response = shape("The answer is 42.")
        return Result(response=response, usage=protocol.response_usage(response))

    if protocol is ANTHROPIC_MESSAGES:
        body = {"model": "claude-sonnet-4-5", "max_tokens": 512,
                "messages": [{"role": "user", "content": "What is 6*7?"}]}
    else:
        body = {"model": "gpt-5", "input": "What is 6*7?"}
    call = Call(body=body, protocol=protocol, options=TokenomyOptions(reasoning="consensus"))
    result = await Pipeline([PlanStage(Settings())], backend).run(call)
    assert call.mode == "consensus" and len(sent) == 4
    assert call.headers["x-tokenomy-consensus"] == "samples=4; escalated=false"
    assert protocol.response_text(result.response) == "The answer is 42."
    reported = protocol.response_usage(result.response)
    assert reported == result.usage
    assert (reported.prompt_tokens, reported.cached_tokens, reported.completion_tokens) == (
        40, 16, 20)
    assert "choices" not in result.response and "prompt_tokens" not in result.response["usage"]
