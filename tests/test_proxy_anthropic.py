"""The `anthropic` SDK, unchanged, as a client of a real `tokenomy serve` on `/v1/messages`.

Behind the proxy: the loopback test upstream, which speaks Anthropic's Messages
API (real SSE framing and order, signed thinking, prompt-cache usage; see
tokenomy.testing.upstream_anthropic) through an `anthropic` backend, and OpenAI
chat through an `openai` backend (the translated route). The ledger is the
proxy's own SQLite file, read back here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from sqlalchemy import create_engine, text

from tokenomy.testing.processes import Server, run_proxy
from tokenomy.testing.upstream_anthropic import sign
from tokenomy.transcript import ANTHROPIC_MESSAGES
from tokenomy.upstreams.sse import Decoder

KEY_ENV = "TOKENOMY_TEST_ANTHROPIC_KEY"
BACKEND_KEY = "sk-ant-backend-secret"
MODEL = "claude-sonnet-4-6"
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJ"
       "RU5ErkJggg==")  # a 1x1 PNG
TOOLS = [{"name": "get_weather", "description": "Current weather for a city.",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}]
FAULTS = ("500", "529", "429", "midstream", "cut")


def anthropic_config(upstream: Server, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "backends": {
            "claude": {"kind": "anthropic", "base_url": upstream.url, "api_key_env": KEY_ENV,
                       "timeout": 30, "max_retries": 0},
            "chat": {"kind": "openai", "base_url": upstream.v1, "timeout": 30, "max_retries": 0},
            "claude-next": {"kind": "anthropic", "base_url": upstream.url,
                            "api_key_env": KEY_ENV, "timeout": 30, "max_retries": 0,
                            "forward_fields": ["future_field"]},
        },
        "models": {
            MODEL: {"backend": "claude"},
            "renamed": {"backend": "claude", "model": "claude-backend-name"},
            "echo": {"backend": "chat", "model": "echo-model"},
            "next": {"backend": "claude-next", "model": MODEL},
            **{f"fault:{fault}": {"backend": "claude"} for fault in FAULTS},
        },
        "teams": {"tiny": {"tokens": 50, "window": "1d"}},
    }
    config.update(extra)
    return config


@pytest.fixture(scope="module")
def proxy(upstream: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("anthropic-proxy")
    with run_proxy(anthropic_config(upstream), folder=folder,
                   env={KEY_ENV: BACKEND_KEY}) as server:
        server.ledger = folder / "ledger.db"  # type: ignore[attr-defined]
        yield server


@pytest.fixture()
def client(proxy: Server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0)


def last(upstream: Server, what: str = "_last") -> Any:
    return httpx.get(upstream.url + "/" + what).json()


def ledger_row(path: Path, request_id: str) -> dict[str, Any]:
    """The settled ledger row of one request (settling may trail the answer a little)."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        deadline = time.monotonic() + 10
        while True:
            with engine.connect() as conn:
                row = conn.execute(text("select * from tk_requests where request_id = :r"),
                                   {"r": request_id}).mappings().first()
            if row is not None and row["outcome"] != "abandoned":
                return dict(row)
            if time.monotonic() > deadline:
                raise AssertionError(f"no settled ledger row for {request_id}: {row}")
            time.sleep(0.1)
    finally:
        engine.dispose()


def sse(raw: str) -> list[tuple[str | None, dict[str, Any]]]:
    return [(event.event, event.json()) for event in Decoder().feed(raw.encode())]


# -- JSON and streaming ---------------------------------------------------------------

def test_json_round_trip(client: anthropic.Anthropic, upstream_reset: Server) -> None:
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=200, system="You are terse.",
        messages=[{"role": "user", "content": "Say hello to the proxy, please."}],
        metadata={"user_id": "user-42"}, extra_body={"top_k": 5})
    message = raw.parse()
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo: Say hello to the proxy, please."
    assert message.stop_reason == "end_turn"
    sent = last(upstream_reset)
    assert sent == {"max_tokens": 200, "messages": [
        {"role": "user", "content": "Say hello to the proxy, please."}],
        "model": MODEL, "metadata": {"user_id": "user-42"}, "system": "You are terse.",
        "top_k": 5}
    headers = last(upstream_reset, "_last_headers")
    assert headers["x-api-key"] == BACKEND_KEY  # the backend's key, never the caller's
    assert "authorization" not in headers
    assert headers["anthropic-version"]  # the SDK's own version, forwarded
    # The proxy's count and the upstream's agree on this text-only prompt (both o200k).
    assert raw.headers["x-tokenomy-request-id"].startswith("tk-")
    assert raw.headers["x-tokenomy-prompt-tokens-original"] == \
        raw.headers["x-tokenomy-prompt-tokens-sent"]


