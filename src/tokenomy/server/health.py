"""`GET /healthz` (alive) and `GET /readyz` (ready to serve: models loaded, ledger reachable).

/healthz answers as soon as the process serves HTTP and checks nothing else,
so an orchestrator never restarts a proxy that is busy loading models. /readyz
says 503 until what the config needs is there: the local models it serves or
compresses with (loaded in the background at start, so the first request does
not wait 6-19 s), and the ledger database (a `SELECT 1`). A model that cannot
load (files missing) keeps /readyz at 503 with the reason.

Which models load at start: SmolLM2 when a local backend is what the config
serves (no other backend, an alias or a fallback pointing at it, or the
default backend); MiniLM (and SmolLM2 for `method = "tokens"`) when
`[compression]` is on for anyone. A remote-only config that merely lists a
local backend loads nothing: a request for the `local` model loads it then.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from tokenomy import __version__
from tokenomy.config import Settings
from tokenomy.engine import Engine

log = logging.getLogger("tokenomy.server")

SMOLLM = "SmolLM2-135M-Instruct"
MINILM = "all-MiniLM-L6-v2"
LEDGER_TIMEOUT = 2.0
JSON = "application/json"


def serves_local(settings: Settings) -> bool:
    """Whether the config sends any model to a local backend (not just lists one)."""
    kinds = {name: backend.kind for name, backend in settings.backends.items()}
    if kinds and all(kind == "local" for kind in kinds.values()):
        return True
    if settings.default_backend and kinds.get(settings.default_backend) == "local":
        return True
    return any(kinds.get(alias.backend) == "local" for alias in settings.models.values())


def _compression(settings: Settings) -> list[Any]:
    from tokenomy.compressors.settings import CompressionSettings

    sections = [settings.section("compression", CompressionSettings)]
    sections += [settings.for_team(team).section("compression", CompressionSettings)
                 for team in settings.teams]
    return [section for section in sections if section.enabled]


def models_needed(settings: Settings) -> list[str]:
    """The local models this config uses on every request, so they load before ready."""
    needed = []
    compression = _compression(settings)
    if serves_local(settings) or any(c.method == "tokens" for c in compression):
        needed.append(SMOLLM)
    if compression:
        needed.append(MINILM)
    return needed


def _loader(name: str) -> Callable[[], Any]:
    from tokenomy.scoring import load_embedder, load_small_lm

    return load_small_lm if name == SMOLLM else load_embedder


class Readiness:
    """What /readyz reports: each needed model's state, and the ledger's."""

    def __init__(self, engine: Engine, models: list[str]):
        self.engine = engine
        self.models: dict[str, str] = dict.fromkeys(models, "pending")
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.models:
            self.task = asyncio.get_running_loop().create_task(self._load())

    async def _load(self) -> None:
        for name in self.models:
            self.models[name] = "loading"
            began = time.perf_counter()
            try:
                await asyncio.to_thread(_loader(name))
            except Exception as exc:  # missing files, a broken install: say it, stay unready
                reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                self.models[name] = f"failed: {reason}"
                log.error("model %s failed to load: %s", name, reason)
                continue
            self.models[name] = "ready"
            log.info("model %s loaded in %.1f s", name, time.perf_counter() - began)

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def ledger(self) -> str:
        budgets = self.engine.budgets
        if budgets is None:
            return "disabled"
        from sqlalchemy import text

        def ping() -> None:
            with budgets.ledger.reader.connect() as conn:
                conn.execute(text("SELECT 1"))

        try:
            await asyncio.wait_for(asyncio.to_thread(ping), LEDGER_TIMEOUT)
        except TimeoutError:
            return f"unreachable: no answer within {LEDGER_TIMEOUT:.0f} s"
        except Exception as exc:
            return f"unreachable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        return "ready"

    async def report(self) -> tuple[bool, dict[str, Any]]:
        checks: dict[str, Any] = {"ledger": await self.ledger(), "models": dict(self.models)}
        ready = checks["ledger"] in ("ready", "disabled") and all(
            state == "ready" for state in self.models.values())
        return ready, checks


def health_router(engine: Engine, readiness: Readiness) -> APIRouter:
    router = APIRouter()
    settings = engine.settings

    @router.get("/healthz", summary="Liveness: the process answers HTTP")
    async def healthz() -> Response:
        body = {"status": "ok", "version": __version__,
                "backends": {n: b.kind for n, b in settings.backends.items()}}
        return Response(orjson.dumps(body), media_type=JSON)

    @router.get("/readyz", summary="Readiness: models loaded and the ledger reachable")
    async def readyz() -> Response:
        ready, checks = await readiness.report()
        body = {"status": "ready" if ready else "not ready", **checks}
        return Response(orjson.dumps(body), status_code=200 if ready else 503, media_type=JSON)

    return router
