"""A deterministic Anthropic-compatible backend for tests and benchmarks (loopback only).

`tokenomy.testing.upstream`'s app hands it `POST /v1/messages` and
`POST /v1/messages/count_tokens`; the last body and headers are recorded there
(`GET /_last`, `/_last_headers`). It answers as Anthropic's API does: the same
JSON, the same SSE framing and order (`message_start`, `ping`,
`content_block_start` / `_delta` / `_stop`, `message_delta` carrying only
`output_tokens`, `message_stop`), errors as `{"type": "error", "error": {...}}`.

    any model        "echo: <last user text>" (text blocks, else tool results)
    tools            a `tool_use` of the first (or chosen) tool with
                     {"echo": <text>}, unless tool_choice is none or the last user
                     turn answers a tool call
    thinking         a `thinking` block first, signed: a thinking block sent back
                     with a signature of ours that does not sign its text is a 400,
                     as on Anthropic's API (proof that a proxy sent it unchanged)
    fault:400|500|529|429   that status in Anthropic's error shape (429 with retry-after 0)
    fault:cut        streams a few events, then drops the connection
    fault:midstream  streams, then an `error` event (overloaded_error)

Usage counts every text (o200k_base) and simulates Anthropic's prompt cache:
blocks with `cache_control` (or the last block, for a top-level
`cache_control`) are breakpoints; a prefix of at least 1,024 tokens written at a
breakpoint is read by a later request that reaches it (looking back up to 20
blocks from each breakpoint), so `cache_read_input_tokens`,
`cache_creation_input_tokens` and `cache_creation` (5-minute / 1-hour) are real
functions of what was sent. POST /_reset forgets the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import orjson

from tokenomy.testing.upstream import _count_tokens, _read_body, _send_json
from tokenomy.upstreams.sse import encode

MIN_CACHEABLE = 1024
LOOKBACK = 20
IMAGE_TOKENS = 1000


def sign(thinking: str) -> str:
    """The signature this upstream gives a thinking text (and checks when it comes back)."""
    return "sig-" + hashlib.sha256(thinking.encode()).hexdigest()[:40]


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


FAULTS = {"400": (400, "invalid_request_error"), "500": (500, "api_error"),
          "529": (529, "overloaded_error"), "429": (429, "rate_limit_error")}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    out = []
    for block in content or ():
        if isinstance(block, dict) and block.get("type") == "text":
            out.append(str(block.get("text") or ""))
    return "\n".join(out)


def _last_user(messages: list[dict[str, Any]]) -> tuple[str, bool]:
    """The last user turn's text (its tool results' when it has no text), and whether
    it answers a tool call."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"] \
            if isinstance(content, list) else []
        text = _text_of(content)
        if not text and results:
            text = "\n".join(_text_of(b.get("content")) for b in results)
        return text, bool(results)
    return "", False


def _bad_signature(messages: list[dict[str, Any]]) -> str | None:
    for i, message in enumerate(messages):
        content = message.get("content")
        if message.get("role") != "assistant" or not isinstance(content, list):
            continue
        for j, block in enumerate(content):
            if not isinstance(block, dict) or block.get("type") != "thinking":
                continue
            signature = str(block.get("signature") or "")
            # Only its own signatures can be checked (a recorded one is Anthropic's).
            if signature.startswith("sig-") and signature != sign(str(block.get("thinking"))):
                return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
    return None


# -- usage and the simulated prompt cache ----------------------------------------------

def _block_tokens(block: Any) -> int:
    if isinstance(block, str):
        return _count_tokens(block)
    kind = block.get("type")
    if kind == "text":
        return _count_tokens(str(block.get("text") or ""))
    if kind == "tool_use":
        return _count_tokens(str(block.get("name") or "")) + _count_tokens(
            orjson.dumps(block.get("input") or {}).decode())
    if kind == "tool_result":
        inner = block.get("content")
        if isinstance(inner, list):
            return sum(_block_tokens(b) for b in inner if isinstance(b, dict))
        return _count_tokens(str(inner or ""))
    if kind == "thinking":
        return _count_tokens(str(block.get("thinking") or ""))
    if kind in ("image", "document"):
        return IMAGE_TOKENS
    return _count_tokens(orjson.dumps(block).decode())