def test_alias_renames_the_model(client: anthropic.Anthropic, upstream_reset: Server) -> None:
    client.messages.create(model="renamed", max_tokens=20,
                           messages=[{"role": "user", "content": "hi"}])
    assert last(upstream_reset)["model"] == "claude-backend-name"


def test_stream_events_in_anthropic_order(proxy: Server, upstream_reset: Server) -> None:
    body = {"model": MODEL, "max_tokens": 100, "stream": True,
            "messages": [{"role": "user", "content": "one two"}]}
    response = httpx.post(proxy.url + "/v1/messages", json=body, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse(response.text)
    names = [name for name, _ in events]
    assert names == ["message_start", "ping", "content_block_start", "content_block_delta",
                     "content_block_delta", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    assert all(name == data["type"] for name, data in events)
    assert "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta") == \
        "echo: one two"
    # The end carries the whole usage (the upstream sent only output_tokens there).
    end = events[-2][1]["usage"]
    start = events[0][1]["message"]["usage"]
    assert end["input_tokens"] == start["input_tokens"] > 0 and end["output_tokens"] == 3


def test_stream_with_the_sdk(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=MODEL, max_tokens=100,
                                messages=[{"role": "user", "content": "stream me"}]) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == "echo: stream me"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 3
    assert final.usage.input_tokens > 0


def test_tools_json_and_stream(client: anthropic.Anthropic, upstream_reset: Server) -> None:
    first = client.messages.create(model=MODEL, max_tokens=100, tools=TOOLS,
                                   messages=[{"role": "user", "content": "Weather in Oslo?"}])
    call = first.content[0]
    assert first.stop_reason == "tool_use" and call.type == "tool_use"
    assert call.name == "get_weather" and call.input == {"echo": "Weather in Oslo?"}
    assert last(upstream_reset)["tools"] == TOOLS
    history = [{"role": "user", "content": "Weather in Oslo?"},
               {"role": "assistant", "content": [c.model_dump(exclude_none=True)
                                                 for c in first.content]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                             "content": "12 C, rain"}]}]
    with client.messages.stream(model=MODEL, max_tokens=100, tools=TOOLS,
                                messages=history) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == "echo: 12 C, rain"
    with client.messages.stream(model=MODEL, max_tokens=100, tools=TOOLS,
                                messages=history[:1]) as stream:
        streamed_call = stream.get_final_message().content[0]
    assert streamed_call.type == "tool_use" and streamed_call.input == {"echo": "Weather in Oslo?"}


def test_thinking_signature_comes_back_unchanged(client: anthropic.Anthropic,
                                                 upstream_reset: Server) -> None:
    thinking = {"type": "enabled", "budget_tokens": 1024}
    first = client.messages.create(model=MODEL, max_tokens=2048, thinking=thinking,
                                   messages=[{"role": "user", "content": "Think, then echo."}])
    block = first.content[0]
    assert block.type == "thinking" and block.signature == sign(block.thinking)
    answered = [c.model_dump(exclude_none=True) for c in first.content]
    history = [{"role": "user", "content": "Think, then echo."},
               {"role": "assistant", "content": answered},
               {"role": "user", "content": "Again."}]
    second = client.messages.create(model=MODEL, max_tokens=2048, thinking=thinking,
                                    messages=history)
    assert second.content[-1].text == "echo: Again."
    # The upstream checks every signature it issued: it got the block byte for byte.
    assert last(upstream_reset)["messages"][1]["content"] == answered
    tampered = [{**answered[0], "thinking": answered[0]["thinking"] + " (edited)"},
                *answered[1:]]
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model=MODEL, max_tokens=2048, thinking=thinking, messages=[
            history[0], {"role": "assistant", "content": tampered}, history[2]])
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    assert "signature" in refused.value.body["error"]["message"]


