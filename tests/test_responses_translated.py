"""`/v1/responses` in front of backends that speak only chat completions: a chat-only
OpenAI-compatible server (the test upstream's chat endpoint, declared with `protocols:
[openai.chat]`) and the embedded SmolLM2 model. litellm's adapters translate the request
to chat and the answer (JSON, or the whole event sequence) back; the real `openai` SDK
reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tokenomy.testing.processes import Server, echo_config, run_proxy

SHELL = {"type": "function", "name": "shell", "description": "Runs a shell command.",
         "parameters": {"type": "object", "properties": {"command": {"type": "string"}},
                        "required": ["command"]}}


@pytest.fixture(scope="module")
def chat_only(upstream: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = echo_config(upstream.v1)
    config["backends"]["test"]["protocols"] = ["openai.chat"]
    with run_proxy(config, folder=tmp_path_factory.mktemp("chat-only")) as server:
        yield server


@pytest.fixture()
def client(chat_only: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=chat_only.v1, api_key="x", max_retries=0, timeout=60)


def last(upstream: Server) -> Any:
    return httpx.get(upstream.url + "/_last").json()


def test_json_through_a_chat_backend(client: openai.OpenAI, upstream: Server) -> None:
    raw = client.responses.with_raw_response.create(
        model="echo", instructions="Be brief.", input="hello there", max_output_tokens=50,
        temperature=0)
    response = raw.parse()
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text == "echo: hello there"
    # The chat backend got a chat request: instructions as the system message.
    received = last(upstream)
    assert received["messages"] == [{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "hello there"}]
    assert (received["max_tokens"], received["temperature"]) == (50, 0)
    assert "input" not in received and "instructions" not in received
    usage = response.usage
    assert usage is not None and usage.input_tokens == received_prompt_tokens(upstream)
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0


def received_prompt_tokens(upstream: Server) -> int:
    from tokenomy.testing.upstream import prompt_tokens

    return prompt_tokens(last(upstream)["messages"])


def test_stream_through_a_chat_backend(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="echo", input="stream me please", stream=True))
    types = [event.type for event in events]
    assert types == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", *["response.output_text.delta"] * 4,
                     "response.output_text.done", "response.content_part.done",
                     "response.output_item.done", "response.completed"]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert len({event.response.id for event in events if hasattr(event, "response")}) == 1
    completed = events[-1].response
    assert completed.output_text == "echo: stream me please"
    assert completed.usage is not None and completed.usage.output_tokens > 0
    with client.responses.stream(model="echo", input="once more") as stream:
        final = stream.get_final_response()
    assert final.output_text == "echo: once more"
    with httpx.stream("POST", str(client.base_url) + "responses", timeout=60,
                      json={"model": "echo", "input": "x", "stream": True}) as response:
        wire = response.read().decode()
    assert wire.startswith("event: response.created\ndata: {")
    assert wire.rstrip().split("\n")[-2] == "event: response.completed"


def test_function_calls_through_a_chat_backend(client: openai.OpenAI, upstream: Server) -> None:
    first = client.responses.create(model="echo", input="list files", tools=[SHELL])
    call = first.output[0]
    assert (call.type, call.name, call.arguments) == ("function_call", "shell",
                                                      '{"echo":"list files"}')
    received = last(upstream)
    assert received["tools"][0]["function"]["name"] == "shell"
    items: list[Any] = [{"role": "user", "content": "list files"},
                        call.model_dump(exclude_none=True),
                        {"type": "function_call_output", "call_id": call.call_id,
                         "output": "a.py"}]
    with client.responses.stream(model="echo", input=items, tools=[SHELL],
                                 tool_choice="none") as stream:
        final = stream.get_final_response()
    assert final.output_text.startswith("echo: list files")
    messages = last(upstream)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["function"] == {"name": "shell",
                                                        "arguments": '{"echo":"list files"}'}
    assert messages[2] == {"role": "tool", "content": "a.py", "tool_call_id": call.call_id}


def test_stored_state_cannot_be_translated(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="echo", input="x", previous_response_id="resp_1")
    body = caught.value.body
    assert body["param"] == "previous_response_id"  # type: ignore[index]
    assert "speaks chat completions only" in body["message"]  # type: ignore[index]


def test_a_backend_cannot_list_a_protocol_its_kind_lacks(upstream: Server) -> None:
    config = echo_config(upstream.v1)
    config["backends"]["test"]["protocols"] = ["anthropic.nothing"]
    with pytest.raises(RuntimeError, match="lists protocols"), run_proxy(config):
        pass


def test_litellm_kind_serves_responses(upstream: Server) -> None:
    """A litellm provider (here litellm's OpenAI provider, pointed at the chat upstream)."""
    config = echo_config(upstream.v1)
    config["backends"]["via-litellm"] = {"kind": "litellm", "base_url": upstream.v1,
                                         "api_key": "sk-test", "max_retries": 0}
    config["models"]["lite"] = {"backend": "via-litellm", "model": "openai/echo-model"}
    with run_proxy(config) as proxy:
        client = openai.OpenAI(base_url=proxy.v1, api_key="x", max_retries=0, timeout=60)
        response = client.responses.create(model="lite", input="through litellm")
        assert response.output_text == "echo: through litellm"
        with client.responses.stream(model="lite", input="streamed through litellm") as stream:
            final = stream.get_final_response()
        assert final.output_text == "echo: streamed through litellm"
        assert final.usage is not None and final.usage.input_tokens > 0
    assert last(upstream)["messages"] == [{"role": "user",
                                           "content": "streamed through litellm"}]


@pytest.mark.slow
def test_local_model_answers_responses(local_proxy: Server) -> None:
    client = openai.OpenAI(base_url=local_proxy.v1, api_key="unused", timeout=180)
    response = client.responses.create(model="local", input="What is the capital of France?",
                                       max_output_tokens=24)
    assert "paris" in response.output_text.lower()
    assert response.usage is not None and 0 < response.usage.output_tokens <= 24
    with client.responses.stream(model="local", input="Name three colors.",
                                 max_output_tokens=20) as stream:
        types = [event.type for event in stream]
        final = stream.get_final_response()
    assert types[0] == "response.created" and types[-1] in ("response.completed",
                                                          "response.incomplete")
    assert final.output_text.strip()
    assert final.usage is not None and final.usage.output_tokens <= 20
