"""Wire protocols the agent replay speaks: a chat request -> the protocol's request, and back.

The traces are OpenAI chat (`agent_traces.Run.request`). A protocol turns a chat
request into its own shape (`from_chat`), tells the recording upstream how to
answer with the recorded assistant message (`answer`, JSON or SSE), reads that
answer back on the client side (`read_answer`), and turns a received body back
into chat messages and tools (`to_chat`), so every figure (tokens, cache,
recall) is computed the same way whatever the protocol.

- chat:      OpenAI Chat Completions, the traces' own shape.
- messages:  Anthropic Messages: `system`, then user/assistant turns with
             tool_use blocks and tool_result blocks (tool outputs of one turn
             are one user message).
- responses: OpenAI Responses: `instructions`, then input items (message,
             function_call, function_call_output).

Client-side systems rewrite the chat form before it is converted, so a rewrite
means the same thing in every protocol.
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

import orjson

Body = dict[str, Any]
Message = dict[str, Any]


class NotServed(NotImplementedError):
    """A system that does not serve this protocol yet (the row says so)."""


class WireProtocol(Protocol):
    name: str
    path: str  # the model endpoint

    def from_chat(self, chat: Body, *, stream: bool) -> Body: ...

    def to_chat(self, body: Body) -> tuple[list[Message], list[dict[str, Any]]]: ...

    def answer(self, message: Message, usage: dict[str, int], model: str,
               stream: bool) -> tuple[bytes, str]: ...

    def read_answer(self, raw: bytes, stream: bool) -> Message: ...


def _data(payload: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


def _events(raw: bytes) -> list[dict[str, Any]]:
    """The JSON payloads of an SSE stream, in order ([DONE] skipped)."""
    out = []
    for line in raw.split(b"\n"):
        if line.startswith(b"data:") and line[5:].strip() not in (b"[DONE]", b""):
            out.append(orjson.loads(line[5:]))
    return out


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _calls(message: Message) -> list[tuple[str, str, str]]:
    """(id, name, arguments) of an assistant message's tool calls."""
    return [(str(c.get("id") or ""), str((c.get("function") or {}).get("name") or ""),
             str((c.get("function") or {}).get("arguments") or ""))
            for c in message.get("tool_calls") or ()]


def _chat_message(text: str | None, calls: list[tuple[str, str, str]]) -> Message:
    message: Message = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [{"id": i, "type": "function",
                                  "function": {"name": n, "arguments": a}} for i, n, a in calls]
    return message


def _input(arguments: str) -> Any:
    try:
        return json.loads(arguments or "{}")
    except ValueError:
        return {"raw": arguments}  # a tool_use input must be an object


class Chat:
    name = "chat"
    path = "/v1/chat/completions"

    def from_chat(self, chat: Body, *, stream: bool) -> Body:
        if stream:
            return {**chat, "stream": True, "stream_options": {"include_usage": True}}
        return chat

    def to_chat(self, body: Body) -> tuple[list[Message], list[dict[str, Any]]]:
        return list(body.get("messages") or []), list(body.get("tools") or [])

    def answer(self, message: Message, usage: dict[str, int], model: str,
               stream: bool) -> tuple[bytes, str]:
        calls = message.get("tool_calls") or None
        finish = "tool_calls" if calls else "stop"
        base = {"id": "chatcmpl-replay", "created": int(time.time()), "model": model,
                "system_fingerprint": "fp_replay"}
        if not stream:
            answer: Message = {"role": "assistant", "content": message.get("content")}
            if calls:
                answer["tool_calls"] = calls
            return orjson.dumps({**base, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": answer, "logprobs": None, "finish_reason": finish}]}), \
                "application/json"
        chunk = {**base, "object": "chat.completion.chunk"}

        def frame(delta: dict[str, Any], reason: str | None = None) -> bytes:
            return _data({**chunk, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                               "finish_reason": reason}]})

        frames = [frame({"role": "assistant", "content": ""})]
        if message.get("content"):
            frames.append(frame({"content": message["content"]}))
        for index, (ident, name, arguments) in enumerate(_calls(message)):
            frames.append(frame({"tool_calls": [{"index": index, "id": ident, "type": "function",
                                                 "function": {"name": name, "arguments": ""}}]}))
            frames.append(frame({"tool_calls": [{"index": index,
                                                 "function": {"arguments": arguments}}]}))
        frames += [frame({}, finish), _data({**chunk, "choices": [], "usage": usage}),
                   b"data: [DONE]\n\n"]
        return b"".join(frames), "text/event-stream"

    def read_answer(self, raw: bytes, stream: bool) -> Message:
        if not stream:
            return dict(orjson.loads(raw)["choices"][0]["message"])
        content: list[str] = []
        calls: dict[int, list[str]] = {}
        for event in _events(raw):
            for choice in event.get("choices") or ():
                delta = choice.get("delta") or {}
                content.append(delta.get("content") or "")
                for part in delta.get("tool_calls") or ():
                    call = calls.setdefault(part.get("index", 0), ["", "", ""])
                    function = part.get("function") or {}
                    call[0] = part.get("id") or call[0]
                    call[1] += function.get("name") or ""
                    call[2] += function.get("arguments") or ""
        return _chat_message("".join(content), [tuple(calls[i]) for i in sorted(calls)])


