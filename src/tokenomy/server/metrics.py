"""`GET /metrics`: Prometheus text format (see `observe.metrics` for the series).

The ledger's gauges (reservations in flight, spool depth, ledger up) are read
at scrape time. With `[telemetry] metrics_require_admin = true` a scrape needs
the admin key (`Authorization: Bearer <server.admin_key>`); `metrics = false`
turns the route off (404).
"""

from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tokenomy.engine import Engine
from tokenomy.errors import NotFound, TokenomyError, Unauthorized
from tokenomy.identify import api_key_from_headers
from tokenomy.observe.metrics import exposition, process_metrics
from tokenomy.observe.settings import TelemetrySettings

SAMPLE_TIMEOUT = 2.0


def _admin(request: Request, admin_key: str | None) -> None:
    token = api_key_from_headers({k.lower(): v for k, v in request.headers.items()})
    if admin_key is None:
        raise Unauthorized("/metrics requires the admin key, and no server.admin_key is set")
    if token is None or not hmac.compare_digest(token.encode(), admin_key.encode()):
        raise Unauthorized("/metrics requires the admin key: send 'Authorization: Bearer <key>'")


async def _sample_ledger(engine: Engine) -> None:
    budgets = engine.budgets
    if budgets is None:
        return
    ledger = budgets.ledger

    def read() -> tuple[int, int]:
        return ledger.open_reservations(), ledger.spool_depth()

    try:
        held, spooled = await asyncio.wait_for(asyncio.to_thread(read), SAMPLE_TIMEOUT)
    except Exception:  # unreachable or slow: say so in tokenomy_ledger_up
        process_metrics().sample_ledger(None, ledger.spool_depth())
        return
    process_metrics().sample_ledger(held, spooled)


def metrics_router(engine: Engine) -> APIRouter:
    router = APIRouter()
    telemetry = engine.settings.section("telemetry", TelemetrySettings)
    admin_key = engine.settings.server.admin_key

    @router.get("/metrics", summary="Prometheus metrics")
    async def metrics(request: Request) -> Response:
        from tokenomy.server.app import error_response

        try:
            if not telemetry.metrics:
                raise NotFound("metrics are turned off ([telemetry] metrics = false)",
                               code="not_found")
            if telemetry.metrics_require_admin:
                _admin(request, admin_key)
        except TokenomyError as exc:
            return error_response(exc)
        if engine.observer is not None:
            engine.observer.drain()  # the calls that ended just now count too
        await _sample_ledger(engine)
        payload, content_type = await asyncio.to_thread(exposition)
        return Response(payload, media_type=content_type)

    return router
