"""The `compress` stage: shrink the changing tail of a request before it goes upstream.

When it runs: the request's `tokenomy.compress` field asks for it, or the
`[compression]` settings (or the team's) turn it on, or the budget stage set
`call.degrade` (then `degrade_factor` times harder). Prompts under
`min_tokens` pass untouched. Scoring runs in a worker thread so the event loop
never blocks on the embedder.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from tokenomy.call import Call, CompressOptions, Result
from tokenomy.compressors.messages import MessagesResult, compress_messages
from tokenomy.compressors.settings import CompressionSettings
from tokenomy.errors import BadRequest, ConfigError
from tokenomy.pipeline import Next
from tokenomy.tokenizers import count_messages

logger = logging.getLogger(__name__)


class CompressStage:
    name = "compress"

    def __init__(self, settings: CompressionSettings | dict[str, Any] | None = None,
                 teams: dict[str, dict[str, Any]] | None = None):
        if not isinstance(settings, CompressionSettings):
            settings = CompressionSettings.model_validate(settings or {})
        self.settings = settings
        # Each team's `[teams.NAME.compression]` merged once, so a typo fails at start.
        self.teams = {name: settings.for_team(override) for name, override in (teams or {}).items()
                      if override}

    @classmethod
    def from_settings(cls, settings: Any) -> CompressStage:
        """From the whole Settings: `[compression]` and each `[teams.NAME.compression]`."""
        teams = {name: dict(section.get("compression") or {})
                 for name, section in (settings.teams or {}).items() if isinstance(section, dict)}
        try:
            return cls(settings.compression, teams)
        except ValueError as exc:
            raise ConfigError(f"invalid compression settings: {exc}") from exc

    async def __call__(self, call: Call, next: Next) -> Result:
        plan = self.plan(call)
        messages = call.messages
        if plan is None or not messages:
            return await next(call)
        options, settings = plan
        # Budgets are in the tokens of the model that will actually read the prompt.
        model = call.upstream_model or call.model or "gpt-4o"
        tools = call.body.get("tools")
        started = time.perf_counter()
        before = call.prompt_tokens_original
        if before is None:
            before = count_messages(messages, model, tools)
            call.prompt_tokens_original = before
        if before < settings.min_tokens:
            call.record(self.name, technique="skip", tokens_before=before, tokens_after=before,
                        detail={"reason": f"below min_tokens={settings.min_tokens}"})
            call.prompt_tokens_sent = before
            return await next(call)
        ratio = options.target_ratio or settings.target_ratio
        target_tokens = options.target_tokens
        if call.degrade:
            ratio = min(settings.max_ratio, ratio * settings.degrade_factor)
            if target_tokens is not None:
                target_tokens = max(1, int(target_tokens / settings.degrade_factor))
        try:
            result = await asyncio.to_thread(self._compress, messages, model, options,
                                             settings, ratio, target_tokens, tools)
        except ValueError as exc:  # an option this server cannot honour: the caller's mistake
            raise BadRequest(f"tokenomy.compress: {exc}", param="tokenomy.compress") from exc
        except Exception as exc:
            # Compression is an optimisation: if scoring breaks, send the request as it was.
            logger.exception("compression failed; sending the request uncompressed")
            call.record(self.name, technique="error", tokens_before=before, tokens_after=before,
                        detail={"error": f"{type(exc).__name__}: {exc}"})
            call.prompt_tokens_sent = before
            return await next(call)
        call.body["messages"] = result.messages
        call.prompt_tokens_sent = result.tokens_after
        # One event per technique; their savings add up to the whole saving.
        detail = {"ratio": round(ratio, 3), "degrade": call.degrade, "segments": result.kinds}
        for stat in result.stats:
            call.record(
                self.name,
                technique=stat.technique,
                tokens_before=stat.tokens_before,
                tokens_after=stat.tokens_after,
                ms=round(stat.ms, 3),
                detail={**detail, "segments_changed": stat.segments},
            )
        if not result.stats:
            call.record(self.name, technique="none", tokens_before=result.tokens_before,
                         tokens_after=result.tokens_after,
                         ms=round((time.perf_counter() - started) * 1000, 3), detail=detail)
        return await next(call)

    @staticmethod
    def _compress(messages: list[dict[str, Any]], model: str,
                  options: CompressOptions, settings: CompressionSettings, ratio: float,
                  target_tokens: int | None, tools: Any) -> MessagesResult:
        return compress_messages(
            messages,
            model=model,
            target_ratio=ratio,
            target_tokens=target_tokens,
            method=options.method if options.method != "auto" else settings.method,
            keep_prefix=options.keep_prefix,
            reorder=options.reorder or settings.reorder,
            documents=options.documents,
            keep_last_turns=settings.keep_last_turns,
            table_format=settings.table_format,
            tools=tools,
        )

    def plan(self, call: Call) -> tuple[CompressOptions, CompressionSettings] | None:
        """(options, settings) when this call should be compressed, else None."""
        settings = self.teams.get(call.identity.team, self.settings)
        asked = call.options.compress
        if asked is not None:
            return (asked, settings) if asked.enabled else None
        if settings.enabled or (call.degrade and settings.compress_on_degrade):
            return CompressOptions(), settings
        return None
