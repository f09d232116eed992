"""The agent replay's protocol conversions keep what the figures read (pure functions, no servers).

A trace request converted to Anthropic Messages or OpenAI Responses and read
back must keep every tool output (text and call id: recall and the cache model
read them) and every tool call; the recorded answer served as JSON or SSE must
reach the client as the same message.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from agent_traces import load_runs
from replay_protocols import PROTOCOLS


def _shape(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    out = []
    for m in messages:
        calls = [(c["function"]["name"], json.loads(c["function"]["arguments"]))
                 for c in m.get("tool_calls") or ()]
        out.append((m["role"], m.get("content") or None, m.get("tool_call_id"), calls))
    return out


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_trace_requests_survive_the_round_trip(name: str) -> None:
    protocol = PROTOCOLS[name]
    run = load_runs(limit=1)[0]
    for k in (0, 1, len(run.calls) - 1):
        chat = run.request(k)
        for stream in (False, True):
            body = protocol.from_chat(chat, stream=stream)
            messages, tools = protocol.to_chat(body)
            assert _shape(messages) == _shape(chat["messages"])
            assert [t["function"]["name"] for t in tools] == ["bash"]
            assert tools[0]["function"]["parameters"] == chat["tools"][0]["function"]["parameters"]


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
@pytest.mark.parametrize("stream", [False, True])
def test_recorded_answers_reach_the_client_unchanged(name: str, stream: bool) -> None:
    protocol = PROTOCOLS[name]
    run = load_runs(limit=1)[0]
    usage = {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107}
    for k in range(len(run.calls)):
        want = run.answer(k)
        raw, content_type = protocol.answer(want, usage, "deepseek-chat", stream)
        assert content_type == ("text/event-stream" if stream else "application/json")
        got = protocol.read_answer(raw, stream)
        assert _shape([got])[0][1:] == _shape([want])[0][1:]