def test_image_and_unknown_blocks_reach_the_backend_unchanged(
        client: anthropic.Anthropic, upstream_reset: Server) -> None:
    content = [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                            "data": PNG}, "cache_control": {"type": "ephemeral"}},
               {"type": "text", "text": "What is in the picture?"}]
    history = [{"role": "user", "content": content},
               {"role": "assistant", "content": [
                   {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
                   {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
                    "input": {"query": "pixel"}},
                   {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1",
                    "content": [{"type": "web_search_result", "url": "https://example.com",
                                 "title": "Ex", "encrypted_content": "EqgfCioIARgBIiQ3"}]},
                   {"type": "text", "text": "A pixel."}]},
               {"role": "user", "content": "Sure?"}]
    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=50,
                                                   messages=history)
    assert raw.parse().content[0].text == "echo: Sure?"
    assert last(upstream_reset)["messages"] == history
    # The header counts text: the base64 is not read as text. The image itself is
    # priced from its size (1x1 pixel: next to nothing) for reservations and counting.
    counted = int(raw.headers["x-tokenomy-prompt-tokens-original"])
    text_only = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=50, messages=[
            {"role": "user", "content": [content[1]]}, *history[1:]])
    assert counted == int(text_only.headers["x-tokenomy-prompt-tokens-original"])
    assert client.messages.count_tokens(model="next", messages=history).input_tokens >= 1


def test_fields_of_tomorrow_reach_a_backend_that_names_them(
        client: anthropic.Anthropic, upstream_reset: Server) -> None:
    """The allowlist drops unknown top-level fields, except those a native backend lists
    in `forward_fields`; a destination or a key in the body never gets through."""
    extra = {"future_field": {"mode": "on"}, "base_url": "http://127.0.0.1:9/",
             "api_key": "sk-caller"}
    messages = [{"role": "user", "content": "hi"}]
    client.messages.create(model=MODEL, max_tokens=20, messages=messages, extra_body=extra)
    assert "future_field" not in last(upstream_reset)
    client.messages.create(model="next", max_tokens=20, messages=messages, extra_body=extra)
    sent = last(upstream_reset)
    assert sent["future_field"] == {"mode": "on"}
    assert "base_url" not in sent and "api_key" not in sent
    stream = client.messages.create(model="next", max_tokens=20, messages=messages,
                                    extra_body=extra, stream=True)
    assert [event.type for event in stream][-1] == "message_stop"
    assert last(upstream_reset)["future_field"] == {"mode": "on"}


# -- errors ----------------------------------------------------------------------------

def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["type"] == "error" and set(body["error"]) >= {"type", "message"}
    return body["error"]


def test_bad_bodies_are_400_in_anthropic_shape(proxy: Server) -> None:
    url = proxy.url + "/v1/messages"
    no_max = httpx.post(url, json={"model": MODEL, "messages": [
        {"role": "user", "content": "x"}]})
    assert no_max.status_code == 400
    error = _error(no_max)
    assert error["type"] == "invalid_request_error" and "max_tokens" in error["message"]
    assert error["tokenomy"]["param"] == "max_tokens"
    garbage = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert garbage.status_code == 400 and _error(garbage)["type"] == "invalid_request_error"
    system_role = httpx.post(url, json={"model": MODEL, "max_tokens": 5, "messages": [
        {"role": "system", "content": "x"}]})
    assert "top-level 'system'" in _error(system_role)["message"]


def test_unknown_model_is_not_found_error(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="no-such-model", max_tokens=5,
                               messages=[{"role": "user", "content": "x"}])
    error = caught.value.body["error"]
    assert error["type"] == "not_found_error" and "no-such-model" in error["message"]


def test_upstream_failures_keep_their_anthropic_type(client: anthropic.Anthropic) -> None:
    messages = [{"role": "user", "content": "x"}]
    with pytest.raises(anthropic.InternalServerError) as failed:
        client.messages.create(model="fault:500", max_tokens=5, messages=messages)
    assert failed.value.status_code == 502
    assert failed.value.body["error"]["type"] == "api_error"
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        client.messages.create(model="fault:529", max_tokens=5, messages=messages)
    assert overloaded.value.status_code == 529
    assert overloaded.value.body["error"]["type"] == "overloaded_error"
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model="fault:429", max_tokens=5, messages=messages)
    assert limited.value.body["error"]["type"] == "rate_limit_error"


