"""The OpenAI Responses adapter on its own: items as parts, checks, counts, fields, events.

Pure functions over real request bodies (the recorded Codex turn and small
hand-written ones); the proxy-level behaviour is in test_responses_proxy.py.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tokenomy.call import Call
from tokenomy.errors import BadRequest, PayloadTooLarge, UpstreamError
from tokenomy.planners.modes import ProviderParams
from tokenomy.planners.stage import apply_params
from tokenomy.tokenizers import count_text
from tokenomy.transcript import PartKind
from tokenomy.transcript.media import media_tokens
from tokenomy.transcript.openai_responses import OPENAI_RESPONSES as RESPONSES

CODEX = json.loads((Path(__file__).parent / "recorded" / "codex_turn.json").read_text())
MODEL = "gpt-4o"
IMAGE = {"type": "input_image", "image_url": "data:image/png;base64," + "A" * 400}


def codex() -> dict[str, Any]:
    return copy.deepcopy(CODEX["body"])


def test_codex_turn_reads_as_parts_in_order() -> None:
    body = codex()
    parts = RESPONSES.parts(body)
    shape = [(p.turn, p.role, p.kind.value, p.path) for p in parts]
    assert shape == [
        (-1, "system", "system", ("instructions",)),
        (0, "user", "user_text", ("input", 0, "content", 0, "text")),
        (1, "user", "user_text", ("input", 1, "content", 0, "text")),
        # One assistant turn: the reasoning item (summary read-only, encrypted blob opaque)
        # and the call it led to share the turn of the first item.
        (2, "assistant", "thinking", None),
        (2, "assistant", "opaque", None),
        (2, "assistant", "tool_call", ("input", 3, "arguments")),
        (4, "tool", "tool_result", ("input", 4, "output")),
        (5, "assistant", "thinking", None),
        (5, "assistant", "opaque", None),
        (5, "assistant", "tool_call", ("input", 6, "arguments")),
        (7, "tool", "tool_result", ("input", 7, "output")),
    ]
    result = parts[-1]
    # A tool result knows the call that produced it (the compressors name the command).
    assert result.tool_call_id == "call_R7m1LpQw3e"
    assert result.tool_name == "shell"
    assert json.loads(result.tool_input or "")["command"] == ["bash", "-lc", "pytest -v"]
    assert result.text == body["input"][7]["output"]
    assert parts[3].text == body["input"][2]["summary"][0]["text"]


def test_parallel_calls_share_the_assistant_turn_and_other_items_are_opaque() -> None:
    body = {"model": "m", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "look"}, IMAGE,
                                     {"type": "input_file", "file_id": "file-1"}]},
        {"type": "function_call", "call_id": "a", "name": "read", "arguments": "{}"},
        {"type": "function_call", "call_id": "b", "name": "grep", "arguments": "{}"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"type": "function_call_output", "call_id": "b", "output": [
            {"type": "input_text", "text": "found"}, IMAGE]},
        {"type": "custom_tool_call", "call_id": "c", "name": "apply_patch", "input": "*** Begin"},
        {"type": "custom_tool_call_output", "call_id": "c", "output": "Done"},
        {"type": "item_reference", "id": "msg_9"},
        {"type": "a_type_from_next_year", "payload": {"x": 1}},
    ]}
    shape = [(p.turn, p.role, p.kind.value, p.path, p.tool_name) for p in RESPONSES.parts(body)]
    assert shape == [
        (0, "user", "user_text", ("input", 0, "content", 0, "text"), None),
        (0, "user", "opaque", None, None),
        (0, "user", "opaque", None, None),
        (1, "assistant", "tool_call", ("input", 1, "arguments"), "read"),
        (1, "assistant", "tool_call", ("input", 2, "arguments"), "grep"),
        (1, "assistant", "opaque", None, None),
        (4, "tool", "tool_result", ("input", 4, "output", 0, "text"), "grep"),
        (4, "tool", "opaque", None, None),
        (5, "assistant", "tool_call", ("input", 5, "input"), "apply_patch"),
        (6, "tool", "tool_result", ("input", 6, "output"), "apply_patch"),
        (7, "user", "opaque", None, None),
        (8, "user", "opaque", None, None),
    ]


def test_string_input_and_edits_write_back_only_their_path() -> None:
    body = {"model": "m", "instructions": "be brief", "input": "hello"}
    call = Call(protocol=RESPONSES, body=body)
    system, user = call.transcript.parts
    assert (system.kind, user.kind, user.path) == (PartKind.SYSTEM, PartKind.USER_TEXT,
                                                  ("input",))
    original = codex()
    call = Call(protocol=RESPONSES, body=codex())
    result = call.transcript.parts[-1]
    call.edit("test", [(result, "short")])
    assert call.body["input"][7]["output"] == "short"
    assert original["input"][7]["output"] != "short"
    # Everything else is the very same objects (copy-on-write: only the path was copied).
    assert call.body["input"][2] == original["input"][2]
    assert call.body["tools"] == original["tools"]


@pytest.mark.parametrize(("body", "param"), [
    ([], None),
    ({"model": "m"}, "input"),
    ({"model": "m", "input": 5}, "input"),
    ({"model": "", "input": "x"}, "model"),
    ({"model": "m", "input": ["x"]}, "input[0]"),
    ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    ({"model": "m", "input": [{"role": "user"}]}, "input[0].content"),
    ({"model": "m", "input": [{"role": "user", "content": [{"text": "x"}]}]},
     "input[0].content[0]"),
    ({"model": "m", "input": [{"type": "function_call", "call_id": "a", "name": "f"}]},
     "input[0].arguments"),
    ({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]},
     "input[0].call_id"),
    ({"model": "m", "input": [{"type": "reasoning", "summary": "x"}]}, "input[0].summary"),
    ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ({"model": "m", "input": "x", "stream": "yes"}, "stream"),
    ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"model": "m", "input": "x", "include": [1]}, "include"),
    ({"model": "m", "input": "x", "previous_response_id": 7}, "previous_response_id"),
    ({"model": "m", "input": "x", "temperature": 3}, "temperature"),
])
def test_bad_requests_name_the_field(body: Any, param: str | None) -> None:
    with pytest.raises(BadRequest) as caught:
        RESPONSES.validate(body, max_items=64)
    assert caught.value.param == param
    assert caught.value.to_dict()["error"]["type"] == "invalid_request_error"


def test_valid_requests_pass_and_too_many_items_is_413() -> None:
    RESPONSES.validate(codex(), max_items=64)
    RESPONSES.validate({"model": "m", "previous_response_id": "resp_1"}, max_items=64)
    with pytest.raises(PayloadTooLarge) as caught:
        RESPONSES.validate({"model": "m", "input": [{"role": "user", "content": "x"}] * 65},
                           max_items=64)
    assert caught.value.code == "too_many_items"


def test_count_covers_instructions_items_tools_and_opaque_estimates() -> None:
    body = codex()
    total = RESPONSES.count(body, MODEL)
    without_tools = RESPONSES.count({**body, "tools": []}, MODEL)
    without_instructions = RESPONSES.count({**body, "instructions": ""}, MODEL)
    assert total > without_tools > 0
    assert total - without_instructions >= count_text(body["instructions"], MODEL)
    # The live tool output alone is most of the prompt.
    assert total > count_text(body["input"][7]["output"], MODEL)
    text = {"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "what is this?"}]}]}
    image = copy.deepcopy(text)
    image["input"][0]["content"].append(IMAGE)
    low = copy.deepcopy(text)
    low["input"][0]["content"].append({**IMAGE, "detail": "low"})
    # Images are not text: counted text alone, priced by transcript.media from `media`.
    base = RESPONSES.count(text, MODEL)
    assert RESPONSES.count(image, MODEL) == RESPONSES.count(low, MODEL) == base
    [high_media] = RESPONSES.media(image)
    [low_media] = RESPONSES.media(low)
    assert high_media.kind == "image" and low_media.detail == "low"
    assert media_tokens([low_media], "gpt-4o") == 85
    assert media_tokens([high_media], "gpt-4o") > 85


def test_forwarded_keeps_only_responses_fields() -> None:
    body = {**codex(), "api_base": "http://evil", "api_key": "sk-x", "extra_headers": {"a": "b"},
            "messages": []}
    out = RESPONSES.forwarded(body, "upstream-model")
    assert out["model"] == "upstream-model"
    assert set(out) == set(codex())
    for field in ("previous_response_id", "store", "prompt_cache_key", "include", "reasoning",
                  "background", "truncation", "metadata", "text", "max_output_tokens"):
        assert field in RESPONSES.request_fields


def test_planner_knobs_become_responses_fields() -> None:
    body = {"model": "m", "input": "x"}
    new, applied = apply_params(body, ProviderParams(family="openai", body={
        "reasoning_effort": "low", "chat_template_kwargs": {"enable_thinking": False}},
        max_tokens=512), RESPONSES)
    assert applied == {"reasoning": {"effort": "low"}, "max_output_tokens": 512}
    assert new == {"model": "m", "input": "x", "reasoning": {"effort": "low"},
                   "max_output_tokens": 512}
    # The client's own reasoning settings win: nothing is added.
    mine = {"model": "m", "input": "x", "reasoning": {"effort": "high"}, "max_output_tokens": 9}
    assert apply_params(mine, ProviderParams(family="openai", body={"reasoning_effort": "low"},
                                             max_tokens=512), RESPONSES)[1] == {}


def test_append_user_text_copies_what_it_changes() -> None:
    body = codex()
    before = body["input"]
    added = RESPONSES.append_user_text(body, "Answer briefly.")
    assert added == "\nAnswer briefly."
    assert body["input"][1]["content"][-1] == {"type": "input_text", "text": "Answer briefly."}
    assert before[1]["content"][-1]["type"] == "input_text" and len(before[1]["content"]) == 1
    plain = {"model": "m", "input": "hi"}
    assert RESPONSES.append_user_text(plain, "Be brief.") == "\n\nBe brief."
    assert plain["input"] == "hi\n\nBe brief."


def test_usage_events_and_failures() -> None:
    usage = {"input_tokens": 1000, "input_tokens_details": {"cached_tokens": 600},
             "output_tokens": 50, "output_tokens_details": {"reasoning_tokens": 30},
             "total_tokens": 1050}
    response = {"object": "response", "output": [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "think "}]},
        {"type": "message", "content": [{"type": "output_text", "text": "done"}]},
        {"type": "function_call", "arguments": "{}"}], "usage": usage}
    read = RESPONSES.response_usage(response)
    assert read is not None
    assert (read.prompt_tokens, read.cached_tokens, read.uncached_tokens,
            read.completion_tokens, read.reasoning_tokens) == (1000, 600, 400, 50, 30)
    assert RESPONSES.response_text(response) == "think done{}"
    completed = {"type": "response.completed", "response": response}
    assert RESPONSES.chunk_usage(completed) == read
    assert RESPONSES.chunk_usage({"type": "response.created", "response": response}) is None
    assert RESPONSES.chunk_finishes(completed)
    assert RESPONSES.chunk_finishes({"type": "response.incomplete", "response": response})
    assert not RESPONSES.chunk_finishes({"type": "response.output_text.done"})
    assert RESPONSES.chunk_text({"type": "response.output_text.delta", "delta": "he"}) == "he"
    assert RESPONSES.event_name(completed) == "response.completed"
    assert RESPONSES.chunk_failure({"type": "error", "message": "boom"}) == "boom"
    failed = {"type": "response.failed", "response": {"error": {"message": "no capacity"}}}
    assert RESPONSES.chunk_failure(failed) == "no capacity"
    assert RESPONSES.chunk_failure(completed) is None
    event = RESPONSES.stream_error(UpstreamError("backend 'x' failed"))
    assert event == {"type": "error", "code": "bad_gateway", "message": "backend 'x' failed",
                     "param": None}
    assert RESPONSES.done_marker is None
