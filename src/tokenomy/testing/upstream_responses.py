"""A deterministic OpenAI Responses backend for tests (loopback only).

`tokenomy.testing.upstream` serves it at `POST .../responses`, beside its chat
completions; `/_last` and `/_last_headers` show what it received. It answers
the way the Responses API does (the response object, the SSE event sequence
with `sequence_number`s, usage with `input_tokens_details.cached_tokens` and
`output_tokens_details.reasoning_tokens`):

- the last input item is a function_call_output: a message `result: <output>`;
- function tools offered (and `tool_choice` is not "none"): a `function_call` to
  the first one (or the one `tool_choice` names), with its required arguments
  filled from its JSON schema (strings: the last user text, up to 40 characters);
- otherwise a message `echo: <last user text>` (` [N image(s)]` when the last user
  message held images), cut to `max_output_tokens` words (status `incomplete`);
- `reasoning` asked: a `reasoning` item first (a summary; `encrypted_content`
  when `include` asks for `reasoning.encrypted_content`). A reasoning item sent
  back whose encrypted_content was changed is refused (400), as OpenAI does.

State: a response is stored unless `store: false`; `previous_response_id` puts
the stored input and output before the new input (an unknown id is a 400).
Cache: `cached_tokens` is the tokens of the leading units (instructions, tools,
then each item) equal to the previous request with the same `prompt_cache_key`
(or model), so a proxy that changes an earlier turn loses the cache here too.

Faults by model name: `fault:500|502|503|429`, `fault:cut` (the connection
drops after three events), `fault:error` (an `error` event mid-stream),
`fault:failed` (`response.failed`).
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import orjson

from tokenomy.tokenizers import count_text

Send = Any
IMAGE_TOKENS = 85
_CONTENT = ("input_text", "output_text", "text", "summary_text", "reasoning_text")


def _tokens(text: str) -> int:
    return count_text(text, "gpt-4o") if text else 0


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(str(p.get("text") or "") for p in value
                         if isinstance(p, dict) and p.get("type") in _CONTENT)
    return ""


def _images(value: Any) -> int:
    return sum(1 for p in value or () if isinstance(p, dict) and p.get("type") == "input_image") \
        if isinstance(value, list) else 0


def _item_text(item: dict[str, Any]) -> str:
    kind = item.get("type", "message")
    if kind == "function_call":
        return f"{item.get('name', '')}{item.get('arguments', '')}"
    if kind == "reasoning":
        return _text(item.get("summary"))
    return _text(item.get("content") if kind == "message" else item.get("output"))


def _units(body: dict[str, Any], items: list[dict[str, Any]]) -> list[tuple[bytes, int]]:
    """The prompt as cacheable units (bytes, tokens): instructions, tools, each item."""
    units = [(orjson.dumps(body.get("instructions")), _tokens(body.get("instructions") or "")),
             (orjson.dumps(body.get("tools")), _tokens(orjson.dumps(body.get("tools")).decode())
              if body.get("tools") else 0)]
    for item in items:
        content = item.get("content") if item.get("type", "message") == "message" \
            else item.get("output")
        units.append((orjson.dumps(item, option=orjson.OPT_SORT_KEYS),
                      3 + _tokens(_item_text(item)) + IMAGE_TOKENS * _images(content)))
    return units


def _encrypt(summary: str) -> str:
    return "gAAAAB" + base64.b64encode(hashlib.sha256(summary.encode()).digest()).decode()


def _check_reasoning(items: list[dict[str, Any]]) -> str | None:
    for item in items:
        if item.get("type") == "reasoning" and item.get("encrypted_content") is not None \
                and item["encrypted_content"] != _encrypt(_text(item.get("summary"))):
            return f"The encrypted content for item {item.get('id')} could not be verified."
    return None


def _value(schema: dict[str, Any], text: str) -> Any:
    kind = schema.get("type")
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "array":
        item = schema.get("items") or {}
        return ["echo", text] if item.get("type") == "string" else [_value(item, text)]
    if kind == "object":
        # Only the required properties, as a model fills them (all, when none is required).
        properties = schema.get("properties") or {}
        required = schema.get("required") or list(properties)
        return {name: _value(sub, text) for name, sub in properties.items()
                if isinstance(sub, dict) and name in required}
    return {"integer": 1, "number": 1, "boolean": True}.get(str(kind), text)


def _call(tools: list[Any], choice: Any, text: str) -> dict[str, Any] | None:
    functions = [t for t in tools if isinstance(t, dict) and t.get("type") == "function"]
    if not functions or choice == "none":
        return None
    tool = functions[0]
    if isinstance(choice, dict) and choice.get("name"):
        tool = next((t for t in functions if t.get("name") == choice["name"]), tool)
    arguments = _value(tool.get("parameters") or {"type": "object"}, text[:40])
    return {"name": tool.get("name"), "arguments": orjson.dumps(arguments).decode()}


def _answer(body: dict[str, Any], items: list[dict[str, Any]], n: int
            ) -> tuple[list[dict[str, Any]], int, dict[str, Any] | None]:
    """The output items, the reasoning tokens, and incomplete_details (None: complete)."""
    users = [i for i in items if i.get("type", "message") == "message" and i.get("role") == "user"]
    last_user = _text(users[-1].get("content")) if users else ""
    output: list[dict[str, Any]] = []
    reasoning_tokens = 0
    if isinstance(body.get("reasoning"), dict):
        summary = f"**Answering** I will answer: {last_user[:60]}"
        reasoning: dict[str, Any] = {"id": f"rs_{n:04d}", "type": "reasoning",
                                     "summary": [{"type": "summary_text", "text": summary}]}
        if "reasoning.encrypted_content" in (body.get("include") or ()):
            reasoning["encrypted_content"] = _encrypt(summary)
        output.append(reasoning)
        reasoning_tokens = _tokens(summary) + 8
    last = items[-1] if items else {}
    call = None if last.get("type") == "function_call_output" else \
        _call(body.get("tools") or [], body.get("tool_choice"), last_user)
    incomplete = None
    if call is not None:
        output.append({"id": f"fc_{n:04d}", "type": "function_call", "status": "completed",
                       "arguments": call["arguments"], "call_id": f"call_{n:04d}",
                       "name": call["name"]})
    else:
        if last.get("type") == "function_call_output":
            text = "result: " + _text(last.get("output"))[:60]
        else:
            images = _images(users[-1].get("content")) if users else 0
            text = "echo: " + last_user[:400] + (f" [{images} image(s)]" if images else "")
        words = text.split(" ")
        limit = body.get("max_output_tokens")
        if isinstance(limit, int) and len(words) > limit:
            words, incomplete = words[:limit], {"reason": "max_output_tokens"}
        output.append({"id": f"msg_{n:04d}", "type": "message", "status": "completed",
                       "role": "assistant", "content": [
                           {"type": "output_text", "text": " ".join(words), "annotations": [],
                            "logprobs": []}]})
    return output, reasoning_tokens, incomplete


def _response(body: dict[str, Any], ident: str, output: list[dict[str, Any]],
              usage: dict[str, Any] | None, status: str,
              incomplete: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": ident, "object": "response", "created_at": int(time.time()), "status": status,
        "background": False, "error": None, "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"), "model": body.get("model"),
        "output": output, "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
        "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0), "truncation": body.get("truncation", "disabled"),
        "usage": usage, "user": None, "metadata": body.get("metadata") or {},
    }


def _error(message: str, param: str | None = None, code: str | None = None,
           kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


async def _json(send: Send, status: int, payload: Any) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": orjson.dumps(payload)})


async def serve(body: Any, send: Send, state: dict[str, Any]) -> None:
    """Answer one `POST /responses` (`body` parsed); `state` is the upstream's own."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return await _json(send, 400, _error("model is required", "model"))
    model = body["model"]
    state["last"] = body
    state["count"] += 1
    state["by_model"][model] = state["by_model"].get(model, 0) + 1
    if model.startswith("fault:") and model[6:] in ("500", "502", "503", "429"):
        status = int(model[6:])
        return await _json(send, status, _error(f"injected {status}", None, str(status),
                                                "server_error"))
    stored: dict[str, list[dict[str, Any]]] = state.setdefault("stored", {})
    raw = body.get("input")
    new = [{"type": "message", "role": "user", "content": raw}] if isinstance(raw, str) \
        else [i for i in raw or () if isinstance(i, dict)]
    previous = body.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or previous not in stored):
        return await _json(send, 400, _error(f"Previous response with id '{previous}' not "
                                             f"found.", "previous_response_id",
                                             "previous_response_not_found"))
    items = [*(stored.get(previous) or [] if isinstance(previous, str) else []), *new]
    tampered = _check_reasoning(items)
    if tampered:
        return await _json(send, 400, _error(tampered, "input", "invalid_encrypted_content"))
    n = state["count"]
    ident = f"resp_{n:04d}"
    output, reasoning_tokens, incomplete = _answer(body, items, n)
    if body.get("store", True):
        stored[ident] = [*items, *output]
    units = _units(body, items)
    prefixes: dict[str, list[tuple[bytes, int]]] = state.setdefault("prefixes", {})
    key = str(body.get("prompt_cache_key") or model)
    cached = 0
    for mine, theirs in zip(units, prefixes.get(key, []), strict=False):
        if mine[0] != theirs[0]:
            break
        cached += mine[1]
    prefixes[key] = units
    prompt = sum(tokens for _, tokens in units)
    completion = reasoning_tokens + sum(_tokens(_item_text(i)) for i in output
                                        if i["type"] != "reasoning")
    usage = {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached},
             "output_tokens": completion,
             "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
             "total_tokens": prompt + completion}
    finished = "incomplete" if incomplete else "completed"
    if not body.get("stream"):
        return await _json(send, 200, _response(body, ident, output, usage, finished,
                                                incomplete))
    await _stream(send, body, ident, output, usage, finished, incomplete)


