"""The proxy's ASGI app: a thin adapter that parses, runs the engine, and serializes.

Everything interesting happens in stages; this file only speaks HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tokenomy import __version__
from tokenomy.call import Call, Result, new_request_id
from tokenomy.config import Settings, load_settings
from tokenomy.engine import Engine
from tokenomy.errors import BadRequest, PayloadTooLarge, TokenomyError, UpstreamError
from tokenomy.middleware.openapi import CHAT_REQUEST_SCHEMA
from tokenomy.middleware.upstreams.sse import DONE, encode_chunk, encode_error

log = logging.getLogger("tokenomy.server")

REQUEST_ID = "x-tokenomy-request-id"
JSON = "application/json"


def _safe_header(value: Any) -> str:
    """Header values never carry CR/LF or non-latin-1 text (no header injection)."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    return text.encode("latin-1", "replace").decode("latin-1")


def call_headers(call: Call) -> dict[str, str]:
    original = call.prompt_tokens_original
    sent = call.prompt_tokens_sent if call.prompt_tokens_sent is not None else original
    headers = {
        REQUEST_ID: call.request_id,
        "x-tokenomy-prompt-tokens-original": str(original if original is not None else ""),
        "x-tokenomy-prompt-tokens-sent": str(sent if sent is not None else ""),
    }
    if call.mode:
        headers["x-tokenomy-mode"] = call.mode
    for name, value in call.headers.items():
        headers[name.lower()] = _safe_header(value)
    return headers


def error_response(error: TokenomyError, headers: dict[str, str] | None = None) -> Response:
    merged = {**(headers or {}), **{k: _safe_header(v) for k, v in error.headers.items()}}
    merged.setdefault(REQUEST_ID, new_request_id())
    return Response(orjson.dumps(error.to_dict()), status_code=error.status,
                    media_type=JSON, headers=merged)


async def read_json(request: Request, limit: int) -> Any:
    """Read the body without ever holding more than `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError as exc:
            raise BadRequest("invalid Content-Length header") from exc
        if size > limit:
            raise PayloadTooLarge(f"the request body is {size} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"the request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise BadRequest("the request body is empty; send a JSON chat completion request")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from exc


async def sse_body(result: Result) -> AsyncIterator[bytes]:
    """Chunks as SSE; a failure mid-stream ends with an error event, never a hang."""
    assert result.chunks is not None
    try:
        async for chunk in result.chunks:
            yield encode_chunk(chunk)
        yield DONE
    except TokenomyError as exc:
        yield encode_error(exc)
    except Exception as exc:  # a bug must still end the stream cleanly
        log.exception("stream failed")
        yield encode_error(UpstreamError(f"the stream failed: {type(exc).__name__}"))


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or load_settings()
    engine = engine or Engine(settings)
    limit = settings.server.max_body_bytes

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if any(b.kind == "local" for b in settings.backends.values()):
            # Warm the embedded model in the background so the first chat is quick.
            from tokenomy.scoring import load_small_lm

            app.state.warmup = asyncio.create_task(asyncio.to_thread(load_small_lm))
        yield
        await engine.aclose()

    app = FastAPI(title="tokenomy", version=__version__, lifespan=lifespan,
                  summary="Token-economy proxy with an OpenAI-compatible API.")
    app.state.engine = engine
    app.state.settings = settings

    @app.exception_handler(TokenomyError)
    async def _tokenomy_error(request: Request, exc: TokenomyError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        error = TokenomyError(str(exc.detail), status=exc.status_code,
                              type="invalid_request_error", code=code)
        return error_response(error)

    @app.post("/v1/chat/completions", openapi_extra=CHAT_REQUEST_SCHEMA,
              summary="Create a chat completion (OpenAI-compatible, streaming too)")
    async def chat_completions(request: Request) -> Response:
        try:
            body = await read_json(request, limit)
            call = engine.prepare(body, api_key=bearer_token(request))
        except TokenomyError as exc:
            return error_response(exc)
        try:
            result = await engine.run(call)
        except TokenomyError as exc:
            return error_response(exc, call_headers(call))
        headers = call_headers(call)
        if result.chunks is not None:
            headers["cache-control"] = "no-cache"
            return StreamingResponse(sse_body(result), media_type="text/event-stream",
                                     headers=headers, status_code=result.status)
        return Response(orjson.dumps(result.response), media_type=JSON, headers=headers,
                        status_code=result.status)

    @app.get("/v1/models", summary="List the model names this proxy serves")
    async def models() -> Response:
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "tokenomy"}
                for name in engine.router.model_names()]
        return Response(orjson.dumps({"object": "list", "data": data}), media_type=JSON)

    from tokenomy.budgets.http import usage_router

    app.include_router(usage_router(engine))

    @app.get("/healthz", summary="Liveness and configured backends")
    async def healthz() -> Response:
        body = {"status": "ok", "version": __version__,
                "backends": {n: b.kind for n, b in settings.backends.items()}}
        return Response(orjson.dumps(body), media_type=JSON)

    return app
