"""The codify stage: schemas pasted as text become types; real tool fields stay as sent."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import httpx

from tokenomy.call import Call, Result
from tokenomy.codify.stage import CodifyStage
from tokenomy.codify.typed import render_tools
from tokenomy.config import Settings
from tokenomy.pipeline import Pipeline
from tokenomy.testing.processes import Server
from tokenomy.tokenizers import count_messages

DATA = Path(__file__).resolve().parents[1] / "data" / "codify"
TOOLS = json.loads((DATA / "tools" / "github_stripe_tools.json").read_text())
SCHEMA = json.loads((DATA / "schemas" / "openai_chat_completion.json").read_text())
ROWS = json.loads((DATA / "outputs" / "litellm_model_prices.json").read_text())[:12]
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {
    "type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}}}


def body() -> dict:
    system = ("You are an agent. You can call these tools:\n"
              + json.dumps(TOOLS, indent=2) + "\nReply in JSON.")
    return {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": system},
            {"role": "developer", "content": [{"type": "text", "text": "Validate responses "
                                               "against:\n```json\n"
                                               + json.dumps(SCHEMA, indent=2) + "\n```"}]},
            {"role": "user", "content": "Is this schema right?\n" + json.dumps(
                RESPONSE_FORMAT["json_schema"]["schema"], indent=2)
                + "\nAnd these rows?\n" + json.dumps(ROWS[:3], indent=2)},
            {"role": "assistant", "content": "I'll look up prices.\n" + json.dumps(ROWS)},
            {"role": "tool", "tool_call_id": "c1", "content": json.dumps(ROWS, indent=2)},
        ],
        "tools": copy.deepcopy(TOOLS),
        "response_format": copy.deepcopy(RESPONSE_FORMAT),
    }


async def run(stage: CodifyStage, call: Call) -> Call:
    seen: list[Call] = []

    async def terminal(c: Call) -> Result:
        seen.append(c)
        return Result(response={"choices": []})

    await Pipeline([stage], terminal).run(call)
    return seen[0]


async def test_stage_types_schemas_and_leaves_tool_fields_untouched() -> None:
    original = body()
    call = Call(body=copy.deepcopy(original))
    sent = await run(CodifyStage(Settings()), call)
    messages = sent.body["messages"]
    assert sent.body["tools"] == original["tools"]
    assert json.dumps(sent.body["response_format"]) == json.dumps(original["response_format"])
    assert render_tools(TOOLS) in messages[0]["content"]
    assert messages[0]["content"].endswith("\nReply in JSON.")
    assert "```ts\n// Represents a chat completion" in messages[1]["content"][0]["text"]
    # A user's JSON stays JSON: the schema is left as written, data only minified.
    user = messages[2]["content"]
    assert json.dumps(RESPONSE_FORMAT["json_schema"]["schema"], indent=2) in user
    assert user.endswith("And these rows?\n" + json.dumps(ROWS[:3], separators=(",", ":")))
    assert messages[3] == original["messages"][3]  # assistant turns are history, left alone
    assert messages[4]["content"].startswith("[12]{model,litellm_provider,")
    events = {e.technique: e for e in sent.events}
    assert set(events) == {"typed_schema", "json_compact"}
    typed = events["typed_schema"]
    assert typed.detail["kinds"] == {"tools": 1, "schema": 1}
    assert typed.tokens_after < 0.6 * typed.tokens_before
    assert sent.prompt_tokens_sent == count_messages(messages, "gpt-4o", tools=TOOLS)
    assert sent.prompt_tokens_sent < 0.6 * sent.prompt_tokens_original


async def test_stage_is_deterministic_so_prompt_caches_keep_hitting() -> None:
    first = await run(CodifyStage(Settings()), Call(body=body()))
    second = await run(CodifyStage(Settings()), Call(body=body()))
    assert first.body["messages"][0] == second.body["messages"][0]


async def test_stage_can_be_switched_off_per_technique() -> None:
    settings = Settings(codify={"json_data": False})
    sent = await run(CodifyStage(settings), Call(body=body()))
    assert [e.technique for e in sent.events] == ["typed_schema"]
    assert sent.body["messages"][4] == body()["messages"][4]
    off = await run(CodifyStage(Settings(codify={"enabled": False})),
                    Call(body=body()))
    assert off.body == body() and not off.events


async def test_small_or_plain_prompts_pass_through() -> None:
    plain = {"model": "gpt-4o", "messages": [{"role": "user", "content": 'say {"a": 1}'}]}
    sent = await run(CodifyStage(Settings()), Call(body=copy.deepcopy(plain)))
    assert sent.body == plain and not sent.events
    assert sent.prompt_tokens_sent == sent.prompt_tokens_original  # nothing edited


def test_proxy_sends_typed_schema_upstream(echo_proxy: Server, upstream_reset: Server) -> None:
    request = {**body(), "model": "echo"}
    reply = httpx.post(echo_proxy.v1 + "/chat/completions", json=request, timeout=120)
    assert reply.status_code == 200, reply.text
    sent = int(reply.headers["x-tokenomy-prompt-tokens-sent"])
    original = int(reply.headers["x-tokenomy-prompt-tokens-original"])
    assert sent < 0.6 * original
    last = httpx.get(upstream_reset.url + "/_last").json()
    assert last["tools"] == TOOLS and last["response_format"] == RESPONSE_FORMAT
    assert last["messages"][0]["content"].startswith("You are an agent. You can call these")
    assert "github_create_issue({" in last["messages"][0]["content"]
