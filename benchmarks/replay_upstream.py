"""A recording loopback upstream for the agent replay: answers what the trace answered.

The harness scripts each answer before the call (`POST /_script` with the
recorded assistant message and its completion tokens), so what the upstream
answers never depends on what the system under test sent. Every model request
is answered with that message (JSON or SSE, in the protocol of the path it came
to) and a plausible usage block (prompt tokens counted on the received body
with OpenAI's per-message rule in o200k_base, the recorded completion tokens).

It records the raw body of each model request since the last script, except
those marked `x-replay-direct: 1` (the harness's direct baseline sends);
`GET /_last` returns the last one byte for byte, with `x-received-count`.

Run: python benchmarks/replay_upstream.py --port 9200
"""

from __future__ import annotations

import argparse
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from replay_protocols import protocol_for_path

from tokenomy.tokenizers import count_messages

Scope = dict[str, Any]
_state: dict[str, Any] = {"script": None, "received": []}


@lru_cache(maxsize=65536)
def _message_tokens(key: bytes) -> int:
    # One message's share of OpenAI's per-message count (the reply primer taken off).
    return count_messages([orjson.loads(key)], "gpt-4o") - 3


def prompt_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
    total = sum(_message_tokens(orjson.dumps(m, option=orjson.OPT_SORT_KEYS)) for m in messages)
    return total + count_messages([], "gpt-4o", tools or None)


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send: Any, status: int, body: bytes, content_type: str = "application/json",
                headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def _error(message: str, status: int) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": "replay_error", "code": status}})


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
    raw = await _read_body(receive)
    if path == "/_script" and method == "POST":
        _state["script"] = orjson.loads(raw)
        _state["received"] = []
        return await _send(send, 200, b'{"ok":true}')
    if path == "/_last":
        received = _state["received"]
        count = str(len(received)).encode()
        return await _send(send, 200, received[-1] if received else b"null",
                           headers=[(b"x-received-count", count)])
    if path in ("/healthz", "/_health"):
        return await _send(send, 200, b'{"ok":true}')
    if path.endswith("/models"):
        return await _send(send, 200, orjson.dumps({"object": "list", "data": [
            {"id": "deepseek-chat", "object": "model", "created": 0, "owned_by": "replay"}]}))
    protocol = protocol_for_path(path)
    if method != "POST" or protocol is None:
        return await _send(send, 404, _error(f"no route {method} {path}", 404))
    script = _state["script"]
    if script is None:
        return await _send(send, 409, _error("nothing scripted: POST /_script first", 409))
    direct = any(k == b"x-replay-direct" for k, _ in scope["headers"])
    if not direct:
        _state["received"].append(raw)
    try:
        body = orjson.loads(raw)
        prompt = prompt_tokens(*protocol.to_chat(body))
        usage = {"prompt_tokens": prompt, "completion_tokens": int(script["completion_tokens"]),
                 "total_tokens": prompt + int(script["completion_tokens"])}
        answer, content_type = protocol.answer(script["message"], usage,
                                               str(body.get("model") or ""),
                                               bool(body.get("stream")))
    except (orjson.JSONDecodeError, AttributeError, TypeError, KeyError) as exc:
        return await _send(send, 400, _error(f"bad request body: {exc}", 400))
    await _send(send, 200, answer, content_type)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    args = parser.parse_args()
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level="error", access_log=False,
                loop="uvloop", http="httptools")


if __name__ == "__main__":
    main()
