"""The `openai` SDK, unchanged, as a client of a real `tokenomy serve` and a real upstream."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tokenomy.testing.processes import Server
from tokenomy.testing.upstream import prompt_tokens

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello to the proxy, please."},
]
TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}]


@pytest.fixture()
def client(echo_proxy: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=echo_proxy.v1, api_key="unused", max_retries=0)


def _assert_headers(headers: httpx.Headers, expected_prompt: int) -> None:
    assert headers["x-tokenomy-request-id"].startswith("tk-")
    assert int(headers["x-tokenomy-prompt-tokens-original"]) == expected_prompt
    assert int(headers["x-tokenomy-prompt-tokens-sent"]) == expected_prompt


def test_non_streaming_round_trip(client: openai.OpenAI, upstream_reset: Server) -> None:
    raw = client.chat.completions.with_raw_response.create(model="echo", messages=MESSAGES)
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: Say hello to the proxy, please."
    assert completion.choices[0].finish_reason == "stop"
    # The header count is ours; the usage is the upstream's own count: they agree.
    assert completion.usage is not None
    _assert_headers(raw.headers, completion.usage.prompt_tokens)
    assert completion.usage.prompt_tokens == prompt_tokens(MESSAGES)


def test_streaming_round_trip(client: openai.OpenAI, upstream_reset: Server) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="echo", messages=MESSAGES, stream=True
    ) as response:
        _assert_headers(response.headers, prompt_tokens(MESSAGES))
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: Say hello to the proxy, please."
    assert chunks[-1].choices[0].finish_reason == "stop"
    # The client did not ask for usage, so it gets no usage-only chunk...
    assert all(c.choices for c in chunks)
    # ...but the proxy asked the upstream for it (to record it).
    sent = httpx.get(upstream_reset.url + "/_last").json()
    assert sent["stream_options"] == {"include_usage": True}


def test_streaming_usage_when_asked(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="echo", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == prompt_tokens(MESSAGES)


def test_tools_pass_through(client: openai.OpenAI, upstream_reset: Server) -> None:
    completion = client.chat.completions.create(
        model="echo", messages=MESSAGES, tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"echo": "Say hello to the proxy, please."}
    sent = httpx.get(upstream_reset.url + "/_last").json()
    assert sent["tools"] == TOOLS


def test_tools_streaming(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="echo", messages=MESSAGES, tools=TOOLS,
                                            stream=True)
    arguments, name = "", None
    for chunk in stream:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name = call.function.name or name
            arguments += call.function.arguments or ""
    assert name == "get_weather"
    assert json.loads(arguments)["echo"].startswith("Say hello")


def test_response_format_pass_through(client: openai.OpenAI, upstream_reset: Server) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "echo", "schema": {
        "type": "object", "properties": {"echo": {"type": "string"}}}}}
    completion = client.chat.completions.create(model="echo", messages=MESSAGES,
                                                 response_format=fmt)
    assert json.loads(completion.choices[0].message.content)["echo"].startswith("Say hello")
    assert httpx.get(upstream_reset.url + "/_last").json()["response_format"] == fmt


def test_tokenomy_field_never_reaches_backend(client: openai.OpenAI,
                                              upstream_reset: Server) -> None:
    client.chat.completions.create(
        model="echo", messages=MESSAGES,
        extra_body={"tokenomy": {"step": "retrieve", "tags": {"run": "t1"}}},
    )
    sent = httpx.get(upstream_reset.url + "/_last").json()
    assert "tokenomy" not in sent
    assert sent["model"] == "echo-model"  # the alias was resolved to the backend's name


def test_models_and_health(echo_proxy: Server) -> None:
    client = openai.OpenAI(base_url=echo_proxy.v1, api_key="unused")
    assert "echo" in [m.id for m in client.models.list()]
    health = httpx.get(echo_proxy.url + "/healthz").json()
    assert health["status"] == "ok" and health["backends"] == {"test": "openai"}


async def test_async_client_concurrent(echo_proxy: Server) -> None:
    import asyncio

    client = openai.AsyncOpenAI(base_url=echo_proxy.v1, api_key="unused", max_retries=0)
    replies = await asyncio.gather(*[
        client.chat.completions.create(model="echo", messages=[
            {"role": "user", "content": f"request {i}"}]) for i in range(20)])
    assert [r.choices[0].message.content for r in replies] == [
        f"echo: request {i}" for i in range(20)]
    await client.close()
