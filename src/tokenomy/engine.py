"""One engine behind every way in: the proxy, the in-process Client and the CLI.

`Engine.handle(body)` validates an OpenAI chat body, resolves its model to
backends, counts its prompt tokens, and runs the stage pipeline:
identify -> budget -> compress -> plan -> upstream.
"""

from __future__ import annotations

from typing import Any

from tokenomy.call import Call, Identity, Result
from tokenomy.codify.stage import CodifyStage
from tokenomy.config import Settings, load_settings
from tokenomy.identify import IdentifyStage
from tokenomy.pipeline import Pipeline, Stage
from tokenomy.planners.stage import PlanStage
from tokenomy.tokenizers import count_messages
from tokenomy.transcript_validation_tmp import pop_options, validate_body
from tokenomy.upstreams.router import (
    Router,
    UpstreamStage,
    client_wants_usage,
    hide_usage_chunk,
)


def build_stages(settings: Settings) -> list[Stage]:
    """The stage list, outermost first. Adding a technique means adding a stage here."""
    from tokenomy.budgets.service import Budgets
    from tokenomy.budgets.settings import BudgetConfig
    from tokenomy.compressors.stage import CompressStage
    from tokenomy.sdk.stage import StepStage

    if not BudgetConfig.from_settings(settings).ledger.enabled:
        # No database at all (`ledger.enabled = false`): dev-mode attribution only.
        return [IdentifyStage(), StepStage(), CodifyStage(settings),
                CompressStage.from_settings(settings), PlanStage(settings)]
    budgets = Budgets.from_settings(settings)
    return [
        budgets.identify_stage(),
        StepStage(),
        budgets.budget_stage(),
        CodifyStage(settings),
        CompressStage.from_settings(settings),
        PlanStage(settings),
    ]


class Engine:
    def __init__(self, settings: Settings, stages: list[Stage] | None = None):
        self.settings = settings
        self.router = Router(settings)
        self.pipeline = Pipeline(
            stages if stages is not None else build_stages(settings), UpstreamStage(self.router)
        )

    def prepare(
        self,
        body: Any,
        *,
        api_key: str | None = None,
        identity: Identity | None = None,
    ) -> Call:
        """Validate and address a request; raises an OpenAI-shaped error on bad input."""
        body = validate_body(body, max_messages=self.settings.server.max_messages)
        options = pop_options(body)
        routes = self.router.routes(body["model"])
        call = Call(body=body, options=options, identity=identity or Identity())
        call.backend, call.upstream_model = routes[0].backend, routes[0].upstream_model
        call.state["routes"] = routes
        call.state["api_key"] = api_key
        call.prompt_tokens_original = count_messages(
            body["messages"], call.upstream_model, body.get("tools")
        )
        return call

    def warm(self) -> None:
        """Load what a first request would otherwise load on the event loop.

        Token encoders and, for model names no encoder knows, litellm's counter
        (importing litellm takes seconds): the first caller must not wait for them.
        """
        names: set[str] = set()
        for alias in self.settings.models:
            route = self.router.routes(alias)[0]
            if self.settings.backends[route.backend].kind != "local":
                names.add(route.upstream_model)
        default = self.settings.default_backend
        if default and self.settings.backends[default].kind != "local":
            names.add("tokenomy-warmup")  # a name no encoder knows: the fallback counter
        for name in sorted(names):
            count_messages([{"role": "user", "content": "warm up"}], name)

    async def run(self, call: Call) -> Result:
        wants_usage = client_wants_usage(call.body)
        result = await self.pipeline.run(call)
        if call.prompt_tokens_sent is None:
            call.prompt_tokens_sent = call.prompt_tokens_original
        if result.chunks is not None and not wants_usage:
            result.chunks = hide_usage_chunk(result.chunks)
        return result

    async def handle(self, body: Any, **kwargs: Any) -> tuple[Call, Result]:
        call = self.prepare(body, **kwargs)
        return call, await self.run(call)

    async def aclose(self) -> None:
        await self.router.aclose()
        for stage in self.pipeline.stages:
            close = getattr(stage, "aclose", None)
            if close is not None:
                await close()


def build_engine(settings: Settings | None = None) -> Engine:
    return Engine(settings or load_settings())
