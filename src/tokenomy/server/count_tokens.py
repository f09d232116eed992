"""POST /v1/messages/count_tokens: Anthropic's token counter, behind the same auth.

The caller is authenticated exactly as on `/v1/messages` (the engine's own
`identify` stage: the key as `x-api-key` or Bearer; 401/403 in Anthropic's
error shape), and the count is free: no budget is reserved, no ledger row.

Where the number comes from, and why:
- the model routes to an `anthropic` backend: the backend counts
  (`/v1/messages/count_tokens`). Claude's tokenizer is not public, the count
  is free there, and clients (Claude Code) use it to decide when a
  conversation must be compacted, so it must be the number the provider will
  bill; a local estimate could be off by more than the margin they keep. A
  backend without the endpoint (404/405: some Anthropic-compatible
  servers) is counted locally instead.
- any other backend: the request is counted with the adapter
  (`AnthropicMessages.count`) in the tokenizer of the model that will read it,
  which is what that backend bills.

Either way it is the request as the client sent it: tokenomy may send fewer
tokens (compression), never more, so the count is the safe side of the bill.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from tokenomy.call import REQUEST_ID, Call, Result
from tokenomy.engine import Engine
from tokenomy.errors import TokenomyError
from tokenomy.identify import api_key_from_headers
from tokenomy.server.endpoint import (
    Scope,
    forwarded_headers,
    read_json,
    request_headers,
    send_error,
    send_json,
)
from tokenomy.transcript.anthropic_messages import ANTHROPIC_COUNT_TOKENS, ANTHROPIC_MESSAGES
from tokenomy.transcript.media import media_tokens

log = logging.getLogger("tokenomy.server")

PATH = ANTHROPIC_COUNT_TOKENS.path
MISSING_ENDPOINT = frozenset({404, 405})


class CountTokensEndpoint:
    """The ASGI app for `PATH`; `limit` is `server.max_body_bytes`."""

    def __init__(self, engine: Engine, limit: int):
        self.engine = engine
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        engine, protocol = self.engine, ANTHROPIC_COUNT_TOKENS
        try:
            body, size = await read_json(scope, receive, self.limit)
            headers = request_headers(scope)
            call = engine.prepare(body, protocol=protocol, api_key=api_key_from_headers(headers),
                                  headers=headers,
                                  forward_headers=forwarded_headers(headers, protocol))
            call.body_bytes = size
            identify = engine.pipeline.stage("identify")
            result = await (identify(call, self._count) if identify is not None
                            else self._count(call))
        except TokenomyError as exc:
            return await send_error(send, exc, protocol=protocol)
        except Exception:
            log.exception("counting tokens failed")
            return await send_error(send, TokenomyError("internal error while counting tokens"),
                                    protocol=protocol)
        await send_json(send, 200, orjson.dumps(result.response),
                        {REQUEST_ID: call.request_id})

    async def _count(self, call: Call) -> Result:
        route = call.routes[0]
        call.backend, call.upstream_model = route.backend, route.upstream_model
        upstream = self.engine.router.upstream(route.backend)
        counter = getattr(upstream, "count_tokens", None)
        if counter is not None and ANTHROPIC_MESSAGES.name in upstream.spoken:
            body = self.engine.router.body_for(call, route, upstream)
            try:
                return Result(response={"input_tokens": await counter(body, call.client_headers)})
            except TokenomyError as exc:
                if exc.status not in MISSING_ENDPOINT:
                    raise
                log.info("backend '%s' has no count_tokens (%s); counting locally",
                         route.backend, exc.status)
        # Text by the tokenizer; images and PDFs by the provider's rules (as Anthropic does).
        media = media_tokens(call.protocol.media(call.body), call.token_model)
        return Result(response={"input_tokens": await call.original_tokens() + media})
