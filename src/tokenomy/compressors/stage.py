"""The `compress` stage: shrink the changing tail of a request before it goes upstream.

When it runs: the request's `tokenomy.compress` option asks for it, or the
`[compression]` settings (or the team's) turn it on, or the budget stage set
`call.degrade` (then `degrade_factor` times harder). Prompts under
`min_tokens` or over `max_input_tokens` pass untouched, and work that runs
past `max_seconds` (or whose client went away) stops at its next check: the
request then goes through as it came. It works on the call's transcript, so every wire
protocol gets the same rules, and its edits go through `call.edit` (the call
recounts). Scoring runs in a worker thread so the event loop never blocks on
the embedder.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tokenomy.call import Call, CompressOptions, Event, Result
from tokenomy.compressors.agent.loop import TECHNIQUES, AgentCompressor
from tokenomy.compressors.agent.zone import agent_shaped
from tokenomy.compressors.bridge import MessagesView, as_messages
from tokenomy.compressors.memo import Memo
from tokenomy.compressors.messages import MessagesResult, compress_messages
from tokenomy.compressors.settings import AgentSettings, CompressionSettings
from tokenomy.config import Settings
from tokenomy.errors import BadRequest
from tokenomy.pipeline import Next, Services
from tokenomy.scoring.deadline import WorkCancelled, deadline
from tokenomy.tokenizers import count_text
from tokenomy.transcript import Part

logger = logging.getLogger(__name__)
T = TypeVar("T")
INLINE_EDIT_CHARS = 32_768  # larger edits are recounted off the event loop


class CompressStage:
    name = "compress"

    def __init__(self, settings: Settings | CompressionSettings | dict[str, Any] | None = None,
                 *, memo: Memo | None = None):
        self.memo = memo
        self._agents: dict[str, AgentCompressor] = {}
        if isinstance(settings, Settings):
            settings.check_section("compression", CompressionSettings)
            self._settings: Settings | None = settings
            self.settings = settings.section("compression", CompressionSettings)
        else:
            self._settings = None
            self.settings = (settings if isinstance(settings, CompressionSettings)
                             else CompressionSettings.model_validate(settings or {}))

    @classmethod
    def from_settings(cls, settings: Settings) -> CompressStage:
        return cls(settings)

    def settings_for(self, team: str) -> CompressionSettings:
        if self._settings is None:
            return self.settings
        return self._settings.for_team(team).section("compression", CompressionSettings)

    async def __call__(self, call: Call, next: Next) -> Result:
        agent = self.settings_for(call.identity.team).agent
        asked = call.options.compress
        if agent.enabled and asked is None and agent_shaped(call.transcript.parts):
            return await self._agent_loop(call, next, agent)
        plan = self.plan(call)
        if plan is None or not call.transcript.parts:
            return await next(call)
        options, settings = plan
        started = time.perf_counter()
        before = await call.original_tokens()
        if before < settings.min_tokens:
            call.record(self.name, technique="skip", tokens_before=call.prompt_tokens_sent,
                        tokens_after=call.prompt_tokens_sent,
                        detail={"reason": f"below min_tokens={settings.min_tokens}"})
            return await next(call)
        if before > settings.max_input_tokens:
            call.record(self.name, technique="skip", tokens_before=call.prompt_tokens_sent,
                        tokens_after=call.prompt_tokens_sent,
                        detail={"reason": f"above max_input_tokens={settings.max_input_tokens}"})
            return await next(call)
        ratio = options.target_ratio or settings.target_ratio
        target_tokens = options.target_tokens
        if call.degrade:
            ratio = min(settings.max_ratio, ratio * settings.degrade_factor)
            if target_tokens is not None:
                target_tokens = max(1, int(target_tokens / settings.degrade_factor))
        view = as_messages(call.transcript.parts)
        # Budgets are in the tokens of the model that will actually read the prompt.
        model = call.token_model
        try:
            result = await off_loop(settings.max_seconds, self._compress, view, model, options,
                                    settings, ratio, target_tokens)
        except WorkCancelled as exc:  # the time cap: the request goes as it came
            call.record(self.name, technique="skip", tokens_before=call.prompt_tokens_sent,
                        tokens_after=call.prompt_tokens_sent,
                        detail={"reason": f"{exc} (max_seconds={settings.max_seconds})"})
            return await next(call)
        except ValueError as exc:  # an option this server cannot honour: the caller's mistake
            raise BadRequest(f"tokenomy.compress: {exc}", param="tokenomy.compress") from exc
        except Exception as exc:
            # Compression is an optimisation: if scoring breaks, send the request as it was.
            logger.exception("compression failed; sending the request uncompressed")
            call.record(self.name, technique="error", tokens_before=call.prompt_tokens_sent,
                        tokens_after=call.prompt_tokens_sent,
                        detail={"error": f"{type(exc).__name__}: {exc}"})
            return await next(call)
        # One event per technique; their savings add up to the whole saving.
        detail = {"ratio": round(ratio, 3), "degrade": call.degrade, "segments": result.kinds}
        events = [Event(stage=self.name, technique=stat.technique,
                        tokens_before=stat.tokens_before, tokens_after=stat.tokens_after,
                        ms=round(stat.ms, 3), detail={**detail, "segments_changed": stat.segments})
                  for stat in result.stats]
        if not events:
            events = [Event(stage=self.name, technique="none", tokens_before=before,
                            tokens_after=before, detail=detail,
                            ms=round((time.perf_counter() - started) * 1000, 3))]
        await edit_off_loop(call, self.name, view.changes(result.messages), events)
        return await next(call)

    async def _agent_loop(self, call: Call, next: Next, settings: AgentSettings) -> Result:
        """An agent request: compress its live zone once, replay earlier forms (see agent/)."""
        compressor = self._agent_compressor(settings)
        parts = call.transcript.parts
        try:
            done = compressor.run_local(parts, team=call.identity.team, model=call.token_model)
            if done is None:  # compressing, or the memo's database: in a worker thread
                done = await off_loop(
                    self.settings_for(call.identity.team).max_seconds, compressor.run, parts,
                    team=call.identity.team, model=call.token_model)
            changes, stats = done
        except Exception as exc:  # an optimisation (or its time cap): send it as it came
            logger.exception("agent compression failed; sending the request unchanged")
            call.record(self.name, technique="error", detail={"error": f"{type(exc).__name__}"})
            return await next(call)
        detail = {"live_parts": stats.live_parts, "replayed": stats.replayed,
                  "kinds": stats.kinds, "new": stats.new}
        if not changes:
            call.record(self.name, technique="none", ms=round(stats.ms, 3), detail=detail)
            return await next(call)
        await edit_off_loop(call, self.name, changes,
                            _agent_events(self.name, changes, call.token_model, stats.ms, detail))
        return await next(call)

    def _agent_compressor(self, settings: AgentSettings) -> AgentCompressor:
        key = settings.model_dump_json()
        found = self._agents.get(key)
        if found is None:
            if self.memo is None:
                self.memo = Memo(ttl=settings.memo_ttl, max_entries=settings.memo_max_entries)
            found = AgentCompressor.from_settings(self.memo, settings)
            self._agents[key] = found
        return found

    @staticmethod
    def _compress(view: MessagesView, model: str, options: CompressOptions,
                  settings: CompressionSettings, ratio: float,
                  target_tokens: int | None) -> MessagesResult:
        documents = None
        if options.documents is not None:
            documents = [view.turns[i] for i in options.documents if i in view.turns]
        return compress_messages(
            view.messages,
            model=model,
            target_ratio=ratio,
            target_tokens=target_tokens,
            method=options.method if options.method != "auto" else settings.method,
            keep_prefix=options.keep_prefix,
            reorder=options.reorder or settings.reorder,
            documents=documents,
            keep_last_turns=settings.keep_last_turns,
            table_format=settings.table_format,
        )

    def plan(self, call: Call) -> tuple[CompressOptions, CompressionSettings] | None:
        """(options, settings) when this call should be compressed, else None."""
        settings = self.settings_for(call.identity.team)
        asked = call.options.compress
        if asked is not None:
            return (asked, settings) if asked.enabled else None
        if settings.enabled or (call.degrade and settings.compress_on_degrade):
            return CompressOptions(), settings
        return None


async def off_loop(seconds: float, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn` in a worker thread under a deadline: it stops at its next check once `seconds`
    pass (WorkCancelled), or as soon as this task is cancelled (the client went away)."""
    with deadline(seconds) as clock:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except asyncio.CancelledError:
            clock.cancel()  # the thread stops at its next check instead of running on
            raise


