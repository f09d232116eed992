"""Automatic prompt-cache breakpoints (Anthropic) and cache keys (OpenAI), opt-in per team.

The placement rules on real bodies first, then through a real `tokenomy serve`
in front of the loopback upstream, whose Anthropic side simulates the prompt
cache from the breakpoints it receives: the second turn of an agent loop reads
what the first wrote.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tokenomy.testing.processes import Server, run_proxy
from tokenomy.transcript.anthropic_cache import MAX_BREAKPOINTS, place_breakpoints

MODEL = "claude-sonnet-4-6"
SYSTEM = "You are a careful coding agent. Follow the house rules. " * 120  # > 1,024 tokens
TOOLS = [{"name": name, "description": f"The {name} tool.",
          "input_schema": {"type": "object", "properties": {"arg": {"type": "string"}}}}
         for name in ("Bash", "Read", "Grep")]
EPHEMERAL = {"type": "ephemeral"}


def loop_body(turns: int) -> dict[str, Any]:
    """An agent loop after `turns` tool calls: task, then (tool_use, tool_result) pairs."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Fix the failing test."}]
    for n in range(turns):
        messages.append({"role": "assistant", "content": [
            {"type": "thinking", "thinking": f"step {n}", "signature": f"EqQB{n}"},
            {"type": "tool_use", "id": f"toolu_{n}", "name": "Bash",
             "input": {"command": f"run {n}"}}]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": f"output {n}"}]})
    return {"model": MODEL, "max_tokens": 100, "system": SYSTEM, "tools": copy.deepcopy(TOOLS),
            "messages": messages}


def marks(body: dict[str, Any]) -> list[str]:
    """Where a body carries cache_control, as dotted paths."""
    found = []
    for i, tool in enumerate(body.get("tools") or ()):
        if "cache_control" in tool:
            found.append(f"tools.{i}")
    system = body.get("system")
    for j, block in enumerate(system if isinstance(system, list) else ()):
        if "cache_control" in block:
            found.append(f"system.{j}")
    for i, message in enumerate(body["messages"]):
        content = message["content"]
        for j, block in enumerate(content if isinstance(content, list) else ()):
            if "cache_control" in block:
                found.append(f"messages.{i}.content.{j}")
    return found


# -- where breakpoints go -------------------------------------------------------------

def test_breakpoints_at_tools_system_previous_turn_and_end() -> None:
    body = loop_body(2)
    before = copy.deepcopy(body)
    placed = place_breakpoints(body)
    assert placed is not None
    changes, where = placed
    assert where == ["tools.2", "system.0", "messages.2.content.0", "messages.4.content.0"]
    new = {**body, **changes}
    assert marks(new) == where and len(where) <= MAX_BREAKPOINTS
    assert new["system"] == [{"type": "text", "text": SYSTEM, "cache_control": EPHEMERAL}]
    assert body == before  # copy-on-write: the client's containers are untouched
    # Everything but the marks is the same request.
    for i, message in enumerate(new["messages"]):
        blocks, original = message["content"], before["messages"][i]["content"]
        if isinstance(original, str):
            assert blocks in (original, [{"type": "text", "text": original,
                                          "cache_control": EPHEMERAL}])
            continue
        assert [{k: v for k, v in b.items() if k != "cache_control"} for b in blocks] == \
            original


def test_the_first_turn_and_the_one_hour_ttl() -> None:
    body = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    placed = place_breakpoints(body, "1h")
    assert placed is not None
    changes, where = placed
    assert where == ["messages.0.content.0"]
    assert changes["messages"][0]["content"] == [
        {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]


def test_unmarkable_blocks_are_skipped() -> None:
    body = {"model": MODEL, "max_tokens": 5, "system": [{"type": "text", "text": ""}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "look"},
                                             {"type": "text", "text": ""}]}]}
    placed = place_breakpoints(body)
    assert placed is not None
    assert placed[1] == ["messages.0.content.0"]  # not the empty text, no empty system


@pytest.mark.parametrize("where", ["top", "tool", "system", "block", "nested"])
def test_a_clients_own_breakpoint_means_none_are_added(where: str) -> None:
    body = loop_body(1)
    body["system"] = [{"type": "text", "text": "sys"}]
    if where == "top":
        body["cache_control"] = EPHEMERAL
    elif where == "tool":
        body["tools"][0]["cache_control"] = EPHEMERAL
    elif where == "system":
        body["system"][0]["cache_control"] = EPHEMERAL
    elif where == "block":
        body["messages"][1]["content"][1]["cache_control"] = EPHEMERAL
    else:
        body["messages"][2]["content"][0]["content"] = [
            {"type": "text", "text": "out", "cache_control": EPHEMERAL}]
    assert place_breakpoints(body) is None