def _item_events(index: int, item: dict[str, Any]) -> list[dict[str, Any]]:
    """The events that stream one output item, `output_item.added` to `.done`."""
    where: dict[str, Any] = {"item_id": item["id"], "output_index": index}
    kind = item["type"]
    events: list[dict[str, Any]]
    if kind == "message":
        text = item["content"][0]["text"]
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        words = text.split(" ")
        events = [{"type": "response.output_item.added", "output_index": index,
                   "item": {**item, "status": "in_progress", "content": []}},
                  {"type": "response.content_part.added", **where, "content_index": 0,
                   "part": part}]
        events += [{"type": "response.output_text.delta", **where, "content_index": 0,
                    "delta": word if k == 0 else " " + word, "logprobs": []}
                   for k, word in enumerate(words)]
        events += [{"type": "response.output_text.done", **where, "content_index": 0,
                    "text": text, "logprobs": []},
                   {"type": "response.content_part.done", **where, "content_index": 0,
                    "part": {**part, "text": text}}]
    elif kind == "function_call":
        events = [{"type": "response.output_item.added", "output_index": index,
                   "item": {**item, "status": "in_progress", "arguments": ""}},
                  {"type": "response.function_call_arguments.delta", **where,
                   "delta": item["arguments"]},
                  {"type": "response.function_call_arguments.done", **where,
                   "arguments": item["arguments"]}]
    else:  # reasoning
        text = item["summary"][0]["text"]
        part = {"type": "summary_text", "text": ""}
        events = [{"type": "response.output_item.added", "output_index": index,
                   "item": {**item, "summary": []}},
                  {"type": "response.reasoning_summary_part.added", **where,
                   "summary_index": 0, "part": part},
                  {"type": "response.reasoning_summary_text.delta", **where,
                   "summary_index": 0, "delta": text},
                  {"type": "response.reasoning_summary_text.done", **where,
                   "summary_index": 0, "text": text},
                  {"type": "response.reasoning_summary_part.done", **where,
                   "summary_index": 0, "part": {**part, "text": text}}]
    return [*events, {"type": "response.output_item.done", "output_index": index, "item": item}]


