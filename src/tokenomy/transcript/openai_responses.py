"""OpenAI Responses (`POST /v1/responses`): the wire protocol of Codex and the Agents SDK.

The items and how they read as parts are in `responses_items.py`; this module
is the rest of the protocol: the request checks, the fields a backend may
receive, usage, and the stream's event shapes.

Stream: every event is `event: <type>` with a JSON `data:` of the same `type`
(`response.created`, `response.in_progress`, `response.output_item.added`, ...,
`response.completed`, `response.incomplete`, `response.failed`, `error`); there
is no `[DONE]`. Usage is in the terminal event's `response.usage`
(`input_tokens_details.cached_tokens`, `output_tokens_details.reasoning_tokens`).
A failure after the stream started is sent as the API's own `error` event.

Stored state (`previous_response_id`, `store`, `conversation`) passes through
to a backend that speaks Responses; tokenomy keeps none of it (see the README).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokenomy.errors import PayloadTooLarge, TokenomyError
from tokenomy.transcript.checks import (
    MAX_OUTPUT_TOKENS,
    bad,
    check_int,
    check_model,
    check_number,
    check_type,
    require_object,
    temperature_zero,
)
from tokenomy.transcript.media import Media
from tokenomy.transcript.parts import Part
from tokenomy.transcript.protocol import append_to_last_user, only_fields, positive_int
from tokenomy.transcript.responses_items import (
    CALL_ITEMS,
    check_item,
    count_input,
    input_parts,
    media_items,
)
from tokenomy.usage import Usage

# The request body of `POST /v1/responses` (OpenAI's API reference). Nothing else is
# forwarded: not a caller's `api_key`/`base_url`, not litellm's control fields.
REQUEST_FIELDS = frozenset({
    "model", "input", "instructions", "background", "context_management", "conversation",
    "include", "max_output_tokens", "max_tool_calls", "metadata", "parallel_tool_calls",
    "previous_response_id", "prompt", "prompt_cache_key", "prompt_cache_retention",
    "reasoning", "safety_identifier", "service_tier", "store", "stream", "stream_options",
    "temperature", "text", "tool_choice", "tools", "top_logprobs", "top_p", "truncation",
    "user",
})

# Client headers a Responses backend may receive: OpenAI's beta opt-in and the session
# ids Codex sends (its backend routes and caches by them). Never credentials.
FORWARD_HEADERS = frozenset({"openai-beta", "session_id", "conversation_id", "originator"})

# Fields that name state the provider stored: a request with one of them has no `input`
# of its own to show, or shows only the new part.
STATE_FIELDS = ("previous_response_id", "conversation", "prompt")

TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
TEXT_DELTAS = frozenset({"response.output_text.delta", "response.refusal.delta",
                         "response.function_call_arguments.delta",
                         "response.custom_tool_call_input.delta",
                         "response.reasoning_summary_text.delta",
                         "response.reasoning_text.delta"})

_OBJECTS = ("reasoning", "text", "metadata", "stream_options", "prompt", "context_management")
_STRINGS = ("previous_response_id", "prompt_cache_key", "prompt_cache_retention", "truncation",
            "user", "service_tier", "safety_identifier")
_BOOLS = ("stream", "store", "background", "parallel_tool_calls")


class OpenAIResponses:
    name = "openai.responses"
    path = "/v1/responses"
    request_fields = REQUEST_FIELDS
    forward_headers = FORWARD_HEADERS
    done_marker: str | None = None

    def validate(self, body: Any, *, max_items: int) -> dict[str, Any]:
        body = require_object(body)
        check_model(body)
        items = body.get("input")
        if items is None:
            if not any(body.get(field) for field in STATE_FIELDS):
                raise bad("'input' is required: a string or an array of input items", "input")
        elif isinstance(items, list):
            if len(items) > max_items:
                raise PayloadTooLarge(
                    f"{len(items)} input items exceed this proxy's limit of {max_items}",
                    param="input", code="too_many_items",
                )
            for index, item in enumerate(items):
                check_item(index, item)
        elif not isinstance(items, str):
            raise bad("'input' must be a string or an array of input items", "input")
        check_type(body, "instructions", str, "a string")
        for name in _BOOLS:
            check_type(body, name, bool, "a boolean")
        for name in _STRINGS:
            check_type(body, name, str, "a string")
        for name in _OBJECTS:
            check_type(body, name, dict, "an object")
        check_type(body, "conversation", (str, dict), "a string or an object")
        check_type(body, "tool_choice", (str, dict), "a string or an object")
        check_type(body, "include", list, "an array of strings")
        if any(not isinstance(value, str) for value in body.get("include") or ()):
            raise bad("'include' must be an array of strings", "include")
        check_int(body, "max_output_tokens", MAX_OUTPUT_TOKENS)
        check_int(body, "max_tool_calls", MAX_OUTPUT_TOKENS)
        check_int(body, "top_logprobs", 20, low=0)
        check_number(body, "temperature", 0, 2)
        check_number(body, "top_p", 0, 1)
        _check_tools(body.get("tools"))
        return body

    def parts(self, body: dict[str, Any]) -> list[Part]:
        return input_parts(body)

    def count(self, body: dict[str, Any], model: str) -> int:
        """Instructions, input items and tools; images, files and encrypted reasoning by
        estimate. With `previous_response_id` the stored context is not counted: the proxy
        never sees it (the backend's usage settles what it really cost)."""
        return count_input(body, model)

    def choices(self, body: dict[str, Any]) -> int:
        return 1  # the Responses API has no `n`

    def media(self, body: dict[str, Any]) -> list[Media]:
        return media_items(body)

    def with_output_cap(self, body: dict[str, Any], tokens: int) -> dict[str, Any]:
        if self.max_output_tokens(body) is not None:
            return body
        return {**body, "max_output_tokens": tokens}

    def usage_chunk(self, body: dict[str, Any], usage: Usage,
                    last: dict[str, Any] | None) -> dict[str, Any] | None:
        return None  # usage always travels in the terminal response.* event

    def max_output_tokens(self, body: dict[str, Any]) -> int | None:
        return positive_int(body.get("max_output_tokens"))

    def is_stream(self, body: dict[str, Any]) -> bool:
        return bool(body.get("stream"))

    def deterministic(self, body: dict[str, Any]) -> bool:
        return temperature_zero(body)

    def forwarded(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        # Usage is always in the terminal event: nothing to ask for, nothing to hide.
        out = dict(only_fields(body, self.request_fields))
        out["model"] = model
        return out

    def append_user_text(self, body: dict[str, Any], text: str) -> str:
        items = body.get("input")
        if isinstance(items, str):
            body["input"] = f"{items}\n\n{text}"
            return "\n\n" + text
        items = list(items) if isinstance(items, list) else []
        added = append_to_last_user(items, text, block="input_text", is_user=_is_user_item)
        if added is None:
            items.append({"type": "message", "role": "user",
                          "content": [{"type": "input_text", "text": text}]})
            added = text
        body["input"] = items
        return added

    def response_usage(self, response: dict[str, Any]) -> Usage | None:
        return Usage.from_responses(response.get("usage"))

    def with_usage(self, response: dict[str, Any], usage: Usage) -> dict[str, Any]:
        return {**response, "usage": {
            "input_tokens": usage.prompt_tokens,
            "input_tokens_details": {"cached_tokens": usage.cached_tokens},
            "output_tokens": usage.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "total_tokens": usage.total_tokens,
        }}

    def chunk_usage(self, chunk: dict[str, Any]) -> Usage | None:
        if chunk.get("type") not in TERMINAL_EVENTS:
            return None
        response = chunk.get("response")
        return Usage.from_responses(response.get("usage")) if isinstance(response, dict) \
            else None

    def response_text(self, response: dict[str, Any]) -> str:
        return output_text(response.get("output"))

    def chunk_text(self, chunk: dict[str, Any]) -> str:
        if chunk.get("type") in TEXT_DELTAS and isinstance(chunk.get("delta"), str):
            return str(chunk["delta"])
        return ""

    def hide_usage(self, body: dict[str, Any]) -> Callable[[dict[str, Any]], Any] | None:
        return None

    def reasoning_fields(self, knobs: dict[str, Any]) -> dict[str, Any]:
        """`reasoning_effort` -> `reasoning.effort`, `max_tokens` -> `max_output_tokens`.
        The chat-only knobs (`thinking`, `chat_template_kwargs`, ...) have no Responses
        field and are not sent."""
        out: dict[str, Any] = {}
        if "reasoning_effort" in knobs:
            out["reasoning"] = {"effort": knobs["reasoning_effort"]}
        if isinstance(knobs.get("reasoning"), dict):
            out["reasoning"] = {**knobs["reasoning"], **out.get("reasoning", {})}
        if "max_tokens" in knobs:
            out["max_output_tokens"] = knobs["max_tokens"]
        return out

    def error_body(self, error: TokenomyError) -> dict[str, Any]:
        return error.to_dict()

    def event_name(self, chunk: dict[str, Any]) -> str | None:
        kind = chunk.get("type")
        return kind if isinstance(kind, str) else None

    def stream_error(self, error: TokenomyError) -> dict[str, Any]:
        # The API's `error` event: the fields of an error object at the top level.
        return {"type": "error", "code": error.code, "message": error.message,
                "param": error.param}

    def chunk_failure(self, chunk: dict[str, Any]) -> str | None:
        kind = chunk.get("type")
        if kind == "error":
            error = chunk.get("error")
            message = chunk.get("message") or (error.get("message") if isinstance(error, dict)
                                               else error)
            return str(message or "unknown error")
        if kind == "response.failed":
            response = chunk.get("response")
            error = response.get("error") if isinstance(response, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            return str(message or "the response failed")
        return None

    def chunk_finishes(self, chunk: dict[str, Any]) -> bool:
        return chunk.get("type") in TERMINAL_EVENTS


def output_text(output: Any) -> str:
    """The text an answer's output items carry: messages, call arguments, reasoning."""
    pieces: list[str] = []
    for item in output if isinstance(output, list) else ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind in CALL_ITEMS and isinstance(item.get(CALL_ITEMS[kind]), str):
            pieces.append(item[CALL_ITEMS[kind]])
            continue
        for field in ("content", "summary"):
            for piece in item.get(field) or ():
                if isinstance(piece, dict) and isinstance(piece.get("text"), str):
                    pieces.append(piece["text"])
    return "".join(pieces)


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise bad("'tools' must be an array", "tools")
    for j, tool in enumerate(tools):
        where = f"tools[{j}]"
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise bad(f"{where} must be an object with a 'type'", where)
        if tool["type"] in ("function", "custom") and (
                not isinstance(tool.get("name"), str) or not tool["name"]):
            raise bad(f"{where}.name must be a non-empty string", f"{where}.name")


OPENAI_RESPONSES = OpenAIResponses()


def _is_user_item(item: Any) -> bool:
    return isinstance(item, dict) and item.get("role") == "user" \
        and item.get("type", "message") == "message"
