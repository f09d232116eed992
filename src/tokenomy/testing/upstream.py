"""A deterministic OpenAI-compatible backend for tests and benchmarks (loopback only).

It serves Anthropic's Messages API too (`/v1/messages`, see upstream_anthropic.py).

It answers like OpenAI does (same JSON shapes, SSE framing, usage counted with
OpenAI's documented per-message rule on o200k_base) and misbehaves on request:
the model name picks a fault.

    echo-model          "echo: <last user text>"
    fault:500|502|503   that status, every time
    fault:429           429 with `Retry-After: 0`
    fault:429-noretry   429 without Retry-After
    fault:flaky<N>      503 for the first N requests since /_reset, then normal
    fault:timeout       waits 30 s before answering
    fault:malformed     200 with a body that is not JSON
    fault:cut           streams two chunks, then drops the connection
    fault:slow          streams with 20 ms between chunks
    fault:drip          streams 300 words, 20 ms apart (6 s)
    fault:firehose      streams 64 KiB chunks as fast as the client reads, for 20 s
    fault:hang          answers nothing until the caller hangs up (counted in
                        /_stats `hung_up`), at most 30 s
    fault:vary          a different answer every call (consensus never agrees)
    fault:nousage       reports no usage (JSON and stream, even when asked)

A request can also ask for a fault with `metadata.test_fault` (e.g. "vary") and
keep a real model name.

`n` is honoured: n choices, each billed as output.

POST .../responses is the OpenAI Responses API (tokenomy.testing.upstream_responses).

GET /_last returns the last request body, GET /_last_headers its headers (what a
proxy sent: credentials included, to prove where they went); GET /_stats the
request counts (every request, any path); POST /_reset clears them.

Run: python -m tokenomy.testing.upstream --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

import orjson

from tokenomy.testing import upstream_responses
from tokenomy.upstreams.sse import DONE, encode_chunk

Scope = dict[str, Any]

_state: dict[str, Any] = {"last": None, "last_headers": None, "count": 0, "by_model": {},
                         "requests": 0, "hung_up": 0}
_encoding: Any = None


def _count_tokens(text: str) -> int:
    global _encoding
    if _encoding is None:
        from tokenomy.assets import configure_offline

        configure_offline()
        import tiktoken

        _encoding = tiktoken.get_encoding("o200k_base")
    return len(_encoding.encode(text, disallowed_special=()))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else orjson.dumps(content).decode()


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """OpenAI cookbook: 3 per message, +1 per name, +3 to prime the reply."""
    total = 3
    for message in messages:
        total += 3
        for key, value in message.items():
            if key == "tool_calls":
                for call in value or []:
                    fn = call.get("function") or {}
                    total += _count_tokens(fn.get("name", "")) + _count_tokens(
                        fn.get("arguments", ""))
                continue
            total += _count_tokens(_text(value))
            if key == "name":
                total += 1
    return total


def _answer(body: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]] | None, str]:
    messages = body.get("messages") or []
    last_user = next((_text(m.get("content")) for m in reversed(messages)
                      if m.get("role") == "user"), "")
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    if tools and choice != "none":
        name = tools[0].get("function", {}).get("name", "tool")
        if isinstance(choice, dict):
            name = choice.get("function", {}).get("name", name)
        args = orjson.dumps({"echo": last_user[:80]}).decode()
        call = {"id": "call_test0001", "type": "function",
                "function": {"name": name, "arguments": args}}
        return None, [call], "tool_calls"
    fmt = (body.get("response_format") or {}).get("type")
    if fmt in ("json_object", "json_schema"):
        return orjson.dumps({"echo": last_user[:200]}).decode(), None, "stop"
    words = ("echo: " + last_user[:400]).split(" ")
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    finish = "stop"
    if limit and len(words) > limit:
        words, finish = words[:limit], "length"
    return " ".join(words), None, finish


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send_json(send: Any, status: int, payload: Any,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def _error(message: str, status: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error", "code": status}}


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path, method = scope["path"], scope["method"]
    if path == "/_last":
        return await _send_json(send, 200, _state["last"])
    if path == "/_last_headers":
        return await _send_json(send, 200, _state["last_headers"])
    if path == "/_stats":
        return await _send_json(send, 200, {"count": _state["count"],
                                            "by_model": _state["by_model"],
                                            "requests": _state["requests"],
                                            "hung_up": _state["hung_up"]})
    if path == "/_reset":
        _state.update(last=None, last_headers=None, count=0, by_model={}, requests=0,
                      stored={}, prefixes={}, prompt_cache={}, hung_up=0)
        return await _send_json(send, 200, {"ok": True})
    _state["requests"] += 1
    _state["last_headers"] = {k.decode("latin-1"): v.decode("latin-1")
                              for k, v in scope["headers"]}
    if path.startswith("/v1/messages"):  # Anthropic Messages: its own module
        from tokenomy.testing.upstream_anthropic import app as messages_app

        return await messages_app(scope, receive, send, _state)
    if path.endswith("/models"):
        return await _send_json(send, 200, {"object": "list", "data": [
            {"id": "echo-model", "object": "model", "created": 0, "owned_by": "test"}]})
    if method != "POST" or not path.endswith(("/chat/completions", "/responses")):
        return await _send_json(send, 404, _error("not found", 404))
    raw = await _read_body(receive)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return await _send_json(send, 400, _error("invalid JSON", 400))
    if path.endswith("/responses"):
        return await upstream_responses.serve(body, send, _state)
    model = str(body.get("model") or "")
    _state["last"] = body
    _state["count"] += 1
    seen = _state["by_model"][model] = _state["by_model"].get(model, 0) + 1
    # A fault comes from the model name, or from `metadata.test_fault` (so a test can keep a
    # real model name, and with it tokenomy's exact token count).
    fault = model[6:] if model.startswith("fault:") else \
        str((body.get("metadata") or {}).get("test_fault") or "")
    if fault:
        if fault in ("500", "502", "503"):
            return await _send_json(send, int(fault), _error(f"injected {fault}", int(fault)))
        if fault == "429":
            return await _send_json(send, 429, _error("slow down", 429), [(b"retry-after", b"0")])
        if fault == "429-noretry":
            return await _send_json(send, 429, _error("slow down", 429))
        if fault.startswith("flaky") and seen <= int(fault[5:] or 1):
            return await _send_json(send, 503, _error("flaky", 503))
        if fault == "timeout":
            await asyncio.sleep(30)
        if fault == "malformed":
            return await _send_json(send, 200, b"{this is not json")
        if fault == "hang":
            return await _hang(receive)
        if fault == "firehose" and body.get("stream"):
            return await _firehose(send, receive)
    if "messages" not in body:
        return await _send_json(send, 400, _error("messages missing", 400))
    content, tool_calls, finish = _answer(body)
    if fault == "vary":
        content = f"answer {_state['count']}"
    if fault == "drip":
        content, finish = " ".join(f"w{i}" for i in range(300)), "stop"
    choices = body.get("n") if isinstance(body.get("n"), int) and body["n"] > 1 else 1
    prompt = prompt_tokens(body["messages"])
    completion = choices * (len((content or "").split()) + (8 if tool_calls else 0))
    usage: dict[str, Any] | None = {"prompt_tokens": prompt, "completion_tokens": completion,
                                    "total_tokens": prompt + completion}
    if fault == "nousage":
        usage = None
    ident, created = "chatcmpl-test", int(time.time())
    if not body.get("stream"):
        reply: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        if tool_calls:
            reply["tool_calls"] = tool_calls
        answer = {
            "id": ident, "object": "chat.completion", "created": created, "model": model,
            "system_fingerprint": "fp_test",
            "choices": [{"index": i, "message": reply, "logprobs": None,
                         "finish_reason": finish} for i in range(choices)]}
        if usage is not None:
            answer["usage"] = usage
        return await _send_json(send, 200, answer)
    await _stream(send, body, fault, ident, created, content, tool_calls, finish, usage)


async def _hang(receive: Any) -> None:
    """Wait for the caller to hang up (a proxy that cancels its upstream call does)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30):
            while (await receive())["type"] != "http.disconnect":
                pass
            _state["hung_up"] += 1


