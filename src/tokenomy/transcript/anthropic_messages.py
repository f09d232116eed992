"""Anthropic Messages (`POST /v1/messages`): its parts, checks, counts, fields and wire format.

Parts, in order: the top-level `system` (a string, or each text block), then
each message's blocks. `text` blocks are user or assistant text; `tool_use`
is a tool call (its `input` as JSON, read-only: it is an object, not a
string); a `tool_result` is role "tool" and carries the name and input of the
`tool_use` it answers (found by `tool_use_id`), its text editable whether it
is a string or text blocks; `thinking` is read-only (its `signature` signs the
exact text); images, documents, `redacted_thinking`, server tool blocks
(`server_tool_use`, `web_search_tool_result`, ...) and any block type that does
not exist yet are opaque. A block with `cache_control` gives its parts a cache
mark. An edit writes one string back at its part's path; every other byte
(signatures, cache_control, unknown fields) reaches the backend as sent.

Wire format: errors are `{"type": "error", "error": {"type", "message"}}`
with Anthropic's type for the status (tokenomy's own detail, e.g. a budget's
figures, under `error.tokenomy`); stream events are named by their `type`
(`message_start`, `content_block_start`/`_delta`/`_stop`, `message_delta`,
`message_stop`, `ping`, `error`) and a stream is complete at `message_stop`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from tokenomy.errors import TokenomyError, UpstreamError
from tokenomy.stream import close_source
from tokenomy.tokenizers import get_encoder
from tokenomy.transcript.anthropic_cache import place_breakpoints
from tokenomy.transcript.anthropic_checks import check_request
from tokenomy.transcript.checks import temperature_zero
from tokenomy.transcript.media import Media
from tokenomy.transcript.parts import Part, PartKind
from tokenomy.transcript.protocol import append_to_messages, only_fields, positive_int
from tokenomy.usage import Usage

# The Messages API's request fields (Anthropic's reference, GA and beta). Nothing else
# in a body reaches a backend; billing fields (`billing_policy`, `fallback_credit_token`)
# and model `fallbacks` are left out on purpose: the proxy's config decides those.
REQUEST_FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
    "temperature", "top_k", "top_p", "tools", "tool_choice", "thinking", "service_tier",
    "container", "mcp_servers", "context_management", "output_config", "output_format",
    "cache_control", "inference_geo", "speed", "diagnostics", "compaction", "thread",
})
# What `POST /v1/messages/count_tokens` takes.
COUNT_FIELDS = frozenset({
    "model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers",
    "context_management", "output_config", "output_format", "cache_control", "speed",
})
# Client headers a backend may receive: the API version and beta flags the client's
# request depends on, and Claude Code's app tag. Never credentials.
FORWARD_HEADERS = frozenset({"anthropic-version", "anthropic-beta", "x-app"})

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 500: "api_error", 504: "timeout_error",
               529: "overloaded_error"}

# Images and PDF documents are not text: `media` lists them and transcript.media prices
# them by Anthropic's rules (width*height/750, ~1,600 at most; a PDF page as an image
# plus its text), so `count` is the text alone.
KNOWN_TYPES = frozenset(ERROR_TYPES.values())
TOOLS_OVERHEAD = 346  # the tool-use system prompt (Anthropic's pricing page, tool_choice auto)
PER_MESSAGE = 3  # role framing, as counted for chat

_TEXT = ("text",)
_OPENAI_EFFORT = {"none": "low", "minimal": "low", "low": "low", "medium": "medium",
                  "high": "high", "xhigh": "max"}


def error_type(error: TokenomyError) -> str:
    """Anthropic's error type for a status (its SDKs pick the exception class by it), or
    the type a backend reported itself (a mid-stream `overloaded_error`)."""
    if isinstance(error, UpstreamError) and error.type in KNOWN_TYPES:
        return error.type
    found = ERROR_TYPES.get(error.status)
    if found is not None:
        return found
    return "invalid_request_error" if 400 <= error.status < 500 else "api_error"


def error_object(error: TokenomyError) -> dict[str, Any]:
    body: dict[str, Any] = {"type": error_type(error), "message": error.message}
    detail = {"code": error.code, **({"param": error.param} if error.param else {}),
              **error.extra}
    if any(value is not None for value in detail.values()):
        body["tokenomy"] = detail
    return {"type": "error", "error": body}


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class AnthropicMessages:
    name = "anthropic.messages"
    path = "/v1/messages"
    request_fields = REQUEST_FIELDS
    forward_headers = FORWARD_HEADERS
    done_marker: str | None = None

    def validate(self, body: Any, *, max_items: int) -> dict[str, Any]:
        return check_request(body, max_items=max_items)

    # -- the transcript --------------------------------------------------------------

    def parts(self, body: dict[str, Any]) -> list[Part]:
        out: list[Part] = []
        system = body.get("system")
        if isinstance(system, str):
            out.append(Part(-1, "system", PartKind.SYSTEM, system, ("system",)))
        elif isinstance(system, list):
            for j, block in enumerate(system):
                if isinstance(block, dict) and isinstance(block.get("text"), str):
                    out.append(Part(-1, "system", PartKind.SYSTEM, block["text"],
                                    ("system", j, "text"), "cache_control" in block))
        messages = body.get("messages") or []
        calls = _tool_uses(messages)
        for i, message in enumerate(messages):
            role = "assistant" if message.get("role") == "assistant" else "user"
            kind = PartKind.ASSISTANT_TEXT if role == "assistant" else PartKind.USER_TEXT
            content = message.get("content")
            if isinstance(content, str):
                out.append(Part(i, role, kind, content, ("messages", i, "content")))
                continue
            for j, block in enumerate(content or ()):
                _block_parts(out, i, role, kind, j, block, calls)
        return out

    def count(self, body: dict[str, Any], model: str) -> int:
        count = get_encoder(model).count
        total = 0
        system = body.get("system")
        if isinstance(system, str):
            total += count(system)
        elif isinstance(system, list):
            total += sum(_block_tokens(block, count) for block in system)
        for message in body.get("messages") or ():
            total += PER_MESSAGE
            content = message.get("content")
            if isinstance(content, str):
                total += count(content)
            elif isinstance(content, list):
                total += sum(_block_tokens(block, count) for block in content)
        tools = body.get("tools")
        if tools:
            total += TOOLS_OVERHEAD + sum(count(_dumps(tool)) for tool in tools)
        return total

    def choices(self, body: dict[str, Any]) -> int:
        return 1  # the Messages API has no `n`

    def media(self, body: dict[str, Any]) -> list[Media]:
        found: list[Media] = []
        system = body.get("system")
        for block in system if isinstance(system, list) else ():
            _block_media(block, found)
        for message in body.get("messages") or ():
            content = message.get("content") if isinstance(message, dict) else None
            for block in content if isinstance(content, list) else ():
                _block_media(block, found)
        return found

    def with_output_cap(self, body: dict[str, Any], tokens: int) -> dict[str, Any]:
        if self.max_output_tokens(body) is not None:
            return body
        return {**body, "max_tokens": tokens}

    def usage_chunk(self, body: dict[str, Any], usage: Usage,
                    last: dict[str, Any] | None) -> dict[str, Any] | None:
        return None  # usage always travels in message_start / message_delta

    def max_output_tokens(self, body: dict[str, Any]) -> int | None:
        return positive_int(body.get("max_tokens"))

    def is_stream(self, body: dict[str, Any]) -> bool:
        return bool(body.get("stream"))

    def deterministic(self, body: dict[str, Any]) -> bool:
        """`temperature: 0` (the response cache may answer it; see protocol.Deterministic)."""
        return temperature_zero(body)

    def forwarded(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        out = dict(only_fields(body, self.request_fields))
        out["model"] = model
        return out

    def append_user_text(self, body: dict[str, Any], text: str) -> str:
        return append_to_messages(body, text)

    def reasoning_fields(self, knobs: dict[str, Any]) -> dict[str, Any]:
        """`thinking`, `output_config` and `max_tokens` are Anthropic's own; an OpenAI
        `reasoning_effort` becomes `output_config.effort`; chat-server extensions
        (`chat_template_kwargs`, `extra_body`) have no Messages field and are dropped."""
        out: dict[str, Any] = {}
        for key, value in knobs.items():
            if key in ("thinking", "max_tokens"):
                out[key] = value
            elif key == "output_config" and isinstance(value, dict):
                out["output_config"] = {**out.get("output_config", {}), **value}
            elif key == "reasoning_effort" and isinstance(value, str):
                effort = _OPENAI_EFFORT.get(value, value)
                out["output_config"] = {**out.get("output_config", {}), "effort": effort}
        return out

    def cache_breakpoints(self, body: dict[str, Any], ttl: str = "5m"
                          ) -> tuple[dict[str, Any], list[str]] | None:
        """Prompt-cache breakpoints for a body without any (see anthropic_cache.py):
        the top-level fields to replace, and where marks went; None to leave it."""
        return place_breakpoints(body, ttl)

    # -- answers and usage -----------------------------------------------------------

    def response_usage(self, response: dict[str, Any]) -> Usage | None:
        return Usage.from_anthropic(response.get("usage"))

    def with_usage(self, response: dict[str, Any], usage: Usage) -> dict[str, Any]:
        # Anthropic's input_tokens leaves out cache reads and writes (from_anthropic's inverse).
        return {**response, "usage": {
            "input_tokens": usage.uncached_tokens,
            "cache_creation_input_tokens": usage.cache_write_tokens,
            "cache_read_input_tokens": usage.cached_tokens,
            "output_tokens": usage.completion_tokens,
        }}

    def chunk_usage(self, chunk: dict[str, Any]) -> Usage | None:
        """`message_start` carries the input buckets, `message_delta` the whole count
        at the end (see `complete_usage`: the backend's stream is read through it)."""
        kind = chunk.get("type")
        if kind == "message_delta":
            return Usage.from_anthropic(chunk.get("usage"))
        if kind == "message_start":
            message = chunk.get("message")
            return Usage.from_anthropic(message.get("usage")) \
                if isinstance(message, dict) else None
        return None

    def response_text(self, response: dict[str, Any]) -> str:
        return "".join(_block_output(block) for block in response.get("content") or ()
                       if isinstance(block, dict))

    def chunk_text(self, chunk: dict[str, Any]) -> str:
        if chunk.get("type") != "content_block_delta":
            return ""
        delta = chunk.get("delta")
        if not isinstance(delta, dict):
            return ""
        for field in ("text", "thinking", "partial_json"):
            value = delta.get(field)
            if isinstance(value, str):
                return value
        return ""

    def hide_usage(self, body: dict[str, Any]) -> Callable[[dict[str, Any]], Any] | None:
        return None  # Anthropic streams always report usage: nothing was added

    # -- the wire format -------------------------------------------------------------

    def error_body(self, error: TokenomyError) -> dict[str, Any]:
        return error_object(error)

    def event_name(self, chunk: dict[str, Any]) -> str | None:
        kind = chunk.get("type")
        return kind if isinstance(kind, str) else None

    def stream_error(self, error: TokenomyError) -> dict[str, Any]:
        return error_object(error)

    def chunk_failure(self, chunk: dict[str, Any]) -> str | None:
        if chunk.get("type") != "error":
            return None
        error = chunk.get("error")
        if isinstance(error, dict):
            return f"{error.get('type') or 'error'}: {error.get('message') or 'no details'}"
        return str(error or "unknown error")

    def chunk_finishes(self, chunk: dict[str, Any]) -> bool:
        return chunk.get("type") == "message_stop"


USAGE_INPUT_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
                      "cache_creation")


