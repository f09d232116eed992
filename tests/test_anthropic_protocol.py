"""The Anthropic Messages adapter on real request bodies: parts, edits, counts, fields, errors.

No servers: the adapter is pure functions of a body (the proxy tests in
test_proxy_anthropic.py drive it through a real `tokenomy serve`).
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from tokenomy.errors import BadRequest, BudgetExceeded, NotFound, PayloadTooLarge, UpstreamError
from tokenomy.transcript import ANTHROPIC_MESSAGES, PartKind, Transcript
from tokenomy.transcript.anthropic_messages import (
    ANTHROPIC_COUNT_TOKENS,
    TOOLS_OVERHEAD,
    complete_usage,
)
from tokenomy.transcript.media import media_tokens
from tokenomy.upstreams.pooled import status_error

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJ"
       "RU5ErkJggg==")  # a 1x1 PNG

BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "You are a coding agent.",
                "cache_control": {"type": "ephemeral"}}],
    "tools": [{"name": "Bash", "description": "Run a command",
               "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}],
    "messages": [
        {"role": "user", "content": "Why does the build fail?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Run make first.", "signature": "EqQBCkYIBxgC"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3"},
            {"type": "text", "text": "Let me run it."},
            {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "make"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1",
             "content": [{"type": "text", "text": "error: missing header"},
                         {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                      "data": PNG}}]},
            {"type": "text", "text": "And now?", "cache_control": {"type": "ephemeral"}},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
            {"type": "future_block", "payload": {"x": 1}},
        ]},
    ],
    "metadata": {"user_id": "u-1"},
}


def test_parts_in_order_with_kinds_paths_and_tool_names() -> None:
    parts = ANTHROPIC_MESSAGES.parts(BODY)
    got = [(p.turn, p.role, p.kind, p.text, p.path, p.cache_mark) for p in parts]
    assert got == [
        (-1, "system", PartKind.SYSTEM, "You are a coding agent.", ("system", 0, "text"), True),
        (0, "user", PartKind.USER_TEXT, "Why does the build fail?", ("messages", 0, "content"),
         False),
        (1, "assistant", PartKind.THINKING, "Run make first.", None, False),
        (1, "assistant", PartKind.OPAQUE, "", None, False),
        (1, "assistant", PartKind.ASSISTANT_TEXT, "Let me run it.",
         ("messages", 1, "content", 2, "text"), False),
        (1, "assistant", PartKind.TOOL_CALL, '{"command":"make"}',
         ("messages", 1, "content", 3, "input"), False),
        (2, "tool", PartKind.TOOL_RESULT, "error: missing header",
         ("messages", 2, "content", 0, "content", 0, "text"), False),
        (2, "tool", PartKind.OPAQUE, "", None, False),
        (2, "user", PartKind.USER_TEXT, "And now?", ("messages", 2, "content", 1, "text"), True),
        (2, "user", PartKind.OPAQUE, "", None, False),
        (2, "user", PartKind.OPAQUE, "", None, False),
    ]
    result = parts[6]
    assert (result.tool_call_id, result.tool_name, result.tool_input) == (
        "toolu_1", "Bash", '{"command":"make"}')
    assert parts[5].tool_name == "Bash" and parts[5].tool_call_id == "toolu_1"


def test_an_edit_changes_one_string_and_nothing_else() -> None:
    body = copy.deepcopy(BODY)
    before = orjson.dumps(body)
    transcript = Transcript(body, ANTHROPIC_MESSAGES.parts)
    result = next(p for p in transcript.parts if p.kind is PartKind.TOOL_RESULT)
    transcript.write(result, "error: header")
    assert orjson.dumps(BODY) == orjson.dumps(orjson.loads(before))  # the client's copy
    edited = copy.deepcopy(orjson.loads(before))
    edited["messages"][2]["content"][0]["content"][0]["text"] = "error: header"
    assert orjson.dumps(transcript.body) == orjson.dumps(edited)
    thinking = next(p for p in transcript.parts if p.kind is PartKind.THINKING)
    with pytest.raises(ValueError):
        transcript.write(thinking, "rewritten")  # signed: never editable


def test_a_tool_use_input_is_edited_as_json_and_stays_an_object() -> None:
    # Agent compression rewrites a file the agent writes inside a tool call (a heredoc in
    # Bash's command, Write's content): the input is an object, the part its JSON text.
    body = copy.deepcopy(BODY)
    transcript = Transcript(body, ANTHROPIC_MESSAGES.parts)
    call = next(p for p in transcript.parts if p.kind is PartKind.TOOL_CALL)
    assert call.json_value
    transcript.write(call, '{"command": "make -k"}')
    assert transcript.body["messages"][1]["content"][3]["input"] == {"command": "make -k"}
    assert BODY["messages"][1]["content"][3]["input"] == {"command": "make"}  # client's copy
    for bad in ("make -k", '["make"]'):  # not JSON, or not an object
        with pytest.raises(ValueError):
            transcript.write(call, bad)


def test_string_tool_result_and_system_string_are_editable() -> None:
    body = {"model": "m", "max_tokens": 5, "system": "sys", "messages": [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Read",
                                           "input": {"file_path": "a.py"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                      "content": "print(1)"}]}]}
    parts = ANTHROPIC_MESSAGES.parts(body)
    assert parts[0].path == ("system",)
    assert parts[-1].path == ("messages", 1, "content", 0, "content")
    assert parts[-1].tool_input == '{"file_path":"a.py"}'


def test_count_covers_system_messages_tools_and_images() -> None:
    from tokenomy.tokenizers import count_text

    model = "gpt-4o"  # o200k: a tokenizer this machine has
    text_only = {"model": model, "max_tokens": 5, "system": "abc",
                 "messages": [{"role": "user", "content": "hello world"}]}
    assert ANTHROPIC_MESSAGES.count(text_only, model) == (
        count_text("abc", model) + 3 + count_text("hello world", model))
    with_tools = {**text_only, "tools": BODY["tools"]}
    assert ANTHROPIC_MESSAGES.count(with_tools, model) == (
        ANTHROPIC_MESSAGES.count(text_only, model) + TOOLS_OVERHEAD
        + count_text(orjson.dumps(BODY["tools"][0]).decode(), model))
    image = {**text_only, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "hello world"}]}]}
    # An image is not text: the count is the text alone, and `media` hands the image to
    # transcript.media, which prices it by its size (the budget reserves both).
    assert ANTHROPIC_MESSAGES.count(image, model) == ANTHROPIC_MESSAGES.count(text_only, model)
    [found] = ANTHROPIC_MESSAGES.media(image)
    assert found.kind == "image" and found.data == PNG and found.format == "image/png"
    assert 0 < media_tokens([found], "claude-sonnet-4-5") <= 1600
    assert ANTHROPIC_MESSAGES.count(BODY, model) > ANTHROPIC_MESSAGES.count(with_tools, model)


def test_validation_errors_name_the_field() -> None:
    cases = [
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"model": "m", "max_tokens": 5}, "messages"),
        ({"model": "m", "max_tokens": 5, "messages": []}, "messages"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
         "messages.0.role"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 7}]},
         "messages.0.content"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "tool_use", "id": "a", "name": "b", "input": "not an object"}]}]},
         "messages.0.content.0.input"),
        ({"model": "m", "max_tokens": 5, "system": [{"type": "image"}],
          "messages": [{"role": "user", "content": "x"}]}, "system.0"),
        ({"model": "m", "max_tokens": 5, "temperature": 1.5,
          "messages": [{"role": "user", "content": "x"}]}, "temperature"),
        ({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]},
         "max_tokens"),
        ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
    ]
    for body, param in cases:
        with pytest.raises(BadRequest) as caught:
            ANTHROPIC_MESSAGES.validate(body, max_items=10)
        assert caught.value.param == param, (body, caught.value.message)
    with pytest.raises(PayloadTooLarge):
        ANTHROPIC_MESSAGES.validate({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": "x"}] * 3}, max_items=2)
    # count_tokens takes no max_tokens
    assert ANTHROPIC_COUNT_TOKENS.validate({"model": "m", "messages": [
        {"role": "user", "content": "x"}]}, max_items=2)


def test_forwarded_keeps_the_messages_fields_only() -> None:
    body = {**BODY, "stream": True, "api_key": "sk-steal", "base_url": "http://evil",
            "extra_headers": {"x": "y"}, "top_k": 5, "service_tier": "auto",
            "context_management": {"edits": []}, "cache_control": {"type": "ephemeral"}}
    out = ANTHROPIC_MESSAGES.forwarded(body, "claude-backend-name")
    assert out["model"] == "claude-backend-name"
    assert not {"api_key", "base_url", "extra_headers"} & out.keys()
    assert {"top_k", "service_tier", "context_management", "cache_control", "metadata",
            "stream", "tools", "system"} <= out.keys()
    assert list(out) == [k for k in body if k in out]  # the client's key order
    counted = ANTHROPIC_COUNT_TOKENS.forwarded({**body, "max_tokens": 5}, "b")
    assert "max_tokens" not in counted and "stream" not in counted and "tools" in counted


def test_errors_in_anthropic_shape_with_anthropic_types() -> None:
    def shape(error: Any) -> tuple[str, dict[str, Any]]:
        body = ANTHROPIC_MESSAGES.error_body(error)
        assert body["type"] == "error"
        return body["error"]["type"], body["error"]

    assert shape(BadRequest("bad", param="messages"))[0] == "invalid_request_error"
    assert shape(NotFound("no such model"))[0] == "not_found_error"
    assert shape(PayloadTooLarge("big"))[0] == "request_too_large"
    assert shape(UpstreamError("down"))[0] == "api_error"
    assert shape(status_error("b", 529, {}, b'{"type":"error","error":'
                                           b'{"type":"overloaded_error","message":"Overloaded"}}'
                              ))[0] == "overloaded_error"
    assert shape(status_error("b", 504, {}, b""))[0] == "timeout_error"
    kind, error = shape(BudgetExceeded("over", extra={"scope": "team", "limit_tokens": 5}))
    assert kind == "rate_limit_error"
    assert error["tokenomy"] == {"code": "budget_exceeded", "scope": "team", "limit_tokens": 5}
    assert ANTHROPIC_MESSAGES.stream_error(UpstreamError("cut")) == {
        "type": "error", "error": {"type": "api_error", "message": "cut",
                                   "tokenomy": {"code": "bad_gateway"}}}


def test_stream_events_names_end_and_failures() -> None:
    protocol = ANTHROPIC_MESSAGES
    assert protocol.event_name({"type": "content_block_delta"}) == "content_block_delta"
    assert protocol.done_marker is None
    assert protocol.chunk_finishes({"type": "message_stop"})
    assert not protocol.chunk_finishes({"type": "message_delta", "delta": {}})
    assert protocol.chunk_failure({"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}) == "overloaded_error: Overloaded"
    assert protocol.chunk_failure({"type": "ping"}) is None
    assert protocol.chunk_text({"type": "content_block_delta", "index": 0, "delta": {
        "type": "input_json_delta", "partial_json": '{"a"'}}) == '{"a"'


async def test_complete_usage_fills_the_end_from_message_start() -> None:
    start_usage = {"input_tokens": 10, "cache_creation_input_tokens": 2000,
                   "cache_read_input_tokens": 30000,
                   "cache_creation": {"ephemeral_5m_input_tokens": 1500,
                                      "ephemeral_1h_input_tokens": 500}, "output_tokens": 1}
    events = [{"type": "message_start", "message": {"usage": start_usage}},
              {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
               "usage": {"output_tokens": 42}},
              {"type": "message_stop"}]

    async def source() -> Any:
        for event in events:
            yield event

    got = [e async for e in complete_usage(source())]
    usage = ANTHROPIC_MESSAGES.chunk_usage(got[1])
    assert usage is not None
    assert (usage.prompt_tokens, usage.cached_tokens, usage.cache_write_tokens,
            usage.cache_write_1h_tokens, usage.completion_tokens) == (32010, 30000, 2000, 500, 42)
    assert events[1]["usage"] == {"output_tokens": 42}  # the backend's chunk is not mutated


def test_reasoning_fields_use_anthropic_names() -> None:
    fields = ANTHROPIC_MESSAGES.reasoning_fields(
        {"reasoning_effort": "minimal", "chat_template_kwargs": {"enable_thinking": False},
         "max_tokens": 900})
    assert fields == {"output_config": {"effort": "low"}, "max_tokens": 900}
    thinking = {"type": "enabled", "budget_tokens": 2048}
    assert ANTHROPIC_MESSAGES.reasoning_fields({"thinking": thinking}) == {"thinking": thinking}


def test_append_user_text_goes_after_tool_results_and_breakpoints() -> None:
    body = copy.deepcopy(BODY)
    original = body["messages"]
    added = ANTHROPIC_MESSAGES.append_user_text(body, "Be brief.")
    assert added == "\nBe brief."
    assert body["messages"][2]["content"][-1] == {"type": "text", "text": "Be brief."}
    assert body["messages"][2]["content"][:-1] == BODY["messages"][2]["content"]
    assert original == BODY["messages"]  # copy-on-write: the list it replaced is untouched
    plain = {"messages": [{"role": "user", "content": "hi"}]}
    assert ANTHROPIC_MESSAGES.append_user_text(plain, "x") == "\n\nx"
    assert plain["messages"][0]["content"] == "hi\n\nx"