def test_failures_mid_stream_end_with_an_error_event(proxy: Server) -> None:
    for fault, expect, kind in (("midstream", "overloaded_error: Overloaded", "overloaded_error"),
                                ("cut", "broke the stream", "api_error")):
        response = httpx.post(proxy.url + "/v1/messages", timeout=30, json={
            "model": f"fault:{fault}", "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "a b c d e"}]})
        events = sse(response.text)
        assert events[0][0] == "message_start"
        name, data = events[-1]
        assert name == "error" and data["type"] == "error", (fault, events)
        # The backend's own type is kept (the SDK maps it to its exception class).
        assert data["error"]["type"] == kind and expect in data["error"]["message"]


def test_budget_refusal_is_a_rate_limit_error_with_tokenomy_detail(proxy: Server) -> None:
    client = anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0,
                                 default_headers={"x-tokenomy-team": "tiny"})
    with pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.create(model=MODEL, max_tokens=500,
                               messages=[{"role": "user", "content": "x"}])
    error = refused.value.body["error"]
    assert error["type"] == "rate_limit_error" and "team 'tiny'" in error["message"]
    assert error["tokenomy"]["code"] == "budget_exceeded"
    assert error["tokenomy"]["scope"] == "team" and error["tokenomy"]["limit_tokens"] == 50
    assert int(refused.value.response.headers["retry-after"]) > 0


# -- headers, keys and the ledger -------------------------------------------------------

def test_only_allowlisted_client_headers_reach_the_backend(proxy: Server,
                                                           upstream_reset: Server) -> None:
    client = anthropic.Anthropic(base_url=proxy.url, api_key="caller-key", max_retries=0,
                                 default_headers={
                                     "anthropic-beta": "interleaved-thinking-2025-05-14",
                                     "x-app": "cli", "x-secret-internal": "nope",
                                     "x-tokenomy-step": "plan"})
    client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}])
    headers = last(upstream_reset, "_last_headers")
    assert headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert headers["x-app"] == "cli" and headers["x-api-key"] == BACKEND_KEY
    assert not {"x-secret-internal", "x-tokenomy-step", "authorization"} & headers.keys()
    assert "caller-key" not in str(headers)


