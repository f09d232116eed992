"""Model aliases to backends, and the terminal stage that calls them (with fallbacks)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from tokenomy.call import Call, Chunk, Result, Usage
from tokenomy.config import Settings
from tokenomy.errors import NotFound, TokenomyError
from tokenomy.upstreams import Upstream, build_upstream
from tokenomy.upstreams.local import LOCAL_MODEL_NAME

LOCAL_ALIASES = ("local", LOCAL_MODEL_NAME)
FALLBACK_STATUSES = frozenset({429, 500, 502, 503, 504})


class Route(NamedTuple):
    alias: str
    backend: str
    upstream_model: str


class Router:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._upstreams: dict[str, Upstream] = {}
        self._local = [n for n, b in settings.backends.items() if b.kind == "local"]

    def model_names(self) -> list[str]:
        names = list(self.settings.models)
        if self._local:
            names += [a for a in LOCAL_ALIASES if a not in names]
        return names

    def _route(self, model: str) -> Route | None:
        alias = self.settings.models.get(model)
        if alias is not None:
            upstream_model = alias.model or model
            if self.settings.backends[alias.backend].kind == "local":
                upstream_model = LOCAL_MODEL_NAME
            return Route(model, alias.backend, upstream_model)
        if model in LOCAL_ALIASES and self._local:
            return Route(model, self._local[0], LOCAL_MODEL_NAME)
        if self.settings.default_backend:
            return Route(model, self.settings.default_backend, model)
        return None

    def routes(self, model: str) -> list[Route]:
        """The primary route for `model`, then its fallbacks, in order."""
        primary = self._route(model)
        if primary is None:
            raise NotFound(
                f"the model '{model}' does not exist on this proxy; "
                f"available: {', '.join(self.model_names()) or '(none)'}",
                param="model",
            )
        routes = [primary]
        alias = self.settings.models.get(model)
        for name in alias.fallbacks if alias else ():
            route = self._route(name)
            if route is not None and route not in routes:
                routes.append(route)
        return routes

    def upstream(self, backend: str) -> Upstream:
        upstream = self._upstreams.get(backend)
        if upstream is None:
            upstream = build_upstream(backend, self.settings.backends[backend])
            self._upstreams[backend] = upstream
        return upstream

    async def aclose(self) -> None:
        for upstream in self._upstreams.values():
            await upstream.aclose()
        self._upstreams.clear()


class UpstreamStage:
    """The innermost handler: send the call to its backend, falling back on failure."""

    name = "upstream"

    def __init__(self, router: Router):
        self.router = router

    async def __call__(self, call: Call) -> Result:
        routes: list[Route] = call.state.get("routes") or self.router.routes(call.model)
        body = dict(call.body)
        if call.stream:
            # Ask for usage so the ledger records real numbers; the engine hides the
            # extra chunk again from clients that did not ask for it.
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        for index, route in enumerate(routes):
            body["model"] = route.upstream_model
            upstream = self.router.upstream(route.backend)
            call.backend, call.upstream_model = route.backend, route.upstream_model
            try:
                if call.stream:
                    return Result(chunks=await upstream.open_stream(body))
                response = await upstream.complete(body)
                return Result(response=response, usage=Usage.from_openai(response.get("usage")))
            except TokenomyError as exc:
                if exc.status not in FALLBACK_STATUSES or index + 1 == len(routes):
                    raise
                call.record("upstream", technique="fallback",
                            detail={"from": route.alias, "to": routes[index + 1].alias,
                                    "status": exc.status, "error": exc.message})
        raise AssertionError("unreachable")


def without_usage(chunk: Chunk) -> Chunk | None:
    """A chunk as a client that did not ask for stream usage sees it (None: drop it)."""
    if chunk.get("usage") and not chunk.get("choices"):
        return None
    if "usage" in chunk:
        return {k: v for k, v in chunk.items() if k != "usage"}
    return chunk


async def hide_usage_chunk(chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    """Drop the usage-only chunk for clients that did not ask for stream usage."""
    try:
        async for chunk in chunks:
            visible = without_usage(chunk)
            if visible is not None:
                yield visible
    finally:
        # Close the inner stream now, not when it is garbage-collected: its end
        # settles the ledger and releases the backend connection.
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def client_wants_usage(body: dict[str, Any]) -> bool:
    return bool((body.get("stream_options") or {}).get("include_usage"))