# -- through the proxy --------------------------------------------------------------------

@pytest.fixture(scope="module")
def proxy(upstream: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = {
        "backends": {
            "claude": {"kind": "anthropic", "base_url": upstream.url, "timeout": 30,
                       "max_retries": 0},
            "chat": {"kind": "openai", "base_url": upstream.v1, "timeout": 30,
                     "max_retries": 0},
        },
        "models": {MODEL: {"backend": "claude"}, "echo": {"backend": "chat",
                                                          "model": "echo-model"}},
        "teams": {"cachers": {"prompt_cache": {"enabled": True}}},
    }
    with run_proxy(config, folder=tmp_path_factory.mktemp("prompt-cache")) as server:
        yield server


def send(proxy: Server, path: str, body: dict[str, Any], team: str | None) -> httpx.Response:
    headers = {"x-tokenomy-team": team} if team else {}
    response = httpx.post(proxy.url + path, json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response


def received(upstream: Server) -> dict[str, Any]:
    return httpx.get(upstream.url + "/_last").json()


def test_off_unless_the_team_asks(proxy: Server, upstream_reset: Server) -> None:
    body = loop_body(1)
    send(proxy, "/v1/messages", body, None)
    assert received(upstream_reset) == body


def test_an_agent_loop_reads_what_its_previous_turn_wrote(proxy: Server,
                                                          upstream_reset: Server) -> None:
    first = send(proxy, "/v1/messages", loop_body(1), "cachers").json()["usage"]
    got = received(upstream_reset)
    assert marks(got) == ["tools.2", "system.0", "messages.0.content.0", "messages.2.content.0"]
    assert first["cache_read_input_tokens"] == 0 and first["cache_creation_input_tokens"] > 1024
    second = send(proxy, "/v1/messages", loop_body(2), "cachers").json()["usage"]
    assert marks(received(upstream_reset)) == [
        "tools.2", "system.0", "messages.2.content.0", "messages.4.content.0"]
    # Everything the first turn sent is read back; only the new turn is written.
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert 0 < second["cache_creation_input_tokens"] < first["cache_creation_input_tokens"]


def test_a_clients_breakpoints_pass_unchanged(proxy: Server, upstream_reset: Server) -> None:
    body = loop_body(1)
    body["system"] = [{"type": "text", "text": SYSTEM, "cache_control": EPHEMERAL}]
    send(proxy, "/v1/messages", body, "cachers")
    assert received(upstream_reset) == body


def chat(first: str, *more: str, key: str | None = None) -> dict[str, Any]:
    messages = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": first}]
    for n, text in enumerate(more):
        messages += [{"role": "assistant", "content": f"answer {n}"},
                     {"role": "user", "content": text}]
    body: dict[str, Any] = {"model": "echo", "messages": messages}
    if key:
        body["prompt_cache_key"] = key
    return body


def test_openai_requests_get_one_cache_key_per_team_and_conversation(
        proxy: Server, upstream_reset: Server) -> None:
    def key(body: dict[str, Any], team: str | None) -> str | None:
        send(proxy, "/v1/chat/completions", body, team)
        return received(upstream_reset).get("prompt_cache_key")

    one = key(chat("Plan the migration."), "cachers")
    assert one is not None and one.startswith("tokenomy-") and len(one) <= 64
    assert key(chat("Plan the migration.", "And the rollback?"), "cachers") == one
    assert key(chat("Write the release notes."), "cachers") not in (None, one)
    assert key(chat("Plan the migration."), "others") is None  # not opted in
    assert key(chat("Plan the migration.", key="client-key"), "cachers") == "client-key"


def test_a_misspelt_setting_fails_at_start() -> None:
    from tokenomy.config import Settings
    from tokenomy.engine import Engine
    from tokenomy.errors import ConfigError

    settings = Settings.model_validate({"ledger": {"enabled": False},
                                        "teams": {"x": {"prompt_cache": {"enabeld": True}}}})
    with pytest.raises(ConfigError, match="enabeld"):
        Engine(settings)


def test_responses_requests_get_the_key_too(proxy: Server, upstream_reset: Server) -> None:
    body = {"model": "echo", "instructions": "You are terse.",
            "input": [{"role": "user", "content": "Plan the migration."}]}
    send(proxy, "/v1/responses", body, "cachers")
    key = received(upstream_reset).get("prompt_cache_key")
    assert key is not None and key.startswith("tokenomy-")
    send(proxy, "/v1/responses", {**body, "input": [*body["input"], {
        "role": "user", "content": "And the rollback?"}]}, "cachers")
    assert received(upstream_reset)["prompt_cache_key"] == key