async def complete_usage(chunks: AsyncIterator[dict[str, Any]]
                         ) -> AsyncIterator[dict[str, Any]]:
    """A backend's stream whose `message_delta` usage holds the whole count.

    Anthropic reports the input buckets in `message_start` and the output in
    `message_delta` (whose figures are cumulative; newer API versions repeat the
    input ones there too). Where a backend leaves them out, the `message_start`
    figures are copied in, so the one usage the ledger (and the client SDK, which
    reads both) sees at the end is complete. Present values are never changed.
    """
    started: dict[str, Any] = {}
    try:
        async for chunk in chunks:
            kind = chunk.get("type")
            if kind == "message_start":
                message = chunk.get("message")
                usage = message.get("usage") if isinstance(message, dict) else None
                if isinstance(usage, dict):
                    started = {k: usage[k] for k in USAGE_INPUT_FIELDS if k in usage}
            elif kind == "message_delta" and started:
                usage = chunk.get("usage")
                usage = usage if isinstance(usage, dict) else {}
                missing = {k: v for k, v in started.items() if usage.get(k) is None}
                if missing:
                    chunk = {**chunk, "usage": {**usage, **missing}}
            yield chunk
    finally:
        # Closing this stream (a client gone) closes the backend's at once, not at GC.
        await close_source(chunks)


