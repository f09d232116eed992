"""OpenAI Chat Completions: `messages` as parts, its own checks, counts and fields.

Parts, in order: each message's text (a string content, or each `text` content
part), an assistant's `reasoning_content` (thinking, DeepSeek), then its
`tool_calls` (arguments). Images, audio and files are opaque parts. A tool
message's result carries the name and arguments of the call it answers, found
by `tool_call_id`, so compressors know which command produced it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokenomy.errors import PayloadTooLarge, TokenomyError
from tokenomy.tokenizers import count_messages, message_text
from tokenomy.transcript.checks import (
    MAX_CHOICES,
    MAX_OUTPUT_TOKENS,
    bad,
    check_int,
    check_model,
    check_number,
    check_type,
    require_object,
    temperature_zero,
)
from tokenomy.transcript.media import Media, split_data_url
from tokenomy.transcript.parts import Part, PartKind
from tokenomy.transcript.protocol import append_to_messages, only_fields, positive_int
from tokenomy.usage import Usage

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

# The request fields of the Chat Completions API (OpenAI's reference), plus the
# extensions OpenAI-compatible servers define that tokenomy's planner writes
# (`thinking`, `chat_template_kwargs`, `extra_body`, `reasoning`, `output_config`) and
# common sampler fields of open-model servers. Nothing else is forwarded.
REQUEST_FIELDS = frozenset({
    "model", "messages", "audio", "frequency_penalty", "function_call", "functions",
    "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata",
    "modalities", "n", "parallel_tool_calls", "prediction", "presence_penalty",
    "prompt_cache_key", "prompt_cache_retention", "reasoning_effort", "response_format",
    "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
    "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p",
    "user", "verbosity", "web_search_options",
    "thinking", "chat_template_kwargs", "extra_body", "reasoning", "output_config",
    "top_k", "min_p", "repetition_penalty",
})

_TEXT_PARTS = ("text", "input_text")
_ROLE = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant",
         "tool": "tool", "function": "tool"}
_KIND = {"system": PartKind.SYSTEM, "user": PartKind.USER_TEXT,
         "assistant": PartKind.ASSISTANT_TEXT, "tool": PartKind.TOOL_RESULT}


class OpenAIChat:
    name = "openai.chat"
    path = "/v1/chat/completions"
    request_fields = REQUEST_FIELDS
    forward_headers: frozenset[str] = frozenset()
    done_marker: str | None = "[DONE]"

    def validate(self, body: Any, *, max_items: int) -> dict[str, Any]:
        body = require_object(body)
        check_model(body)
        messages = body.get("messages")
        if messages is None:
            raise bad("'messages' is a required property", "messages")
        if not isinstance(messages, list) or not messages:
            raise bad("'messages' must be a non-empty array of message objects", "messages")
        if len(messages) > max_items:
            raise PayloadTooLarge(
                f"{len(messages)} messages exceed this proxy's limit of {max_items}",
                param="messages", code="too_many_messages",
            )
        for index, message in enumerate(messages):
            _check_message(index, message)
        check_type(body, "stream", bool, "a boolean")
        check_int(body, "max_tokens", MAX_OUTPUT_TOKENS)
        check_int(body, "max_completion_tokens", MAX_OUTPUT_TOKENS)
        check_int(body, "n", MAX_CHOICES)
        check_number(body, "temperature", 0, 2)
        check_number(body, "top_p", 0, 1)
        check_type(body, "tools", list, "an array")
        check_type(body, "stream_options", dict, "an object")
        return body

    def parts(self, body: dict[str, Any]) -> list[Part]:
        messages = body.get("messages") or []
        calls = _tool_calls_by_id(messages)
        out: list[Part] = []
        for i, message in enumerate(messages):
            role = _ROLE.get(str(message.get("role")), "user")
            kind = _KIND[role]
            call_id = message.get("tool_call_id") if role == "tool" else None
            name, arguments = calls.get(call_id, (message.get("name"), None)) \
                if call_id else (None, None)
            extra = {"tool_call_id": call_id, "tool_name": name, "tool_input": arguments} \
                if role == "tool" else {}
            content = message.get("content")
            marked = "cache_control" in message
            if isinstance(content, str):
                out.append(Part(i, role, kind, content, ("messages", i, "content"), marked,
                                **extra))
            elif isinstance(content, list):
                for j, item in enumerate(content):
                    if not isinstance(item, dict):
                        continue
                    mark = marked or "cache_control" in item
                    if item.get("type") in _TEXT_PARTS and isinstance(item.get("text"), str):
                        out.append(Part(i, role, kind, item["text"],
                                        ("messages", i, "content", j, "text"), mark, **extra))
                    else:
                        out.append(Part(i, role, PartKind.OPAQUE, "", None, mark))
            if role == "assistant":
                thinking = message.get("reasoning_content")
                if isinstance(thinking, str) and thinking:
                    out.append(Part(i, role, PartKind.THINKING, thinking,
                                    ("messages", i, "reasoning_content")))
                for j, call in enumerate(message.get("tool_calls") or ()):
                    function = call.get("function") if isinstance(call, dict) else None
                    if not isinstance(function, dict):
                        continue
                    arguments = function.get("arguments")
                    path = ("messages", i, "tool_calls", j, "function", "arguments") \
                        if isinstance(arguments, str) else None
                    out.append(Part(i, role, PartKind.TOOL_CALL, str(arguments or ""), path,
                                    tool_call_id=call.get("id"),
                                    tool_name=function.get("name")))
        return out

    def count(self, body: dict[str, Any], model: str) -> int:
        return count_messages(body.get("messages") or [], model, body.get("tools"))

    def max_output_tokens(self, body: dict[str, Any]) -> int | None:
        for field in ("max_completion_tokens", "max_tokens"):
            value = positive_int(body.get(field))
            if value is not None:
                return value
        return None

    def choices(self, body: dict[str, Any]) -> int:
        n = body.get("n")
        return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1

    def media(self, body: dict[str, Any]) -> list[Media]:
        found: list[Media] = []
        for message in body.get("messages") or ():
            content = message.get("content") if isinstance(message, dict) else None
            if not isinstance(content, list):
                continue
            for item in content:
                media = _media_of(item) if isinstance(item, dict) else None
                if media is not None:
                    found.append(media)
        return found

    def with_output_cap(self, body: dict[str, Any], tokens: int) -> dict[str, Any]:
        if self.max_output_tokens(body) is not None:
            return body
        # `max_tokens`: every OpenAI-compatible server reads it (models known to reject
        # it, the o-series, have a documented maximum and never get a cap written).
        return {**body, "max_tokens": tokens}

    def is_stream(self, body: dict[str, Any]) -> bool:
        return bool(body.get("stream"))

    def deterministic(self, body: dict[str, Any]) -> bool:
        return temperature_zero(body)

    def forwarded(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        out = dict(only_fields(body, self.request_fields))
        out["model"] = model
        if out.get("stream"):
            # Ask for usage so the ledger records real numbers; `hide_usage` removes the
            # extra chunk again for clients that did not ask for it.
            out["stream_options"] = {**(out.get("stream_options") or {}), "include_usage": True}
        return out

    def append_user_text(self, body: dict[str, Any], text: str) -> str:
        return append_to_messages(body, text)

    def response_usage(self, response: dict[str, Any]) -> Usage | None:
        return Usage.from_openai(response.get("usage"))

    def chunk_usage(self, chunk: dict[str, Any]) -> Usage | None:
        return Usage.from_openai(chunk.get("usage"))

    def with_usage(self, response: dict[str, Any], usage: Usage) -> dict[str, Any]:
        return {**response, "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        }}

    def response_text(self, response: dict[str, Any]) -> str:
        return "".join(message_text((c.get("message") or {}).get("content"))
                       for c in response.get("choices") or () if isinstance(c, dict))

    def chunk_text(self, chunk: dict[str, Any]) -> str:
        out = []
        for choice in chunk.get("choices") or ():
            delta = (choice.get("delta") or {}) if isinstance(choice, dict) else {}
            for field in ("content", "reasoning_content"):
                if isinstance(delta.get(field), str):
                    out.append(delta[field])
        return "".join(out)

    def hide_usage(self, body: dict[str, Any]) -> Callable[[dict[str, Any]], Any] | None:
        return None if client_wants_usage(body) else without_usage

    def usage_chunk(self, body: dict[str, Any], usage: Usage,
                    last: dict[str, Any] | None) -> dict[str, Any] | None:
        if not client_wants_usage(body):
            return None
        last = last or {}
        return {
            "id": last.get("id") or "chatcmpl-tokenomy",
            "object": "chat.completion.chunk",
            "created": last.get("created") or 0,
            "model": last.get("model") or body.get("model"),
            "choices": [],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
        }


    def reasoning_fields(self, knobs: dict[str, Any]) -> dict[str, Any]:
        return knobs

    def error_body(self, error: TokenomyError) -> dict[str, Any]:
        return error.to_dict()

    def event_name(self, chunk: dict[str, Any]) -> str | None:
        return None

    def stream_error(self, error: TokenomyError) -> dict[str, Any]:
        return error.to_dict()

    def chunk_failure(self, chunk: dict[str, Any]) -> str | None:
        if "error" in chunk and "choices" not in chunk:
            error = chunk.get("error")
            message = error.get("message") if isinstance(error, dict) else error
            return str(message or "unknown error")
        return None

    def chunk_finishes(self, chunk: dict[str, Any]) -> bool:
        return any(isinstance(choice, dict) and choice.get("finish_reason")
                   for choice in chunk.get("choices") or ())


def client_wants_usage(body: dict[str, Any]) -> bool:
    return bool((body.get("stream_options") or {}).get("include_usage"))


def without_usage(chunk: dict[str, Any]) -> dict[str, Any] | None:
    """A chunk as a client that did not ask for stream usage sees it (None: drop it)."""
    if chunk.get("usage") and not chunk.get("choices"):
        return None
    if "usage" in chunk:
        return {k: v for k, v in chunk.items() if k != "usage"}
    return chunk


def _media_of(item: dict[str, Any]) -> Media | None:
    """An image, audio or file content part as `Media` (None for text and the rest)."""
    kind = item.get("type")
    if kind == "image_url":
        spec = item.get("image_url")
        url = spec.get("url") if isinstance(spec, dict) else spec
        detail = str(spec.get("detail") or "auto") if isinstance(spec, dict) else "auto"
        if not isinstance(url, str):
            return Media("image", detail=detail)
        inline = split_data_url(url)
        if inline is not None:
            return Media("image", data=inline[1], detail=detail, format=inline[0])
        return Media("image", url=url, detail=detail)
    if kind == "input_audio":
        spec = item.get("input_audio")
        spec = spec if isinstance(spec, dict) else {}
        data = spec.get("data")
        return Media("audio", data=data if isinstance(data, str) else None,
                     format=str(spec.get("format") or "") or None)
    if kind == "file":
        spec = item.get("file")
        spec = spec if isinstance(spec, dict) else {}
        raw = spec.get("file_data")
        inline = split_data_url(raw) if isinstance(raw, str) else None
        data = inline[1] if inline is not None else (raw if isinstance(raw, str) else None)
        return Media("file", data=data, format=inline[0] if inline else None)
    return None


def _check_message(index: int, message: Any) -> None:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise bad(f"{where} must be an object", where)
    role = message.get("role")
    if role not in ROLES:
        raise bad(f"{where}.role must be one of {sorted(ROLES)}, got {role!r}", f"{where}.role")
    content = message.get("content")
    if content is not None and not isinstance(content, str | list):
        raise bad(f"{where}.content must be a string or an array of content parts",
                  f"{where}.content")
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise bad(f"{where}.content parts must be objects with a 'type'",
                          f"{where}.content")
    if content is None and role in ("user", "system", "developer"):
        raise bad(f"{where}.content is required for role {role!r}", f"{where}.content")


def _tool_calls_by_id(messages: list[Any]) -> dict[Any, tuple[str | None, str | None]]:
    found: dict[Any, tuple[str | None, str | None]] = {}
    for message in messages:
        if not isinstance(message, dict):
            continue
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                function = call["function"]
                found[call.get("id")] = (function.get("name"), function.get("arguments"))
    return found


OPENAI_CHAT = OpenAIChat()