async def _stream(send: Send, body: dict[str, Any], ident: str, output: list[dict[str, Any]],
                  usage: dict[str, Any], status: str, incomplete: dict[str, Any] | None) -> None:
    start = _response(body, ident, [], None, "in_progress", None)
    events: list[dict[str, Any]] = [{"type": "response.created", "response": start},
              {"type": "response.in_progress", "response": start}]
    for index, item in enumerate(output):
        events += _item_events(index, item)
    fault = str(body.get("model"))[6:] if str(body.get("model")).startswith("fault:") else ""
    if fault == "error":
        events = [*events[:3], {"type": "error", "code": "server_error",
                                "message": "injected mid-stream error", "param": None}]
    elif fault == "failed":
        failed = {**_response(body, ident, [], None, "failed", None),
                  "error": {"code": "server_error", "message": "injected failure"}}
        events = [*events[:3], {"type": "response.failed", "response": failed}]
    else:
        final = _response(body, ident, output, usage, status, incomplete)
        events.append({"type": "response.incomplete" if incomplete else "response.completed",
                       "response": final})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"),
                            (b"cache-control", b"no-cache")]})
    for number, event in enumerate(events):
        if fault == "cut" and number == 3:
            raise ConnectionAbortedError("injected: connection dropped mid-stream")
        event = {**event, "sequence_number": number}
        frame = (b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event)
                 + b"\n\n")
        await send({"type": "http.response.body", "body": frame, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