def test_the_key_as_x_api_key_or_bearer(upstream: Server, tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    key = subprocess.run(
        [sys.executable, "-m", "tokenomy.cli", "keys", "create", "--team", "alpha",
         "--create-team", "--db", url], capture_output=True, text=True, check=True).stdout.strip()
    config = anthropic_config(upstream, ledger={"url": url})
    with run_proxy(config, folder=tmp_path / "p", env={KEY_ENV: BACKEND_KEY}) as proxy:
        messages = [{"role": "user", "content": "who pays?"}]
        for client in (anthropic.Anthropic(base_url=proxy.url, api_key=key, max_retries=0),
                       anthropic.Anthropic(base_url=proxy.url, auth_token=key, max_retries=0)):
            answer = client.messages.with_raw_response.create(model=MODEL, max_tokens=5,
                                                              messages=messages)
            row = ledger_row(tmp_path / "ledger.db", answer.headers["x-tokenomy-request-id"])
            assert row["team"] == "alpha"
        wrong = anthropic.Anthropic(base_url=proxy.url, api_key="tkn_0000_" + "x" * 40,
                                    max_retries=0)
        with pytest.raises(anthropic.AuthenticationError) as refused:
            wrong.messages.create(model=MODEL, max_tokens=5, messages=messages)
        assert refused.value.body["error"]["type"] == "authentication_error"
        with pytest.raises(anthropic.AuthenticationError):
            wrong.messages.count_tokens(model=MODEL, messages=messages)
        counted = anthropic.Anthropic(base_url=proxy.url, api_key=key).messages.count_tokens(
            model=MODEL, messages=messages)
        assert counted.input_tokens > 0


def test_ledger_row_has_the_four_buckets(client: anthropic.Anthropic, proxy: Server,
                                         upstream_reset: Server) -> None:
    # A system prompt past the 1,024-token minimum, marked for the 1-hour cache.
    system = [{"type": "text", "text": "Rules of the house. " * 300,
               "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    usages = []
    for question in ("first question", "second question"):
        raw = client.messages.with_raw_response.create(
            model=MODEL, max_tokens=20, system=system,
            messages=[{"role": "user", "content": question}])
        usage = raw.parse().usage
        row = ledger_row(proxy.ledger, raw.headers["x-tokenomy-request-id"])  # type: ignore
        usages.append(usage)
        written = usage.cache_creation_input_tokens or 0
        read = usage.cache_read_input_tokens or 0
        assert row["uncached_tokens"] == usage.input_tokens
        assert row["cached_tokens"] == read and row["cache_write_tokens"] == written
        assert row["cache_write_1h_tokens"] == usage.cache_creation.ephemeral_1h_input_tokens
        assert row["prompt_tokens"] == usage.input_tokens + read + written
        assert row["completion_tokens"] == usage.output_tokens and not row["estimated"]
    assert usages[0].cache_creation_input_tokens > 1024 and usages[0].cache_read_input_tokens == 0
    assert usages[1].cache_read_input_tokens == usages[0].cache_creation_input_tokens
    assert usages[1].cache_creation_input_tokens == 0


def test_streamed_usage_is_settled(proxy: Server) -> None:
    with httpx.stream("POST", proxy.url + "/v1/messages", timeout=30, json={
            "model": MODEL, "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "count my words"}]}) as response:
        request_id = response.headers["x-tokenomy-request-id"]
        events = sse(response.read().decode())
    row = ledger_row(proxy.ledger, request_id)  # type: ignore[attr-defined]
    start = events[0][1]["message"]["usage"]
    assert row["prompt_tokens"] == start["input_tokens"] and row["completion_tokens"] == 4
    assert row["stream"] and not row["estimated"] and row["outcome"] == "ok"


# -- count_tokens --------------------------------------------------------------------

def test_count_tokens_asks_an_anthropic_backend(client: anthropic.Anthropic,
                                                upstream_reset: Server) -> None:
    messages = [{"role": "user", "content": "How many tokens is this?"}]
    counted = client.messages.count_tokens(model="renamed", messages=messages, system="Count.",
                                           tools=TOOLS)
    sent = last(upstream_reset)
    assert sent == {"model": "claude-backend-name", "messages": messages, "system": "Count.",
                    "tools": TOOLS}
    assert last(upstream_reset, "_last_headers")["x-api-key"] == BACKEND_KEY
    from tokenomy.testing.upstream_anthropic import usage_of

    assert counted.input_tokens == usage_of(sent, {})["input_tokens"]


def test_count_tokens_counts_locally_for_other_backends(client: anthropic.Anthropic,
                                                        upstream_reset: Server) -> None:
    body = {"model": "echo", "messages": [{"role": "user", "content": "Count me, locally."}],
            "system": "Be exact."}
    counted = client.messages.count_tokens(**body)
    assert counted.input_tokens == ANTHROPIC_MESSAGES.count(body, "echo-model")
    assert last(upstream_reset) is None  # the chat backend was not asked
    bad = httpx.post(str(client.base_url).rstrip("/") + "/v1/messages/count_tokens",
                     json={"model": "echo"})
    assert bad.status_code == 400 and _error(bad)["tokenomy"]["param"] == "messages"


# -- the translated route (a chat backend) -------------------------------------------------

def test_translated_to_a_chat_backend(client: anthropic.Anthropic,
                                      upstream_reset: Server) -> None:
    message = client.messages.create(model="echo", max_tokens=100, system="Be brief.",
                                     messages=[{"role": "user", "content": "via chat"}])
    assert message.content[0].text == "echo: via chat" and message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    sent = last(upstream_reset)
    assert sent["model"] == "echo-model" and sent["max_tokens"] == 100
    assert sent["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "via chat"}]
    with client.messages.stream(model="echo", max_tokens=100, tools=TOOLS,
                                messages=[{"role": "user", "content": "Oslo"}]) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[0].name == "get_weather"
    assert final.content[0].input == {"echo": "Oslo"} and final.usage.input_tokens > 0
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert last(upstream_reset)["tools"][0]["function"]["name"] == "get_weather"


def test_translated_to_the_local_model(local_proxy: Server) -> None:
    client = anthropic.Anthropic(base_url=local_proxy.url, api_key="unused", max_retries=0,
                                 timeout=300)
    messages = [{"role": "user", "content": "Name one colour."}]
    message = client.messages.create(model="local", max_tokens=12, messages=messages)
    assert message.content[0].type == "text" and message.content[0].text.strip()
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0 and 0 < message.usage.output_tokens <= 12
    with client.messages.stream(model="local", max_tokens=12, messages=messages) as stream:
        text_out = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text_out.strip() and final.usage.output_tokens > 0


def test_an_untranslatable_request_is_a_400(proxy: Server) -> None:
    response = httpx.post(proxy.url + "/v1/messages", timeout=30, json={
        "model": "echo", "max_tokens": 5, "tool_choice": {"": None},
        "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 400
    assert _error(response)["tokenomy"]["code"] == "untranslatable_request"
