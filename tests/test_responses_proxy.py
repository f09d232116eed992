"""`/v1/responses` through a real `tokenomy serve`, with the real `openai` SDK as the client.

The backend is the loopback Responses upstream (tokenomy.testing.upstream_responses):
it answers with the API's shapes and event sequence, reports cached and reasoning
tokens, keeps stored responses, verifies encrypted reasoning sent back, and records
the last body and headers it received. Each test reads what the upstream got and the
ledger row the proxy wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import create_engine, text

from budget_support import sqlite_url
from tokenomy.testing.processes import Server, echo_config, run_proxy

SHELL = {"type": "function", "name": "shell", "description": "Runs a shell command.",
         "parameters": {"type": "object", "properties": {
             "command": {"type": "array", "items": {"type": "string"}}},
             "required": ["command"], "additionalProperties": False}}
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQ" \
      "DwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def proxy(upstream: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("responses-proxy")
    config = echo_config(upstream.v1, ledger={"url": sqlite_url(folder)},
                         teams={"tiny": {"tokens": 5, "window": "1d"}})
    with run_proxy(config, folder=folder) as server:
        server.ledger_url = sqlite_url(folder)  # type: ignore[attr-defined]
        yield server


@pytest.fixture()
def client(proxy: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.v1, api_key="sk-client-key", max_retries=0, timeout=30)


def last(upstream: Server) -> Any:
    return httpx.get(upstream.url + "/_last").json()


def ledger_row(proxy: Server, request_id: str) -> dict[str, Any]:
    engine = create_engine(proxy.ledger_url)  # type: ignore[attr-defined]
    try:
        with engine.connect() as conn:
            row = conn.execute(text("select * from tk_requests where request_id = :r"),
                               {"r": request_id}).mappings().one()
            return dict(row)
    finally:
        engine.dispose()


def test_json_answer_usage_and_ledger_buckets(client: openai.OpenAI, proxy: Server,
                                              upstream: Server) -> None:
    ask: dict[str, Any] = {
        "model": "echo", "instructions": "You answer in one line. " * 20,
        "input": [{"role": "user", "content": "What is in the cart?"}],
        "reasoning": {"effort": "low"}, "include": ["reasoning.encrypted_content"],
        "store": False, "prompt_cache_key": "json-buckets"}
    client.responses.create(**ask)  # the upstream's cache now holds this prefix
    raw = client.responses.with_raw_response.create(**ask)
    response = raw.parse()
    assert response.status == "completed"
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.output_text == "echo: What is in the cart?"
    usage = response.usage
    assert usage is not None and usage.input_tokens_details.cached_tokens > 0
    assert usage.output_tokens_details.reasoning_tokens > 0
    # The upstream received the client's fields as sent, addressed to its own model name.
    received = last(upstream)
    assert received == {**ask, "model": "echo-model"}
    row = ledger_row(proxy, raw.headers["x-tokenomy-request-id"])
    assert (row["prompt_tokens"], row["cached_tokens"], row["uncached_tokens"]) == (
        usage.input_tokens, usage.input_tokens_details.cached_tokens,
        usage.input_tokens - usage.input_tokens_details.cached_tokens)
    assert (row["completion_tokens"], row["reasoning_tokens"]) == (
        usage.output_tokens, usage.output_tokens_details.reasoning_tokens)
    assert row["outcome"] == "ok" and not row["estimated"] and not row["stream"]
    assert int(raw.headers["x-tokenomy-prompt-tokens-original"]) > 0


def test_stream_event_sequence_and_ledger(client: openai.OpenAI, proxy: Server) -> None:
    with client.responses.with_streaming_response.create(
            model="echo", input="count the words in this sentence", stream=True) as raw:
        request_id = raw.headers["x-tokenomy-request-id"]
        events = list(raw.parse())
    types = [event.type for event in events]
    assert types[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == "echo: count the words in this sentence"
    completed = events[-1].response
    row = ledger_row(proxy, request_id)
    assert row["stream"] and row["outcome"] == "ok"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        completed.usage.input_tokens, completed.usage.output_tokens)


def test_stream_helper_and_sse_framing(client: openai.OpenAI, proxy: Server) -> None:
    with client.responses.stream(model="echo", input="stream this",
                                 reasoning={"effort": "medium"}) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "echo: stream this"
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens > 0
    # On the wire: `event:` names the event type, no `[DONE]` after response.completed.
    with httpx.stream("POST", proxy.v1 + "/responses", timeout=30,
                      json={"model": "echo", "input": "x", "stream": True}) as response:
        body = response.read().decode()
    assert body.startswith("event: response.created\ndata: {")
    assert body.rstrip().split("\n")[-2] == "event: response.completed"
    assert "[DONE]" not in body


def test_function_call_loop(client: openai.OpenAI, upstream: Server) -> None:
    first = client.responses.create(model="echo", input="list the files", tools=[SHELL],
                                    store=False)
    call = first.output[0]
    assert call.type == "function_call" and call.name == "shell"
    assert call.arguments == '{"command":["echo","list the files"]}'
    items: list[Any] = [{"role": "user", "content": "list the files"},
                        call.model_dump(exclude_none=True),
                        {"type": "function_call_output", "call_id": call.call_id,
                         "output": "a.py\nb.py"}]
    second = client.responses.create(model="echo", input=items, tools=[SHELL], store=False)
    assert second.output_text == "result: a.py\nb.py"
    assert last(upstream)["input"] == items  # the items reach the backend as sent


def test_reasoning_items_go_back_unchanged(client: openai.OpenAI, upstream: Server) -> None:
    ask: dict[str, Any] = {"model": "echo", "tools": [SHELL], "store": False,
                           "reasoning": {"effort": "high"},
                           "include": ["reasoning.encrypted_content"]}
    first = client.responses.create(**ask, input="run the tests")
    reasoning, call = first.output
    assert reasoning.type == "reasoning" and reasoning.encrypted_content
    items: list[Any] = [{"role": "user", "content": "run the tests"},
                        reasoning.model_dump(exclude_none=True),
                        call.model_dump(exclude_none=True),
                        {"type": "function_call_output", "call_id": call.call_id,
                         "output": "3 passed"}]
    # The upstream checks the encrypted reasoning it issued: it accepts it untouched.
    second = client.responses.create(**ask, input=items)
    assert second.output[-1].type == "message"
    received = last(upstream)["input"][1]
    assert received == items[1]
    assert received["encrypted_content"] == reasoning.encrypted_content
    # A changed blob is refused by the backend, and the client gets its 400 as OpenAI's shape.
    items[1] = {**items[1], "encrypted_content": items[1]["encrypted_content"] + "x"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(**ask, input=items)
    assert "could not be verified" in caught.value.message


def test_image_input(client: openai.OpenAI, upstream: Server) -> None:
    content: list[Any] = [{"type": "input_text", "text": "what is this"}]
    plain = client.responses.with_raw_response.create(
        model="echo", input=[{"role": "user", "content": content}])
    content = [*content, {"type": "input_image", "image_url": PNG}]
    raw = client.responses.with_raw_response.create(
        model="echo", input=[{"role": "user", "content": content}])
    assert raw.parse().output_text == "echo: what is this [1 image(s)]"
    assert last(upstream)["input"][0]["content"] == content
    # The image is opaque to every stage and not text: the prompt-token headers count the
    # text (as for chat); the budget prices the image itself (tests/test_budget_estimates).
    header = "x-tokenomy-prompt-tokens-original"
    assert int(raw.headers[header]) == int(plain.headers[header])


def test_state_passes_through(client: openai.OpenAI, upstream: Server) -> None:
    first = client.responses.create(model="echo", input="remember the number 42")
    second = client.responses.with_raw_response.create(
        model="echo", input="which number?", previous_response_id=first.id, store=True)
    answer = second.parse()
    assert answer.previous_response_id == first.id
    received = last(upstream)
    assert (received["previous_response_id"], received["store"]) == (first.id, True)
    # The backend bills the stored context too; the proxy only ever saw the new input.
    assert answer.usage is not None
    assert answer.usage.input_tokens > int(second.headers["x-tokenomy-prompt-tokens-original"])
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="echo", input="x", previous_response_id="resp_nope")
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]


def test_only_allowlisted_fields_and_headers_reach_the_backend(proxy: Server,
                                                               upstream: Server) -> None:
    response = httpx.post(proxy.v1 + "/responses", timeout=30, json={
        "model": "echo", "input": "hi", "api_base": "http://elsewhere", "api_key": "sk-x",
        "extra_headers": {"x-evil": "1"}, "metadata": {"run": "7"}},
        headers={"authorization": "Bearer sk-client-key", "session_id": "s-1",
                 "openai-beta": "responses=experimental", "x-other": "no"})
    assert response.status_code == 200
    assert last(upstream) == {"model": "echo-model", "input": "hi", "metadata": {"run": "7"}}
    headers = httpx.get(upstream.url + "/_last_headers").json()
    assert (headers["session_id"], headers["openai-beta"]) == ("s-1", "responses=experimental")
    assert "x-other" not in headers and "sk-client-key" not in str(headers)


@pytest.mark.parametrize(("body", "status", "param"), [
    ({"model": "echo", "input": 5}, 400, "input"),
    ({"model": "echo", "input": [{"role": "robot", "content": "x"}]}, 400, "input[0].role"),
    ({"model": "echo", "input": "x", "tools": {"type": "function"}}, 400, "tools"),
    ({"model": "echo"}, 400, "input"),
])
def test_bad_bodies_are_openai_shaped(proxy: Server, body: dict[str, Any], status: int,
                                      param: str) -> None:
    response = httpx.post(proxy.v1 + "/responses", json=body, timeout=30)
    assert response.status_code == status
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert response.headers["x-tokenomy-request-id"]


def test_unknown_model_and_upstream_failures(proxy: Server, client: openai.OpenAI) -> None:
    routed = echo_config("http://unused/v1")  # a proxy with no default backend
    routed.pop("default_backend")
    with run_proxy(routed) as strict:
        no_default = openai.OpenAI(base_url=strict.v1, api_key="x", max_retries=0)
        with pytest.raises(openai.NotFoundError) as missing:
            no_default.responses.create(model="gpt-nope", input="x")
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(openai.InternalServerError) as failed:
        client.responses.create(model="fault:503", input="x")
    assert failed.value.status_code == 502
    assert "503" in failed.value.message


@pytest.mark.parametrize(("model", "message"), [("fault:error", "injected mid-stream error"),
                                                ("fault:failed", "injected failure"),
                                                ("fault:cut", "broke the stream")])
def test_mid_stream_failures_end_with_an_error_event(client: openai.OpenAI, proxy: Server,
                                                     model: str, message: str) -> None:
    with client.responses.with_streaming_response.create(model=model, input="x",
                                                         stream=True) as raw:
        request_id = raw.headers["x-tokenomy-request-id"]
        events = list(raw.parse())
    assert events[0].type == "response.created"
    assert events[-1].type == "error"
    assert message in events[-1].message
    assert ledger_row(proxy, request_id)["outcome"] == "error"


def test_budget_refusal_is_openai_shaped(client: openai.OpenAI, proxy: Server) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model="echo", input="a request over the team's budget",
                                extra_headers={"x-tokenomy-team": "tiny"})
    error = caught.value.body
    assert error["type"] == "budget_exceeded" and "tiny" in error["message"]  # type: ignore[index]
    request_id = caught.value.response.headers["x-tokenomy-request-id"]
    assert ledger_row(proxy, request_id)["outcome"] == "refused"
