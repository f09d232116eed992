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
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tokenomy import __version__
from tokenomy.config import Settings, load_settings
from tokenomy.engine import Engine
from tokenomy.errors import TokenomyError
from tokenomy.plugins import compressor_methods
from tokenomy.server.count_tokens import CountTokensEndpoint
from tokenomy.server.endpoint import ProtocolEndpoint, error_headers
from tokenomy.server.openapi import chat_request_schema, responses_request_schema
from tokenomy.server.openapi_messages import messages_request_schema
from tokenomy.transcript import ANTHROPIC_MESSAGES, OPENAI_CHAT
from tokenomy.transcript.anthropic_messages import ANTHROPIC_COUNT_TOKENS
from tokenomy.transcript.openai_responses import OPENAI_RESPONSES

log = logging.getLogger("tokenomy.server")

CHAT_PATH = OPENAI_CHAT.path
JSON = "application/json"


def error_response(error: TokenomyError, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(error.to_dict()), status_code=error.status,
                    media_type=JSON, headers=error_headers(error, headers))


class _Delegate(Response):
    """A response that hands the whole exchange to a plain ASGI app."""

    def __init__(self, app: ProtocolEndpoint | CountTokensEndpoint):
        self.app = app
        self.background = None  # FastAPI may attach background tasks; there are none

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class ProxyApp(FastAPI):
    """FastAPI for everything but the hot paths, which skip its middleware and routing.

    The hot paths are the model endpoints, one per registered wire protocol
    (`/v1/chat/completions`, `/v1/messages`, `/v1/responses`). Note for anyone
    adding middleware: it does not see POST requests to them.
    """

    endpoints: dict[str, ProtocolEndpoint | CountTokensEndpoint]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.endpoints.get(scope["path"])
            if endpoint is not None:
                return await endpoint(scope, receive, send)
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    from tokenomy.server.health import Readiness, health_router, models_needed
    from tokenomy.server.metrics import metrics_router
    from tokenomy.server.models import models_router
    from tokenomy.server.usage import usage_router

    settings = settings or load_settings()
    engine = engine or Engine(settings)
    limit = settings.server.max_body_bytes
    # The models the config uses load in the background; /readyz is 503 until they are.
    readiness = Readiness(engine, models_needed(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        readiness.start()
        await asyncio.to_thread(engine.warm)  # /healthz answers once requests are quick
        yield
        readiness.stop()
        await engine.aclose()

    app = ProxyApp(title="tokenomy", version=__version__, lifespan=lifespan,
                  summary="Token-economy proxy with an OpenAI-compatible API.")
    app.state.engine = engine
    app.state.readiness = readiness
    app.endpoints = {protocol.path: ProtocolEndpoint(engine, protocol, limit)
                     for protocol in engine.registry.protocols.values()}
    app.endpoints[ANTHROPIC_COUNT_TOKENS.path] = CountTokensEndpoint(engine, limit)
    chat = app.endpoints[CHAT_PATH]
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

    @app.post(CHAT_PATH, openapi_extra=chat_request_schema(compressor_methods()),
              summary="Create a chat completion (OpenAI-compatible, streaming too)")
    async def chat_completions(request: Request) -> Response:
        # Reached only when the app is mounted under another path; see ProxyApp.
        return _Delegate(chat)

    @app.post(ANTHROPIC_MESSAGES.path,
              openapi_extra=messages_request_schema(compressor_methods()),
              summary="Create a message (Anthropic Messages API, streaming too)")
    async def messages(request: Request) -> Response:
        # Reached only when the app is mounted under another path; see ProxyApp.
        return _Delegate(app.endpoints[ANTHROPIC_MESSAGES.path])

    @app.post(ANTHROPIC_COUNT_TOKENS.path,
              openapi_extra=messages_request_schema(compressor_methods(), count=True),
              summary="Count a message's input tokens (Anthropic Messages API)")
    async def count_tokens(request: Request) -> Response:
        return _Delegate(app.endpoints[ANTHROPIC_COUNT_TOKENS.path])

    @app.post(OPENAI_RESPONSES.path, openapi_extra=responses_request_schema(compressor_methods()),
              summary="Create a model response (OpenAI Responses API, streaming too)")
    async def responses(request: Request) -> Response:
        # Reached only when the app is mounted under another path; see ProxyApp.
        return _Delegate(app.endpoints[OPENAI_RESPONSES.path])

    from tokenomy.server.dashboard import dashboard_router

    app.include_router(models_router(engine))
    app.include_router(usage_router(engine))
    app.include_router(dashboard_router(engine))
    app.include_router(health_router(engine, readiness))
    app.include_router(metrics_router(engine))
    return app


def app_from_env() -> FastAPI:
    """The app factory each worker of `tokenomy serve --workers N` calls: the config path
    comes in $TOKENOMY_CONFIG and the bind address in $TOKENOMY_SERVE_HOST (keys are
    required off loopback in every worker, as in a single process)."""
    import os

    from tokenomy.budgets.settings import require_keys_off_loopback
    from tokenomy.observe.logs import server_process

    server_process()
    settings = load_settings()
    require_keys_off_loopback(settings, os.environ.get(SERVE_HOST_ENV, "127.0.0.1"))
    return create_app(settings)


SERVE_HOST_ENV = "TOKENOMY_SERVE_HOST"