def _segments(body: dict[str, Any]) -> list[tuple[bytes, int, dict[str, Any] | None]]:
    """(the block without its cache_control, its tokens, its cache_control), in the
    order Anthropic caches a prompt: tools, system, messages."""
    blocks: list[tuple[bool, dict[str, Any]]] = [
        (True, t) for t in body.get("tools") or () if isinstance(t, dict)]
    system = body.get("system")
    if isinstance(system, str) and system:
        blocks.append((False, {"type": "text", "text": system}))
    elif isinstance(system, list):
        blocks += [(False, b) for b in system if isinstance(b, dict)]
    for message in body.get("messages") or ():
        content = message.get("content")
        items = [{"type": "text", "text": content}] if isinstance(content, str) else content
        blocks += [(False, {**b, "role": message.get("role")})
                   for b in items or () if isinstance(b, dict)]
    out = []
    for is_tool, block in blocks:
        mark = block.get("cache_control")
        bare = {k: v for k, v in block.items() if k != "cache_control"}
        raw = orjson.dumps(bare)
        tokens = _count_tokens(raw.decode()) if is_tool else _block_tokens(bare)
        out.append((raw, tokens, mark if isinstance(mark, dict) else None))
    if out and isinstance(body.get("cache_control"), dict) and out[-1][2] is None:
        out[-1] = (out[-1][0], out[-1][1], body["cache_control"])
    return out


def usage_of(body: dict[str, Any], cache: dict[str, str]) -> dict[str, Any]:
    """Input usage with the simulated cache; `cache` (prefix hash -> ttl) is updated."""
    segments = _segments(body)
    digest = hashlib.sha256()
    prefixes: list[tuple[str, int]] = []  # (hash, tokens) of the prefix ending at each block
    total = 0
    for raw, tokens, _ in segments:
        digest.update(raw)
        total += tokens
        prefixes.append((digest.copy().hexdigest(), total))
    breakpoints = [i for i, (_, _, mark) in enumerate(segments) if mark is not None]
    read = 0
    for point in breakpoints:
        for i in range(point, max(-1, point - LOOKBACK), -1):
            if prefixes[i][0] in cache:
                read = max(read, prefixes[i][1])
                break
    write = write_1h = 0
    if breakpoints and prefixes[breakpoints[-1]][1] >= MIN_CACHEABLE:
        last = prefixes[breakpoints[-1]][1]
        write = max(0, last - read)
        ttl = (segments[breakpoints[-1]][2] or {}).get("ttl")
        write_1h = write if ttl == "1h" else 0
    for point in breakpoints:
        if prefixes[point][1] >= MIN_CACHEABLE:
            cache[prefixes[point][0]] = str((segments[point][2] or {}).get("ttl") or "5m")
    return {"input_tokens": total - read - write, "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": write - write_1h,
                               "ephemeral_1h_input_tokens": write_1h}}


# -- answers -----------------------------------------------------------------------