async def edit_off_loop(call: Call, stage: str, changes: list[tuple[Part, str]],
                        events: list[Event]) -> None:
    """`call.edit` (which recounts the edited parts) in a thread when they are large."""
    size = sum(len(text) + len(part.text) for part, text in changes)
    if size > INLINE_EDIT_CHARS:
        await asyncio.to_thread(call.edit, stage, changes, events=events)
    else:
        call.edit(stage, changes, events=events)


def _agent_events(stage: str, changes: list[tuple[Part, str]], model: str, ms: float,
                  detail: dict[str, Any]) -> list[Event]:
    """One event per technique (tool outputs, tool calls) with the tokens this request saved."""
    totals: dict[str, list[int]] = {}
    for part, text in changes:
        technique = TECHNIQUES.get(part.kind, "tool_outputs")
        row = totals.setdefault(technique, [0, 0])
        row[0] += count_text(part.text, model)
        row[1] += count_text(text, model)
    return [Event(stage=stage, technique=technique, tokens_before=before, tokens_after=after,
                  ms=round(ms, 3), detail=detail) for technique, (before, after) in totals.items()]


def compress_stage(services: Services) -> CompressStage:
    """The stage with its memo in the ledger's database (shared by replicas), when there is one."""
    settings = services.settings.section("compression", CompressionSettings).agent
    engine = services.budgets.ledger.engine if services.budgets is not None else None
    memo = Memo(engine, ttl=settings.memo_ttl, max_entries=settings.memo_max_entries)
    return CompressStage(services.settings, memo=memo)