async def _firehose(send: Any, receive: Any) -> None:
    """64 KiB chunks for 20 s, or until the caller hangs up (counted in `hung_up`)."""
    base = {"id": "chatcmpl-hose", "object": "chat.completion.chunk", "created": 0,
            "model": "fault:firehose"}
    frame = encode_chunk({**base, "choices": [{"index": 0, "delta": {"content": "x " * 32768},
                                               "finish_reason": None}]})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    gone = asyncio.get_running_loop().create_task(_hang(receive))
    ends = time.monotonic() + 20
    while time.monotonic() < ends and not gone.done():
        await send({"type": "http.response.body", "body": frame, "more_body": True})
        await asyncio.sleep(0)
    gone.cancel()
    await send({"type": "http.response.body", "body": DONE, "more_body": False})


async def _stream(send: Any, body: dict[str, Any], fault: str, ident: str, created: int,
                  content: str | None, tool_calls: list[dict[str, Any]] | None, finish: str,
                  usage: dict[str, int] | None) -> None:
    include_usage = bool((body.get("stream_options") or {}).get("include_usage")) \
        and usage is not None
    base = {"id": ident, "object": "chat.completion.chunk", "created": created,
            "model": str(body.get("model") or ""), "system_fingerprint": "fp_test"}

    def frame(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                      "finish_reason": finish_reason}]}
        if include_usage:
            chunk["usage"] = None
        return encode_chunk(chunk)

    frames = [frame({"role": "assistant", "content": "" if content is not None else None})]
    if tool_calls:
        call = tool_calls[0]
        frames.append(frame({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                             "function": {"name": call["function"]["name"],
                                                          "arguments": ""}}]}))
        frames.append(frame({"tool_calls": [{"index": 0, "function": {
            "arguments": call["function"]["arguments"]}}]}))
    else:
        words = (content or "").split(" ")
        for index, word in enumerate(words):
            frames.append(frame({"content": word if index == 0 else " " + word}))
    frames.append(frame({}, finish))
    if include_usage:
        frames.append(encode_chunk({**base, "choices": [], "usage": usage}))
    frames.append(DONE)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"),
                            (b"cache-control", b"no-cache")]})
    cut = fault == "cut"
    slow = fault in ("slow", "drip")
    for index, data in enumerate(frames):
        if cut and index == 2:
            raise ConnectionAbortedError("injected: connection dropped mid-stream")
        await send({"type": "http.response.body", "body": data, "more_body": True})
        if slow:
            await asyncio.sleep(0.02)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level="error", access_log=False,
                loop="uvloop", http="httptools")


if __name__ == "__main__":
    main()
