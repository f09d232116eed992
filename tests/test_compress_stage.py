"""The compress stage in a real pipeline, and through a real `tokenomy serve`."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import openai
import pytest

from tokenomy.call import Call, CompressOptions, Result, TokenomyOptions
from tokenomy.compressors.settings import CompressionSettings
from tokenomy.compressors.stage import CompressStage
from tokenomy.config import Settings
from tokenomy.errors import ConfigError
from tokenomy.pipeline import Pipeline
from tokenomy.testing.processes import Server
from tokenomy.tokenizers import count_messages

DATA = Path(__file__).resolve().parent.parent / "data" / "qa_passages.dev.jsonl"
ROWS = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()[:30]]
MODEL = "gpt-4o"
SYSTEM = "You answer questions from the passages. Be brief.\nNever invent facts."
ITEM = ROWS[0]  # who directed in the heat of the night? -> Ray Chen


def _messages() -> list[dict]:
    docs = "\n\n".join(f"[{i + 1}] {r['passage']}" for i, r in enumerate(ROWS[:12]))
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{docs}\n\nQuestion: {ITEM['question']}"},
    ]


class Backend:
    """The terminal: records what would have been sent upstream."""

    def __init__(self) -> None:
        self.seen: list[Call] = []

    async def __call__(self, call: Call) -> Result:
        self.seen.append(call)
        return Result(response={"choices": []})


def _call(options: CompressOptions | None = None, degrade: bool = False) -> Call:
    call = Call(body={"model": MODEL, "messages": _messages()},
                options=TokenomyOptions(compress=options))
    call.degrade = degrade
    return call


async def test_off_by_default_on_when_asked():
    backend = Backend()
    pipeline = Pipeline([CompressStage()], backend)
    plain = _call()
    await pipeline.run(plain)
    assert plain.body["messages"] == _messages() and not plain.events

    asked = _call(CompressOptions(target_ratio=4))
    await pipeline.run(asked)
    messages = backend.seen[-1].body["messages"]
    assert messages[0]["content"] == SYSTEM  # stable prefix, byte-identical
    assert messages[1]["content"].endswith(f"Question: {ITEM['question']}")
    assert "Ray Chen" in messages[1]["content"]
    assert asked.prompt_tokens_sent == count_messages(messages, MODEL)
    assert asked.prompt_tokens_original == count_messages(_messages(), MODEL)
    assert asked.prompt_tokens_sent < asked.prompt_tokens_original / 2.5
    techniques = [e.technique for e in asked.events if e.stage == "compress"]
    assert "extractive" in techniques
    saved = sum(e.saved for e in asked.events)
    # Per-technique savings add up to the whole saving (within chat framing tokens).
    assert abs(saved - (asked.prompt_tokens_original - asked.prompt_tokens_sent)) <= 8


async def test_disabled_request_and_short_prompts_pass_untouched():
    backend = Backend()
    stage = CompressStage({"enabled": True})
    call = _call(CompressOptions(enabled=False))
    await Pipeline([stage], backend).run(call)
    assert call.body["messages"] == _messages() and not call.events

    short = Call(body={"model": MODEL, "messages": [{"role": "user", "content": "Hi there!"}]},
                 options=TokenomyOptions(compress=CompressOptions(target_ratio=4)))
    await Pipeline([stage], backend).run(short)
    assert short.body["messages"] == [{"role": "user", "content": "Hi there!"}]
    assert short.events[0].technique == "skip"


async def test_degrade_compresses_harder_even_unasked():
    backend = Backend()
    stage = CompressStage({"target_ratio": 2.0, "degrade_factor": 2.0})
    normal, pressed = _call(CompressOptions()), _call(degrade=True)
    await Pipeline([stage], backend).run(normal)
    await Pipeline([stage], backend).run(pressed)
    assert pressed.events and pressed.prompt_tokens_sent < normal.prompt_tokens_sent * 0.7


async def test_team_settings_turn_compression_on():
    stage = CompressStage.from_settings(
        Settings(teams={"search": {"tokens": 1000, "compression": {"enabled": True}}}))
    call = _call()
    call.identity.team = "search"
    assert stage.plan(call) is not None
    call.identity.team = "ads"
    assert stage.plan(call) is None
    with pytest.raises(ConfigError):
        CompressStage.from_settings(Settings(teams={"x": {"compression": {"ratio": 2}}}))
    with pytest.raises(ConfigError):
        CompressStage.from_settings(Settings(compression={"min_tokens": -1}))


async def test_scoring_does_not_block_the_event_loop():
    backend = Backend()
    pipeline = Pipeline([CompressStage()], backend)
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    # Fresh text so the embedder really runs (no cache hits).
    call = _call(CompressOptions(target_ratio=3))
    docs = "\n\n".join(r["passage"] for r in ROWS[12:30])
    call.body["messages"][1]["content"] = f"{docs}\n\nQuestion: {ROWS[20]['question']}"
    await pipeline.run(call)
    done.set()
    await task
    assert gaps and max(gaps) < 0.5, max(gaps)


async def test_concurrent_calls_match_sequential_ones():
    stage = CompressStage()
    questions = [r["question"] for r in ROWS[:4]]

    def call_for(q: str) -> Call:
        call = _call(CompressOptions(target_ratio=4))
        call.body["messages"][1]["content"] = call.body["messages"][1]["content"].replace(
            ITEM["question"], q)
        return call

    sequential = []
    for q in questions:
        backend = Backend()
        await Pipeline([stage], backend).run(call_for(q))
        sequential.append(backend.seen[-1].body["messages"])
    backend = Backend()
    pipeline = Pipeline([stage], backend)
    calls = [call_for(q) for q in questions]
    await asyncio.gather(*(pipeline.run(c) for c in calls))
    assert [c.body["messages"] for c in calls] == sequential


def test_settings_validate_their_section():
    with pytest.raises(ValueError):
        CompressionSettings.model_validate({"target_ratio": 0.5})
    with pytest.raises(ValueError):
        CompressionSettings.model_validate({"unknown": 1})


@pytest.fixture()
def client(echo_proxy: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=echo_proxy.v1, api_key="unused", max_retries=0)


@pytest.mark.slow
def test_through_the_proxy(client: openai.OpenAI, upstream_reset: Server) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="echo", messages=_messages(),
        extra_body={"tokenomy": {"compress": {"target_ratio": 4}}},
    )
    completion = raw.parse()
    original = int(raw.headers["x-tokenomy-prompt-tokens-original"])
    sent = int(raw.headers["x-tokenomy-prompt-tokens-sent"])
    assert sent < original / 2.5
    # The backend's own count agrees (it uses o200k; "echo-model" counts as cl100k here).
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == pytest.approx(sent, rel=0.02)
    last = httpx.get(upstream_reset.url + "/_last").json()
    assert "tokenomy" not in last
    assert last["messages"][0] == {"role": "system", "content": SYSTEM}
    assert ITEM["question"] in last["messages"][1]["content"]
    assert "Ray Chen" in last["messages"][1]["content"]
