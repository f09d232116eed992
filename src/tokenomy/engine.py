"""One engine behind every way in: the proxy, the in-process SDK and the CLI.

`Engine.prepare(body, protocol=...)` checks a request in its wire protocol,
takes out the tokenomy options and resolves the model's routes;
`Engine.run(call)` runs the stage pipeline (by default identify -> step ->
budget -> codify -> compress -> plan) and the upstream handler. The engine
builds its services (the router, the ledger) once and hands them to each
stage's factory; stages and their order come from the plugin registry and
`[pipeline] stages`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from tokenomy.call import Call, Chunk, Credentials, Identity, Result, Usage, new_request_id
from tokenomy.config import DEFAULT_STAGES, Settings, load_settings
from tokenomy.errors import BadRequest, ConfigError
from tokenomy.observe import Observer
from tokenomy.options import take_options
from tokenomy.pipeline import Pipeline, Services, Stage, stage_order
from tokenomy.plugins import Registry, check_method, registry
from tokenomy.tokenizers import count_text
from tokenomy.transcript import OPENAI_CHAT, WireProtocol
from tokenomy.upstreams.router import Router, UpstreamHandler

log = logging.getLogger("tokenomy.engine")


def build_services(settings: Settings, reg: Registry) -> Services:
    """The router and, unless `[ledger] enabled = false`, the ledger service."""
    from tokenomy.budgets.service import Budgets
    from tokenomy.budgets.settings import LedgerSettings

    router = Router(settings, reg.upstream_kinds, reg.translators)
    budgets = None
    if settings.section("ledger", LedgerSettings).enabled:
        budgets = Budgets.from_settings(settings)
    return Services(settings=settings, router=router, budgets=budgets)


def build_stages(services: Services, reg: Registry) -> list[Stage]:
    """The stages in `[pipeline] stages` order (or the default order), outermost first."""
    placed = {name: spec.after for name, spec in reg.stages.items()}
    try:
        names = stage_order(services.settings.pipeline.stages, DEFAULT_STAGES, placed,
                            set(reg.stages))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    stages: list[Stage] = []
    for name in names:
        stage = reg.stages[name].factory(services)
        if stage is not None:
            stages.append(stage)
    return stages


class Engine:
    def __init__(self, settings: Settings, *, services: Services | None = None,
                 stages: list[Stage] | None = None):
        reg = registry()
        settings.check_sections(reg.sections)
        self.settings = settings
        self.registry = reg
        self.services = services or build_services(settings, reg)
        self.router = self.services.router
        # The request log, metrics and traces ([telemetry]); None when all are off.
        self.observer = Observer.from_settings(settings)
        stages = stages if stages is not None else build_stages(self.services, reg)
        terminal: Any = UpstreamHandler(self.router)
        if self.observer is not None:
            stages = self.observer.wrap_stages(stages)
            terminal = self.observer.wrap_terminal(terminal)
        self.pipeline = Pipeline(stages, terminal)

    @property
    def budgets(self) -> Any:
        return self.services.budgets

    def protocol(self, name: str) -> WireProtocol:
        return self.registry.protocols[name]

    def prepare(
        self,
        body: Any,
        *,
        protocol: WireProtocol = OPENAI_CHAT,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        identity: Identity | None = None,
        forward_headers: Mapping[str, str] | None = None,
        route: str | None = None,
    ) -> Call:
        """Check and address a request; raises a protocol-neutral error on bad input.

        Nothing here counts tokens or touches the ledger: a request is cheap to
        refuse until it has been authenticated (the identify stage runs first).
        `route` names the way in for the request log and metrics (an HTTP path,
        "sdk"); by default the protocol's name.
        """
        body = protocol.validate(body, max_items=self.settings.server.max_messages)
        headers = headers or {}
        options = take_options(body, dict(headers))
        if options.compress is not None:
            try:
                check_method(options.compress.method)
            except ValueError as exc:
                raise BadRequest(f"tokenomy.compress.method: {exc}",
                                 param="tokenomy.compress.method") from exc
        routes = self.router.routes(str(body["model"]))
        return Call(
            protocol=protocol,
            body=body,
            options=options,
            identity=identity or Identity(),
            credentials=Credentials(api_key=api_key),
            client_headers=dict(forward_headers or {}),
            routes=routes,
            backend=routes[0].backend,
            upstream_model=routes[0].upstream_model,
            route=route or protocol.name,
            traceparent=headers.get("traceparent"),
        )

    def rejected(self, error: BaseException, *, route: str,
                 protocol: WireProtocol = OPENAI_CHAT, started: float | None = None) -> str:
        """A request refused before it became a call (unreadable, invalid, unknown model):
        logged and counted like every other. Returns the request id for its response."""
        if self.observer is None:
            return new_request_id()
        return self.observer.rejected(error, route=route, protocol=protocol,
                                      started=started).request_id

    def warm(self) -> None:
        """Load what a first request would otherwise load on the event loop.

        Token encoders and, for model names no encoder knows, the fallback counter:
        the first caller must not wait for them.
        """
        from tokenomy.tokenizers import count_text

        names: set[str] = set()
        for alias in self.settings.models:
            route = self.router.routes(alias)[0]
            if self.router.kind(route.backend) != "local":
                names.add(route.upstream_model)
        default = self.settings.default_backend
        if default and self.router.kind(default) != "local":
            names.add("tokenomy-warmup")  # a name no encoder knows: the fallback counter
        for name in sorted(names):
            count_text("warm up", name)

    async def run(self, call: Call) -> Result:
        """Run the stages and the backend; the observer sees the call end, however it
        ends (for a stream: when the stream does, after the ledger settled it)."""
        observer = self.observer
        if observer is None:
            result = await self.pipeline.run(call)
            await call.original_tokens()  # counted once (off the loop when large), for headers
            return self._hide_usage(call, result)
        state = observer.start(call)
        try:
            result = await self.pipeline.run(call)
            await call.original_tokens()  # counted once (off the loop when large), for headers
        except BaseException as exc:
            observer.finish_soon(call, None, exc, state)
            raise
        finally:
            observer.returned(state)
        self._hide_usage(call, result)
        if result.chunks is not None:
            observer.watch_stream(call, result, state)
        else:
            observer.finish_soon(call, result, None, state)
        return result

    @staticmethod
    def _hide_usage(call: Call, result: Result) -> Result:
        if result.chunks is not None:
            hide = call.protocol.hide_usage(call.body)
            if hide is not None:
                result.chunks.transform(hide)
            else:
                promise_usage(call, result)
        return result

    async def handle(self, body: Any, **kwargs: Any) -> tuple[Call, Result]:
        call = self.prepare(body, **kwargs)
        return call, await self.run(call)

    async def aclose(self) -> None:
        await self.router.aclose()
        await self.pipeline.aclose()
        if self.observer is not None:
            self.observer.close()


def promise_usage(call: Call, result: Result) -> None:
    """A client that asked for stream usage gets its usage chunk even when the backend
    sends none: counted from what was sent and streamed (the ledger records the same
    figures, marked estimated)."""
    assert result.chunks is not None
    protocol = call.protocol
    texts: list[str] = []
    last: list[Chunk] = []
    reported = [False]

    def watch(chunk: Chunk) -> None:
        text = protocol.chunk_text(chunk)
        if text:
            texts.append(text)
        if protocol.chunk_usage(chunk) is not None:
            reported[0] = True
        last[:] = [chunk]

    async def tail() -> Chunk | None:
        if reported[0] or result.usage is not None:
            return None  # the backend reported it (its chunk already went out)
        text = "".join(texts)
        if len(text) > INLINE_COUNT_CHARS:
            completion = await asyncio.to_thread(count_text, text, call.token_model)
        else:
            completion = count_text(text, call.token_model)
        usage = Usage.of(call.prompt_tokens_sent, completion, estimated=True)
        return protocol.usage_chunk(call.body, usage, last[0] if last else None)

    result.chunks.observe(watch)
    result.chunks.add_tail(tail)


INLINE_COUNT_CHARS = 32_768  # longer streamed text is counted off the event loop


REWRITE_STAGES = ("codify", "compress", "plan")


def rewrite_stages(settings: Settings, names: tuple[str, ...] = REWRITE_STAGES) -> list[Stage]:
    """The engine's own prompt-rewriting stages, for callers that send the request
    themselves (the LangChain middleware): no ledger, no upstream."""
    reg = registry()
    settings.check_sections(reg.sections)
    services = Services(settings=settings,
                        router=Router(settings, reg.upstream_kinds, reg.translators))
    stages = []
    for name in names:
        stage = reg.stages[name].factory(services)
        if stage is not None:
            stages.append(stage)
    return stages


async def rewrite(call: Call, stages: list[Stage]) -> Call:
    """Run `stages` over `call` and stop before any backend: the call as it would leave."""

    async def keep(_: Call) -> Result:
        return Result(response={})

    await Pipeline(stages, keep).run(call)
    return call


def build_engine(settings: Settings | None = None) -> Engine:
    return Engine(settings or load_settings())