def answer_blocks(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    messages = body.get("messages") or []
    last, answers_tool = _last_user(messages)
    blocks: list[dict[str, Any]] = []
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        text = f"The user wrote {len(last)} characters; answer with an echo."
        blocks.append({"type": "thinking", "thinking": text, "signature": sign(text)})
    tools = [t for t in body.get("tools") or () if isinstance(t, dict) and t.get("name")]
    choice = body.get("tool_choice") or {}
    if tools and choice.get("type") != "none" and not answers_tool:
        name = choice.get("name") if choice.get("type") == "tool" else tools[0]["name"]
        blocks.append({"type": "tool_use", "id": "toolu_test0001", "name": name,
                       "input": {"echo": last[:80]}})
        return blocks, "tool_use"
    words = ("echo: " + last[:400]).split(" ")
    stop = "end_turn"
    limit = body.get("max_tokens")
    if isinstance(limit, int) and len(words) > limit:
        words, stop = words[:limit], "max_tokens"
    blocks.append({"type": "text", "text": " ".join(words)})
    return blocks, stop


def _output_tokens(blocks: list[dict[str, Any]]) -> int:
    return sum(len(str(b.get("text") or b.get("thinking") or "").split())
               + (8 if b["type"] == "tool_use" else 0) for b in blocks)


async def app(scope: dict[str, Any], receive: Any, send: Any, state: dict[str, Any]) -> None:
    path = scope["path"]
    raw = await _read_body(receive)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return await _send_json(send, 400, _error("invalid_request_error", "invalid JSON"))
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return await _send_json(send, 400, _error("invalid_request_error",
                                                  "messages: Field required"))
    state["last"] = body
    state["count"] += 1
    cache = state.setdefault("prompt_cache", {})
    if path.endswith("/count_tokens"):
        usage = usage_of(body, {})
        return await _send_json(send, 200, {"input_tokens": usage["input_tokens"]})
    model = str(body.get("model") or "")
    state["by_model"][model] = state["by_model"].get(model, 0) + 1
    fault = model[6:] if model.startswith("fault:") else ""
    if fault in FAULTS:
        status, kind = FAULTS[fault]
        extra = [(b"retry-after", b"0")] if status == 429 else []
        return await _send_json(send, status, _error(kind, f"injected {fault}"), extra)
    bad = _bad_signature(body["messages"])
    if bad is not None:
        return await _send_json(send, 400, _error("invalid_request_error", bad))
    if not isinstance(body.get("max_tokens"), int):
        return await _send_json(send, 400, _error("invalid_request_error",
                                                  "max_tokens: Field required"))
    blocks, stop = answer_blocks(body)
    usage = {**usage_of(body, cache), "output_tokens": _output_tokens(blocks)}
    message = {"id": "msg_test0001", "type": "message", "role": "assistant", "model": model,
               "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": usage}
    if not body.get("stream"):
        return await _send_json(send, 200, message)
    await _stream(send, message, fault)


def stream_events(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The answer as Anthropic streams it, in Anthropic's order."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None,
             "usage": {**usage, "output_tokens": 1}}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"})]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            opening: dict[str, Any] = {"type": "text", "text": ""}
            words = block["text"].split(" ")
            deltas = [{"type": "text_delta", "text": w if n == 0 else " " + w}
                      for n, w in enumerate(words)]
        elif kind == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": block["thinking"]},
                      {"type": "signature_delta", "signature": block["signature"]}]
        else:
            opening = {**block, "input": {}}
            arguments = orjson.dumps(block["input"]).decode()
            half = len(arguments) // 2
            deltas = [{"type": "input_json_delta", "partial_json": arguments[:half]},
                      {"type": "input_json_delta", "partial_json": arguments[half:]}]
        events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                               "content_block": opening}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index,
                                            "delta": delta}) for delta in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": usage["output_tokens"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


async def _stream(send: Any, message: dict[str, Any], fault: str) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"),
                            (b"cache-control", b"no-cache")]})
    events = stream_events(message)
    for index, (name, data) in enumerate(events):
        if fault == "cut" and index == 3:
            raise ConnectionAbortedError("injected: connection dropped mid-stream")
        if fault == "midstream" and index == 3:
            name, data = "error", _error("overloaded_error", "Overloaded")
        await send({"type": "http.response.body", "body": encode(data, name),
                    "more_body": True})
        if fault == "midstream" and index == 3:
            break
        await asyncio.sleep(0)
    await send({"type": "http.response.body", "body": b"", "more_body": False})
