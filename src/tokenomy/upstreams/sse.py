"""Server-sent events: reading OpenAI-style `data:` lines and writing them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from tokenomy.errors import TokenomyError, UpstreamError

DONE = b"data: [DONE]\n\n"


def encode_chunk(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def encode_error(error: TokenomyError) -> bytes:
    return b"data: " + orjson.dumps(error.to_dict()) + b"\n\n"


async def parse_sse(lines: AsyncIterator[str], backend: str) -> AsyncIterator[dict[str, Any]]:
    """Yield chunk dicts until `[DONE]`; a stream cut short or garbled raises UpstreamError."""
    finished = False
    async for line in lines:
        if not line or line.startswith(":") or not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"backend '{backend}' sent a malformed stream chunk") from exc
        if not isinstance(chunk, dict):
            raise UpstreamError(f"backend '{backend}' sent a stream chunk that is not an object")
        if "error" in chunk and "choices" not in chunk:
            message = (chunk.get("error") or {}).get("message") or "unknown error"
            raise UpstreamError(f"backend '{backend}' failed mid-stream: {message}")
        for choice in chunk.get("choices") or ():
            if choice.get("finish_reason"):
                finished = True
        yield chunk
    if not finished:
        raise UpstreamError(f"backend '{backend}' closed the stream before it finished")
