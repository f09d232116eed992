"""Model aliases to backends, and the terminal handler that calls them (with fallbacks)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tokenomy.call import Call, Result, Route
from tokenomy.config import BackendSettings, Settings
from tokenomy.errors import ConfigError, NotFound, TokenomyError
from tokenomy.upstreams.base import Upstream
from tokenomy.upstreams.local import LOCAL_MODEL_NAME
from tokenomy.upstreams.translate import Translator, serving

log = logging.getLogger("tokenomy.upstreams")

LOCAL_ALIASES = ("local", LOCAL_MODEL_NAME)
FALLBACK_STATUSES = frozenset({429, 500, 502, 503, 504, 529})  # 529: overloaded

UpstreamFactory = Callable[[str, BackendSettings], Upstream]


class Router:
    """Resolves model names to routes and owns one upstream per backend."""

    def __init__(self, settings: Settings, kinds: dict[str, UpstreamFactory],
                 translators: dict[str, Translator] | None = None):
        self.settings = settings
        self.kinds = kinds
        self.translators = translators or {}
        for name, backend in settings.backends.items():
            if backend.kind not in kinds:
                raise ConfigError(f"backend '{name}' has kind '{backend.kind}'; "
                                  f"known kinds: {', '.join(sorted(kinds))}")
        self._upstreams: dict[str, Upstream] = {}
        self._local = [n for n, b in settings.backends.items() if b.kind == "local"]
        for name, backend in settings.backends.items():
            if backend.protocols is not None:
                self.upstream(name)  # a protocol its kind cannot carry fails at start

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

    def kind(self, backend: str) -> str:
        return self.settings.backends[backend].kind

    def upstream(self, backend: str) -> Upstream:
        upstream = self._upstreams.get(backend)
        if upstream is None:
            settings = self.settings.backends[backend]
            upstream = self.kinds[settings.kind](backend, settings)
            if settings.protocols is not None:
                declared = frozenset(settings.protocols)
                if not declared <= upstream.spoken:
                    raise ConfigError(
                        f"backend '{backend}' lists protocols {sorted(declared)}; a "
                        f"'{settings.kind}' backend speaks {sorted(upstream.spoken)}")
                upstream.spoken = declared  # the others go through a translation
            self._upstreams[backend] = upstream
        return upstream

    def body_for(self, call: Call, route: Route, upstream: Upstream) -> dict[str, Any]:
        """What `upstream` receives for `call` on `route`: the protocol's forwarded body,
        plus the backend's `forward_fields` when it speaks the protocol natively (a
        translation reads only the protocol's own fields)."""
        body = call.protocol.forwarded(call.body, route.upstream_model)
        if upstream is self.upstream(route.backend):
            extra = self.settings.backends[route.backend].forward_fields
            body = with_fields(body, call.body, extra)
        return body

    async def aclose(self) -> None:
        for upstream in self._upstreams.values():
            await upstream.aclose()
        self._upstreams.clear()


def with_fields(body: dict[str, Any], original: dict[str, Any],
                names: list[str]) -> dict[str, Any]:
    """`body` plus the `names` the client sent that the protocol's allowlist left out
    (a backend's `forward_fields`); `body` itself when there are none."""
    extra = {name: original[name] for name in names if name in original and name not in body}
    return {**body, **extra} if extra else body


class UpstreamHandler:
    """The innermost handler: send the call to its backend, falling back on failure.

    What leaves is the protocol's forwarded body: only the wire protocol's own
    fields, addressed to the backend's model name. Destination and credentials
    come from the backend's settings; nothing in the request body chooses them.
    """

    name = "upstream"

    def __init__(self, router: Router):
        self.router = router

    async def __call__(self, call: Call) -> Result:
        routes = call.routes or self.router.routes(call.model)
        protocol = call.protocol
        allowance = call.allowance
        for index, route in enumerate(routes):
            upstream = serving(self.router.upstream(route.backend), protocol,
                               self.router.translators)
            call.backend, call.upstream_model = route.backend, route.upstream_model
            body = self.router.body_for(call, route, upstream)
            if allowance is not None:
                # Held in the budget before it is sent (raises BudgetExceeded if it cannot be).
                body = await allowance.admit(call, route, body)
            began = time.perf_counter()
            try:
                if call.stream:
                    chunks = await upstream.open_stream(body, protocol=protocol,
                                                        headers=call.client_headers)
                    result = Result(chunks=chunks, read_usage=protocol.chunk_usage)
                    assert result.chunks is not None
                    result.chunks.on_end(_upstream_time(call, began))
                    return result
                response = await upstream.complete(body, protocol=protocol,
                                                   headers=call.client_headers)
                call.upstream_ms += (time.perf_counter() - began) * 1000
                usage = protocol.response_usage(response)
                if allowance is not None:
                    allowance.returned(call, body, usage)
                return Result(response=response, usage=usage, read_usage=protocol.chunk_usage)
            except TokenomyError as exc:
                call.upstream_ms += (time.perf_counter() - began) * 1000
                call.upstream_status = exc.upstream_status
                if allowance is not None:
                    allowance.returned(call, body, None, failed=True)
                if exc.status not in FALLBACK_STATUSES or index + 1 == len(routes):
                    raise
                following = routes[index + 1]
                log.warning("fallback: %s (%s) failed with %s: %s; trying %s",
                            route.alias, route.backend, exc.status, exc.message, following.alias)
                call.fallback = f"{routes[0].alias} -> {following.alias}"
                call.record("upstream", technique="fallback",
                            detail={"from": route.alias, "to": following.alias,
                                    "status": exc.status, "error": exc.message})
        raise AssertionError("unreachable")




def _upstream_time(call: Call, began: float) -> Callable[[BaseException | None], Awaitable[None]]:
    """A stream's end hook: the backend's time runs from opening the stream to its end.

    The router's hook is added first, so it runs before the ledger settles."""

    async def ended(_: BaseException | None) -> None:
        call.upstream_ms += (time.perf_counter() - began) * 1000

    return ended