class Messages:
    """Anthropic Messages."""

    name = "messages"
    path = "/v1/messages"

    def from_chat(self, chat: Body, *, stream: bool) -> Body:
        system = "\n\n".join(_text(m.get("content")) for m in chat["messages"]
                             if m.get("role") == "system")
        turns: list[Message] = []
        for m in chat["messages"]:
            role = m.get("role")
            if role == "system":
                continue
            if role == "assistant":
                blocks: list[dict[str, Any]] = []
                if _text(m.get("content")):
                    blocks.append({"type": "text", "text": _text(m.get("content"))})
                blocks += [{"type": "tool_use", "id": i, "name": n, "input": _input(a)}
                           for i, n, a in _calls(m)]
                turns.append({"role": "assistant", "content": blocks})
                continue
            block = ({"type": "tool_result", "tool_use_id": m.get("tool_call_id"),
                      "content": _text(m.get("content"))} if role == "tool"
                     else {"type": "text", "text": _text(m.get("content"))})
            if turns and turns[-1]["role"] == "user":  # roles must alternate
                turns[-1]["content"].append(block)
            else:
                turns.append({"role": "user", "content": [block]})
        tools = [{"name": t["function"]["name"],
                  "description": t["function"].get("description", ""),
                  "input_schema": t["function"].get("parameters") or {"type": "object"}}
                 for t in chat.get("tools") or ()]
        body: Body = {"model": chat["model"], "max_tokens": 4096, "system": system,
                      "messages": turns, "tools": tools, "temperature": chat.get("temperature", 0)}
        return {**body, "stream": True} if stream else body

    def to_chat(self, body: Body) -> tuple[list[Message], list[dict[str, Any]]]:
        system = body.get("system")
        messages: list[Message] = ([{"role": "system", "content": _text(system)}]
                                   if system else [])
        for turn in body.get("messages") or ():
            content = turn.get("content")
            blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
            if turn.get("role") == "assistant":
                text = "".join(b.get("text") or "" for b in blocks if b.get("type") == "text")
                calls = [(b.get("id", ""), b.get("name", ""), json.dumps(b.get("input")))
                         for b in blocks if b.get("type") == "tool_use"]
                messages.append(_chat_message(text, calls))
                continue
            for b in blocks:
                if b.get("type") == "tool_result":
                    messages.append({"role": "tool", "tool_call_id": b.get("tool_use_id"),
                                     "content": _text(b.get("content"))})
                else:
                    messages.append({"role": "user", "content": _text([b])})
        tools = [{"type": "function", "function": {
            "name": t.get("name"), "description": t.get("description", ""),
            "parameters": t.get("input_schema")}} for t in body.get("tools") or ()]
        return messages, tools

    def answer(self, message: Message, usage: dict[str, int], model: str,
               stream: bool) -> tuple[bytes, str]:
        blocks: list[dict[str, Any]] = []
        if message.get("content"):
            blocks.append({"type": "text", "text": message["content"]})
        blocks += [{"type": "tool_use", "id": i, "name": n, "input": _input(a)}
                   for i, n, a in _calls(message)]
        stop = "tool_use" if message.get("tool_calls") else "end_turn"
        used = {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"]}
        whole = {"id": "msg_replay", "type": "message", "role": "assistant", "model": model,
                 "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": used}
        if not stream:
            return orjson.dumps(whole), "application/json"
        frames = [_data({"type": "message_start", "message": {
            **whole, "content": [], "stop_reason": None, "usage": {**used, "output_tokens": 0}}},
            "message_start")]
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                start, delta = ({"type": "text", "text": ""},
                                {"type": "text_delta", "text": block["text"]})
            else:
                start = {**block, "input": {}}
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            frames += [
                _data({"type": "content_block_start", "index": index, "content_block": start},
                      "content_block_start"),
                _data({"type": "content_block_delta", "index": index, "delta": delta},
                      "content_block_delta"),
                _data({"type": "content_block_stop", "index": index}, "content_block_stop")]
        frames += [_data({"type": "message_delta", "delta": {"stop_reason": stop},
                          "usage": {"output_tokens": used["output_tokens"]}}, "message_delta"),
                   _data({"type": "message_stop"}, "message_stop")]
        return b"".join(frames), "text/event-stream"

    def read_answer(self, raw: bytes, stream: bool) -> Message:
        if not stream:
            blocks = orjson.loads(raw).get("content") or []
        else:
            blocks = []
            for event in _events(raw):
                if event.get("type") == "content_block_start":
                    blocks.append({**event["content_block"], "partial": ""})
                elif event.get("type") == "content_block_delta":
                    delta, block = event["delta"], blocks[-1]
                    block["text"] = block.get("text", "") + (delta.get("text") or "")
                    block["partial"] += delta.get("partial_json") or ""
            for block in blocks:
                if block["type"] == "tool_use":
                    block["input"] = _input(block["partial"])
        text = "".join(b.get("text") or "" for b in blocks if b.get("type") == "text")
        calls = [(b.get("id", ""), b.get("name", ""), json.dumps(b.get("input")))
                 for b in blocks if b.get("type") == "tool_use"]
        return _chat_message(text, calls)


class Responses:
    """OpenAI Responses."""

    name = "responses"
    path = "/v1/responses"

    def from_chat(self, chat: Body, *, stream: bool) -> Body:
        items: list[dict[str, Any]] = []
        instructions = []
        for m in chat["messages"]:
            role, text = m.get("role"), _text(m.get("content"))
            if role == "system":
                instructions.append(text)
            elif role == "tool":
                items.append({"type": "function_call_output", "call_id": m.get("tool_call_id"),
                              "output": text})
            elif role == "assistant":
                if text:
                    items.append({"type": "message", "role": "assistant",
                                  "content": [{"type": "output_text", "text": text}]})
                items += [{"type": "function_call", "call_id": i, "name": n, "arguments": a}
                          for i, n, a in _calls(m)]
            else:
                items.append({"type": "message", "role": "user",
                              "content": [{"type": "input_text", "text": text}]})
        tools = [{"type": "function", "name": t["function"]["name"],
                  "description": t["function"].get("description", ""),
                  "parameters": t["function"].get("parameters")} for t in chat.get("tools") or ()]
        body: Body = {"model": chat["model"], "instructions": "\n\n".join(instructions),
                      "input": items, "tools": tools, "store": False,
                      "temperature": chat.get("temperature", 0)}
        return {**body, "stream": True} if stream else body

    def to_chat(self, body: Body) -> tuple[list[Message], list[dict[str, Any]]]:
        messages: list[Message] = ([{"role": "system", "content": body["instructions"]}]
                                   if body.get("instructions") else [])
        for item in body.get("input") or ():
            kind = item.get("type", "message")
            if kind == "function_call_output":
                messages.append({"role": "tool", "tool_call_id": item.get("call_id"),
                                 "content": _text(item.get("output"))})
            elif kind == "function_call":
                call = (item.get("call_id", ""), item.get("name", ""), item.get("arguments", ""))
                last = messages[-1] if messages else None
                if last and last["role"] == "assistant" and "tool_calls" not in last:
                    messages[-1] = _chat_message(last["content"], [call])
                elif last and last["role"] == "assistant":
                    messages[-1] = _chat_message(last["content"], [*_calls(last), call])
                else:
                    messages.append(_chat_message(None, [call]))
            else:
                messages.append({"role": item.get("role", "user"),
                                 "content": _text(item.get("content"))})
        tools = [{"type": "function", "function": {
            "name": t.get("name"), "description": t.get("description", ""),
            "parameters": t.get("parameters")}} for t in body.get("tools") or ()]
        return messages, tools

    def answer(self, message: Message, usage: dict[str, int], model: str,
               stream: bool) -> tuple[bytes, str]:
        output: list[dict[str, Any]] = []
        if message.get("content"):
            output.append({"type": "message", "id": "msg_replay", "role": "assistant",
                           "status": "completed", "content": [
                               {"type": "output_text", "text": message["content"],
                                "annotations": []}]})
        output += [{"type": "function_call", "id": f"fc_{i}", "call_id": i, "name": n,
                    "arguments": a, "status": "completed"} for i, n, a in _calls(message)]
        whole = {"id": "resp_replay", "object": "response", "created_at": int(time.time()),
                 "status": "completed", "model": model, "output": output,
                 "usage": {"input_tokens": usage["prompt_tokens"],
                           "output_tokens": usage["completion_tokens"],
                           "total_tokens": usage["total_tokens"]}}
        if not stream:
            return orjson.dumps(whole), "application/json"
        frames = [_data({"type": "response.created",
                         "response": {**whole, "status": "in_progress", "output": []}},
                        "response.created")]
        for index, item in enumerate(output):
            frames.append(_data({"type": "response.output_item.added", "output_index": index,
                                 "item": item}, "response.output_item.added"))
            frames.append(_data({"type": "response.output_item.done", "output_index": index,
                                 "item": item}, "response.output_item.done"))
        frames.append(_data({"type": "response.completed", "response": whole},
                            "response.completed"))
        return b"".join(frames), "text/event-stream"

    def read_answer(self, raw: bytes, stream: bool) -> Message:
        if stream:
            done = [e["response"] for e in _events(raw) if e.get("type") == "response.completed"]
            whole = done[-1] if done else {"output": []}
        else:
            whole = orjson.loads(raw)
        text = "".join(_text(item.get("content")) for item in whole.get("output") or ()
                       if item.get("type") == "message")
        calls = [(item.get("call_id", ""), item.get("name", ""), item.get("arguments", ""))
                 for item in whole.get("output") or () if item.get("type") == "function_call"]
        return _chat_message(text, calls)


PROTOCOLS: dict[str, WireProtocol] = {p.name: p for p in (Chat(), Messages(), Responses())}


def protocol_for_path(path: str) -> WireProtocol | None:
    return next((p for p in PROTOCOLS.values() if path.endswith(p.path.removeprefix("/v1"))),
                None)