def _block_parts(out: list[Part], i: int, role: str, kind: PartKind, j: int, block: Any,
                 calls: dict[str, tuple[str | None, str]]) -> None:
    if not isinstance(block, dict):
        return
    marked = "cache_control" in block
    block_type = block.get("type")
    if block_type in _TEXT and isinstance(block.get("text"), str):
        out.append(Part(i, role, kind, block["text"], ("messages", i, "content", j, "text"),
                        marked))
    elif block_type == "tool_use":
        # Its input is an object: editable as JSON text (a file the agent writes in it).
        tool_input = block.get("input")
        path = ("messages", i, "content", j, "input") if isinstance(tool_input, dict) else None
        out.append(Part(i, role, PartKind.TOOL_CALL, _dumps(tool_input or {}), path, marked,
                        tool_call_id=block.get("id"), tool_name=block.get("name"),
                        json_value=path is not None))
    elif block_type == "tool_result":
        call_id = block.get("tool_use_id")
        name, arguments = calls.get(call_id, (None, None)) if isinstance(call_id, str) \
            else (None, None)
        extra: dict[str, Any] = {"tool_call_id": call_id, "tool_name": name,
                                 "tool_input": arguments}
        inner = block.get("content")
        if isinstance(inner, str):
            out.append(Part(i, "tool", PartKind.TOOL_RESULT, inner,
                            ("messages", i, "content", j, "content"), marked, **extra))
        elif isinstance(inner, list):
            for k, item in enumerate(inner):
                if not isinstance(item, dict):
                    continue
                mark = marked or "cache_control" in item
                if item.get("type") in _TEXT and isinstance(item.get("text"), str):
                    out.append(Part(i, "tool", PartKind.TOOL_RESULT, item["text"],
                                    ("messages", i, "content", j, "content", k, "text"), mark,
                                    **extra))
                else:
                    out.append(Part(i, "tool", PartKind.OPAQUE, "", None, mark))
    elif block_type == "thinking" and isinstance(block.get("thinking"), str):
        # Read-only: the signature signs this exact text.
        out.append(Part(i, role, PartKind.THINKING, block["thinking"], None, marked))
    else:  # image, document, redacted_thinking, server tool blocks, types yet to come
        out.append(Part(i, role, PartKind.OPAQUE, "", None, marked))


