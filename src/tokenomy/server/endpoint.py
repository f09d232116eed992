"""One model endpoint per wire protocol, as a plain ASGI callable: the proxy's hot path.

`ProtocolEndpoint(engine, protocol)` serves `protocol.path`
(`/v1/chat/completions`, `/v1/messages`, `/v1/responses`): it reads the body,
runs the engine and writes the answer, errors and stream events in that
protocol's own shapes. Nothing here knows a protocol's field names.

Why not a FastAPI route: FastAPI's and Starlette's layers (exception and
exit-stack middleware, routing, Request objects, StreamingResponse's anyio
task group) cost more CPU per request than everything tokenomy does itself.
The app (see app.py) hands these paths straight to their endpoint; FastAPI
still documents them in /openapi.json and serves every other path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson

from tokenomy.call import REQUEST_ID, Call, Result, header_value, new_request_id
from tokenomy.engine import Engine
from tokenomy.errors import BadRequest, PayloadTooLarge, TokenomyError, UpstreamError
from tokenomy.identify import api_key_from_headers
from tokenomy.transcript import OPENAI_CHAT, WireProtocol
from tokenomy.upstreams.sse import encode_event, encode_stream_error, stream_tail

log = logging.getLogger("tokenomy.server")

Scope = dict[str, Any]
Headers = list[tuple[bytes, bytes]]

_JSON = (b"content-type", b"application/json")
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


def _header_name_ok(name: str) -> bool:
    # RFC 9110 token characters only: a stage can never smuggle a second header in.
    return bool(name) and all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in name)


def _raw(headers: dict[str, str]) -> Headers:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


def error_headers(error: TokenomyError, headers: dict[str, str] | None = None) -> dict[str, str]:
    merged = dict(headers or {})
    for name, value in error.headers.items():
        if _header_name_ok(name):
            merged[name.lower()] = header_value(value)
    merged.setdefault(REQUEST_ID, new_request_id())
    return merged


async def send_json(send: Any, status: int, payload: bytes, headers: dict[str, str]) -> None:
    raw = [_JSON, (b"content-length", str(len(payload)).encode()), *_raw(headers)]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


async def send_error(send: Any, error: TokenomyError, headers: dict[str, str] | None = None,
                     protocol: WireProtocol = OPENAI_CHAT) -> None:
    await send_json(send, error.status, orjson.dumps(protocol.error_body(error)),
                    error_headers(error, headers))


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers, names lower-cased (ASGI already lower-cases them)."""
    return {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}


def forwarded_headers(headers: dict[str, str], protocol: WireProtocol) -> dict[str, str]:
    """The client headers a backend of `protocol` may receive (its allowlist, nothing else)."""
    allowed = protocol.forward_headers
    return {name: value for name, value in headers.items() if name in allowed} if allowed else {}


