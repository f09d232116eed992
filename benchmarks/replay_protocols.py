"""Wire protocols the agent replay speaks: one trace call -> a request, an answer -> bytes.

The traces are OpenAI chat (`agent_traces.Run.request`). A protocol turns call k
into its own request shape, tells the recording upstream how to answer with the
recorded assistant message, reads that answer back on the client side, and
turns a received body back into chat messages so every figure (tokens, cache,
recall) is computed the same way whatever the protocol.

Only `chat` is served today: tokenomy does not serve `/v1/messages` or
`/v1/responses` yet, so those two raise `NotServed` until it does (their
shapes: Anthropic system + messages with tool_use/tool_result blocks; Responses
input items with function_call/function_call_output).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import orjson
from agent_traces import Run


class NotServed(NotImplementedError):
    """This protocol has no replay yet (tokenomy does not serve it)."""


class WireProtocol(Protocol):
    name: str
    path: str  # under /v1

    def request(self, run: Run, k: int, *, stream: bool) -> dict[str, Any]: ...

    def messages_of(self, body: dict[str, Any]) -> list[dict[str, Any]]: ...

    def tools_of(self, body: dict[str, Any]) -> list[dict[str, Any]]: ...

    def answer(self, message: dict[str, Any], usage: dict[str, int], model: str,
               stream: bool) -> tuple[bytes, str]: ...

    def read_answer(self, raw: bytes, stream: bool) -> dict[str, Any]: ...


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class Chat:
    """OpenAI Chat Completions: the traces' own shape."""

    name = "chat"
    path = "/v1/chat/completions"

    def request(self, run: Run, k: int, *, stream: bool) -> dict[str, Any]:
        body = run.request(k)
        if stream:
            body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        return body

    def messages_of(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return list(body.get("messages") or [])

    def tools_of(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return list(body.get("tools") or [])

    def answer(self, message: dict[str, Any], usage: dict[str, int], model: str,
               stream: bool) -> tuple[bytes, str]:
        """The recorded assistant message as a completion (JSON) or chunk stream (SSE)."""
        tool_calls = message.get("tool_calls") or None
        finish = "tool_calls" if tool_calls else "stop"
        base = {"id": "chatcmpl-replay", "created": int(time.time()), "model": model,
                "system_fingerprint": "fp_replay"}
        if not stream:
            answer: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
            if tool_calls:
                answer["tool_calls"] = tool_calls
            body = {**base, "object": "chat.completion", "usage": usage,
                    "choices": [{"index": 0, "message": answer, "logprobs": None,
                                 "finish_reason": finish}]}
            return orjson.dumps(body), "application/json"
        chunk = {**base, "object": "chat.completion.chunk"}

        def frame(delta: dict[str, Any], reason: str | None = None) -> bytes:
            return _sse({**chunk, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                              "finish_reason": reason}]})

        frames = [frame({"role": "assistant", "content": ""})]
        if message.get("content"):
            frames.append(frame({"content": message["content"]}))
        for index, call in enumerate(tool_calls or ()):
            function = call.get("function") or {}
            frames.append(frame({"tool_calls": [{
                "index": index, "id": call.get("id"), "type": "function",
                "function": {"name": function.get("name"), "arguments": ""}}]}))
            frames.append(frame({"tool_calls": [{
                "index": index, "function": {"arguments": function.get("arguments") or ""}}]}))
        frames.append(frame({}, finish))
        frames.append(_sse({**chunk, "choices": [], "usage": usage}))
        frames.append(b"data: [DONE]\n\n")
        return b"".join(frames), "text/event-stream"

    def read_answer(self, raw: bytes, stream: bool) -> dict[str, Any]:
        """The assistant message a client got back (content and tool calls)."""
        if not stream:
            return dict(orjson.loads(raw)["choices"][0]["message"])
        content: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        for line in raw.split(b"\n"):
            if not line.startswith(b"data:") or line.strip() == b"data: [DONE]":
                continue
            for choice in orjson.loads(line[5:]).get("choices") or ():
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    content.append(delta["content"])
                for part in delta.get("tool_calls") or ():
                    call = calls.setdefault(part.get("index", 0), {
                        "id": None, "type": "function", "function": {"name": "", "arguments": ""}})
                    call["id"] = part.get("id") or call["id"]
                    function = part.get("function") or {}
                    call["function"]["name"] += function.get("name") or ""
                    call["function"]["arguments"] += function.get("arguments") or ""
        message: dict[str, Any] = {"role": "assistant", "content": "".join(content) or None}
        if calls:
            message["tool_calls"] = [calls[i] for i in sorted(calls)]
        return message


class _Unserved:
    name = ""
    path = ""

    def _no(self) -> NotServed:
        return NotServed(f"--protocol {self.name}: tokenomy does not serve {self.path} yet, "
                         "so this replay is not written yet; use --protocol chat")

    def request(self, run: Run, k: int, *, stream: bool) -> dict[str, Any]:
        raise self._no()

    def messages_of(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        raise self._no()

    def tools_of(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        raise self._no()

    def answer(self, message: dict[str, Any], usage: dict[str, int], model: str,
               stream: bool) -> tuple[bytes, str]:
        raise self._no()

    def read_answer(self, raw: bytes, stream: bool) -> dict[str, Any]:
        raise self._no()


class Messages(_Unserved):
    """Anthropic Messages: system + messages with tool_use / tool_result blocks."""

    name = "messages"
    path = "/v1/messages"


class Responses(_Unserved):
    """OpenAI Responses: input items with function_call / function_call_output."""

    name = "responses"
    path = "/v1/responses"


PROTOCOLS: dict[str, WireProtocol] = {p.name: p for p in (Chat(), Messages(), Responses())}


def protocol_for_path(path: str) -> WireProtocol | None:
    return next((p for p in PROTOCOLS.values() if path.endswith(p.path.removeprefix("/v1"))), None)
