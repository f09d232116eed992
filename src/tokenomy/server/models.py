"""`GET /v1/models` and `GET /v1/models/{id}` (what `client.models.retrieve` calls).

Each model says where it goes, its context length and its prices, from
litellm's cost map (or `[ledger.prices]` / the alias's own prices), so a
client can size and price a request before sending it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from tokenomy.budgets.cost import Pricer, model_info
from tokenomy.budgets.settings import LedgerSettings
from tokenomy.engine import Engine
from tokenomy.errors import TokenomyError
from tokenomy.upstreams.local import LOCAL_CONTEXT_TOKENS, LOCAL_MODEL_NAME

JSON = "application/json"


class ModelCards:
    """The model entries of one engine, built once per name (the cost map is read once)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        budgets = engine.budgets
        self.pricer = budgets.pricer if budgets is not None else Pricer(
            engine.settings.section("ledger", LedgerSettings), engine.settings)
        self._cards: dict[str, dict[str, Any]] = {}

    def card(self, name: str) -> dict[str, Any]:
        """Raises NotFound (404, model_not_found) for a name this proxy does not serve."""
        found = self._cards.get(name)
        if found is None:
            found = self._cards[name] = self._build(name)
        return found

    def _build(self, name: str) -> dict[str, Any]:
        route = self.engine.router.routes(name)[0]
        card: dict[str, Any] = {"id": name, "object": "model", "created": 0,
                                "owned_by": "tokenomy", "backend": route.backend,
                                "upstream_model": route.upstream_model}
        if route.upstream_model == LOCAL_MODEL_NAME:
            card["context_length"] = LOCAL_CONTEXT_TOKENS
        else:
            info = model_info(route.upstream_model) or model_info(name) or {}
            context = info.get("max_input_tokens") or info.get("max_tokens")
            if isinstance(context, int):
                card["context_length"] = context
            if isinstance(info.get("max_output_tokens"), int):
                card["max_output_tokens"] = info["max_output_tokens"]
        price = self.pricer.price(route.upstream_model, name)
        card["pricing"] = {  # USD per token, litellm's names
            "input_cost_per_token": price.input,
            "output_cost_per_token": price.output,
            "cache_read_input_token_cost": price.cache_read,
            "cache_creation_input_token_cost": price.cache_write,
        }
        return card


def models_router(engine: Engine) -> APIRouter:
    router = APIRouter()
    cards = ModelCards(engine)

    def listing() -> bytes:
        data = [cards.card(name) for name in engine.router.model_names()]
        return orjson.dumps({"object": "list", "data": data})

    @router.get("/v1/models", summary="The models this proxy serves, with context and prices")
    async def models() -> Response:
        return Response(await asyncio.to_thread(listing), media_type=JSON)

    @router.get("/v1/models/{model_id:path}", summary="One model (OpenAI's models.retrieve)")
    async def model(model_id: str) -> Response:
        from tokenomy.server.app import error_response

        try:
            card = await asyncio.to_thread(cards.card, model_id)
        except TokenomyError as exc:
            return error_response(exc)
        return Response(orjson.dumps(card), media_type=JSON)

    return router