async def read_json(scope: Scope, receive: Any, limit: int) -> tuple[Any, int]:
    """Read the body without ever holding more than `limit` bytes."""
    declared = _header(scope, b"content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError as exc:
            raise BadRequest("invalid Content-Length header") from exc
        if size > limit:
            raise PayloadTooLarge(f"the request body is {size} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("the client went away before sending the whole body")
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"the request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if not raw.strip():
        raise BadRequest("the request body is empty; send a JSON request")
    try:
        return orjson.loads(raw), len(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from exc


async def run_until_gone(engine: Engine, call: Call, receive: Any) -> Result | None:
    """`engine.run(call)`, cancelled if the client hangs up first (then None).

    The cancellation reaches every stage: the budget stage settles the call as
    cancelled (499), compression running in a worker thread is told to stop,
    and the upstream request is closed, so the backend stops working too. A
    stream's own watcher (`_stream`) takes over once its first bytes are due.
    """
    task = asyncio.current_task()
    assert task is not None
    hang_up = HangUp(receive, cancel=task)
    try:
        return await engine.run(call)
    except asyncio.CancelledError:
        if not hang_up.gone:
            raise
        task.uncancel()
        return None
    finally:
        hang_up.close()


class HangUp:
    """Watches an ASGI `receive` for the client's disconnect: `gone` once it came, and
    `cancel` (a task: a JSON call's engine run) cancelled then."""

    __slots__ = ("_watcher", "gone")

    def __init__(self, receive: Any, cancel: asyncio.Task[Any] | None = None):
        self.gone = False
        self._watcher = asyncio.get_running_loop().create_task(self._watch(receive, cancel))

    async def _watch(self, receive: Any, cancel: asyncio.Task[Any] | None) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        if cancel is not None:
            cancel.cancel()

    def close(self) -> None:
        self._watcher.cancel()


class ProtocolEndpoint:
    """The ASGI app for one protocol's path; `limit` is `server.max_body_bytes`."""

    def __init__(self, engine: Engine, protocol: WireProtocol, limit: int):
        self.engine = engine
        self.protocol = protocol
        self.limit = limit

    async def _refuse(self, send: Any, error: TokenomyError, started: float) -> None:
        """A request refused before it became a call: logged and counted, then answered."""
        request_id = self.engine.rejected(error, route=self.protocol.path,
                                          protocol=self.protocol, started=started)
        await send_error(send, error, {REQUEST_ID: request_id}, protocol=self.protocol)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        engine, protocol = self.engine, self.protocol
        started = time.perf_counter()
        try:
            body, size = await read_json(scope, receive, self.limit)
            headers = request_headers(scope)
            call = engine.prepare(body, protocol=protocol, api_key=api_key_from_headers(headers),
                                  headers=headers,
                                  forward_headers=forwarded_headers(headers, protocol),
                                  route=protocol.path)
            call.body_bytes = size
            call.started = started  # reading and checking the body is tokenomy's time too
        except TokenomyError as exc:
            return await self._refuse(send, exc, started)
        except Exception:
            log.exception("preparing a call failed")
            return await self._refuse(
                send, TokenomyError("internal error while reading the request"), started)
        try:
            result = await run_until_gone(engine, call, receive)
            if result is None:
                return None  # the client hung up; the ledger has the call as cancelled
        except TokenomyError as exc:
            return await send_error(send, exc, call.response_headers(), protocol)
        except Exception:
            log.exception("call %s failed", call.request_id)
            return await send_error(send, TokenomyError("internal error"),
                                    call.response_headers(), protocol)
        headers = call.response_headers()
        if result.chunks is None:
            try:
                payload = orjson.dumps(result.response)
            except orjson.JSONEncodeError:  # a backend answer nested deeper than we write
                error = UpstreamError("the backend's response cannot be re-encoded as JSON")
                return await send_error(send, error, headers, protocol)
            return await send_json(send, result.status, payload, headers)
        await self._stream(result, headers, receive, send)

    async def _stream(self, result: Result, headers: dict[str, str], receive: Any,
                      send: Any) -> None:
        """Chunks as SSE; a failure mid-stream ends with an error event, never a hang.

        uvicorn drops writes to a client that went away without telling us, so a
        watcher notes the disconnect and the loop stops at the next chunk; closing
        the stream then lets stages see its end (the ledger settles it as
        cancelled) and releases the backend. No task-group cancellation: it costs
        more per stream than the rest of this function.
        """
        chunks = result.chunks
        assert chunks is not None
        await send({"type": "http.response.start", "status": result.status,
                    "headers": _SSE + _raw(headers)})
        hang_up = HangUp(receive)
        protocol = self.protocol
        tail = stream_tail(protocol)
        try:
            async for chunk in chunks:
                if hang_up.gone:
                    break
                await send({"type": "http.response.body", "body": encode_event(protocol, chunk),
                            "more_body": True})
        except TokenomyError as exc:
            tail = encode_stream_error(protocol, exc)
        except Exception as exc:  # a bug must still end the stream cleanly
            log.exception("stream failed")
            tail = encode_stream_error(
                protocol, UpstreamError(f"the stream failed: {type(exc).__name__}"))
        finally:
            hang_up.close()
            await chunks.aclose()  # the stream's end settles the ledger (shielded)
        if not hang_up.gone:
            await send({"type": "http.response.body", "body": tail, "more_body": False})