def _tool_uses(messages: list[Any]) -> dict[str, tuple[str | None, str]]:
    """tool_use id -> (tool name, its input as JSON)."""
    found: dict[str, tuple[str | None, str]] = {}
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_use" \
                    and isinstance(block.get("id"), str):
                found[block["id"]] = (block.get("name"), _dumps(block.get("input") or {}))
    return found


def _block_tokens(block: Any, count: Callable[[str], int]) -> int:
    """Prompt tokens of one content block (system, message or tool_result content)."""
    if isinstance(block, str):
        return count(block)
    if not isinstance(block, dict):
        return 0
    kind = block.get("type")
    if kind == "text":
        return count(str(block.get("text") or ""))
    if kind == "tool_use":
        return count(str(block.get("name") or "")) + count(_dumps(block.get("input") or {}))
    if kind == "tool_result":
        inner = block.get("content")
        if isinstance(inner, list):
            return PER_MESSAGE + sum(_block_tokens(item, count) for item in inner)
        return PER_MESSAGE + count(str(inner or ""))
    if kind == "thinking":
        return count(str(block.get("thinking") or ""))
    if kind == "image":
        return 0  # priced from its size by transcript.media (see `media`)
    if kind == "document":
        return _document_tokens(block, count)
    # redacted_thinking, server tool blocks, search results, types yet to come: their
    # JSON, so an estimate never counts an unknown block as free.
    return count(_dumps(block))


def _document_tokens(block: dict[str, Any], count: Callable[[str], int]) -> int:
    source = block.get("source")
    source = source if isinstance(source, dict) else {}
    if source.get("type") == "text":
        return count(str(source.get("data") or ""))
    if source.get("type") == "content":
        return sum(_block_tokens(item, count) for item in source.get("content") or ())
    return 0  # a PDF (base64 or URL): priced by its pages by transcript.media (`media`)


def _block_media(block: Any, found: list[Media]) -> None:
    """Images and PDF documents of a content block (inside tool results too) as `Media`."""
    if not isinstance(block, dict):
        return
    kind = block.get("type")
    if kind == "tool_result" and isinstance(block.get("content"), list):
        for item in block["content"]:
            _block_media(item, found)
        return
    if kind not in ("image", "document"):
        return
    source = block.get("source")
    source = source if isinstance(source, dict) else {}
    if kind == "document" and source.get("type") in ("text", "content"):
        return  # text: counted as text
    data = source.get("data") if source.get("type") == "base64" else None
    url = source.get("url") if isinstance(source.get("url"), str) else None
    media_type = source.get("media_type") if isinstance(source.get("media_type"), str) else None
    found.append(Media("image" if kind == "image" else "file",
                       data=data if isinstance(data, str) else None, url=url,
                       format=media_type))


def _block_output(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text") or "")
    if kind == "thinking":
        return str(block.get("thinking") or "")
    if kind == "tool_use":
        return _dumps(block.get("input") or {})
    return ""


class AnthropicCountTokens(AnthropicMessages):
    """`POST /v1/messages/count_tokens`: a Messages body without `max_tokens`, whose
    answer is `{"input_tokens": N}`. Not a model endpoint, so it is not registered as a
    protocol; server/count_tokens.py serves it."""

    name = "anthropic.count_tokens"
    path = "/v1/messages/count_tokens"
    request_fields = COUNT_FIELDS

    def validate(self, body: Any, *, max_items: int) -> dict[str, Any]:
        return check_request(body, max_items=max_items, needs_max_tokens=False)


ANTHROPIC_MESSAGES = AnthropicMessages()
ANTHROPIC_COUNT_TOKENS = AnthropicCountTokens()
