"""`CallRecord`: what one finished request says about itself, derived from its `Call`.

The request log, /metrics and the traces all read this one record, built once
per request where the engine sees the call end (see `observe.observer`), so
every way in (each HTTP endpoint, the in-process SDK) reports the same
fields. Nothing here reads a header or a body: only the call's typed fields,
so no credential can reach a log line through it.
"""

from __future__ import annotations

import asyncio
import operator
import time
from dataclasses import dataclass, field
from typing import Any

from tokenomy.call import Call, Result
from tokenomy.errors import TokenomyError

ERROR_CHARS = 300  # an upstream's error page does not belong in a log line whole


@dataclass(slots=True)
class CallRecord:
    ts: float  # when the request arrived (epoch seconds)
    request_id: str
    route: str
    protocol: str
    team: str
    key: str | None  # the key's name (its id when it has none)
    user: str | None
    step: str | None
    model: str  # the alias the client asked for
    backend: str | None
    upstream_model: str | None
    fallback: str | None
    stream: bool
    status: int
    outcome: str  # ok | error | refused | cancelled
    error: str | None
    error_type: str | None
    upstream_status: int | None
    latency_ms: float  # arrival to the end (a stream: its last chunk)
    upstream_ms: float  # waiting on backends
    added_ms: float  # tokenomy's own share: latency - upstream
    tokens_original: int | None  # prompt as the client sent it (None: never counted)
    tokens_sent: int | None  # prompt as it left for the backend
    tokens_input: int  # all input the backend billed (uncached + cache read + cache write)
    tokens_cache_read: int
    tokens_cache_write: int
    tokens_output: int  # reasoning included
    tokens_reasoning: int
    usage_estimated: bool
    cost_usd: float | None
    saved_tokens: int
    saved_usd: float | None
    savings: dict[str, int] = field(default_factory=dict)  # tokens by technique
    savings_usd: dict[str, float] = field(default_factory=dict)
    mode: str | None = None
    consensus: str | None = None
    cache: str | None = None  # what the response cache did: hit, miss, refresh, bypass
    budget_remaining: str | None = None
    settle: str | None = None  # landed | spooled | rejected | failed (None: no ledger)
    stage_ms: dict[str, float] = field(default_factory=dict)  # technique -> ms (rewrites)
    events: list[Any] = field(default_factory=list)  # the call's Events (debug lines show them)

    def stages(self) -> list[dict[str, Any]]:
        """What each stage did, for a debug line: stage, technique, tokens, time."""
        return [{k: v for k, v in (("stage", e.stage), ("technique", e.technique),
                                   ("tokens_before", e.tokens_before),
                                   ("tokens_after", e.tokens_after), ("ms", round(e.ms, 3)))
                 if v is not None} for e in self.events]

    def free_text(self) -> str:
        """The fields a client, a backend or an operator wrote (the rest are tokenomy's
        own numbers and names): what the log's redactor has to look at."""
        return "\n".join(value for value in (self.key, self.user, self.step, self.model,
                                              self.upstream_model, self.error, self.fallback,
                                              self.budget_remaining) if value)

    @property
    def level_warning(self) -> bool:
        """Errors, refusals and fallbacks are logged at warning; the rest at info."""
        return self.status >= 400 or self.fallback is not None

    def fields(self) -> dict[str, Any]:
        """The record as flat JSON-ready fields (None and empty values left out)."""
        # `value or value == 0` keeps zeros and False, drops None, "" and {}.
        return {name: value for name, value in zip(_FIELDS, _values(self), strict=True)
                if value or value == 0}


# `ts` is the arrival; a log line has its own time, and latency_ms says how long it took.
_FIELDS = [name for name in CallRecord.__dataclass_fields__
           if name not in ("ts", "stage_ms", "events")]

_values = operator.attrgetter(*_FIELDS)  # every field at once, in C

# Stages whose events are prompt rewrites: their time is "compression time".
REWRITE_STAGES = frozenset({"compress", "codify"})


def status_of(error: BaseException | None, result: Result | None) -> tuple[int, str]:
    """(HTTP status, outcome) of a call that ended with `error` (None: it answered)."""
    if error is None:
        return (result.status if result is not None else 200), "ok"
    if isinstance(error, TokenomyError):
        return error.status, "refused" if error.code == "budget_exceeded" else "error"
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return 499, "cancelled"  # the client went away (or stopped reading)
    return 500, "error"


def _error_text(error: BaseException | None) -> str | None:
    if error is None or isinstance(error, asyncio.CancelledError | GeneratorExit):
        return None
    text = error.message if isinstance(error, TokenomyError) else type(error).__name__
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def build_record(call: Call, result: Result | None, error: BaseException | None,
                 *, now: float | None = None) -> CallRecord:
    """The record of `call`, which just ended (answered, failed, or its stream closed)."""
    ended = time.perf_counter() if now is None else now
    latency = round((ended - call.started) * 1000, 3)
    upstream = round(call.upstream_ms, 3)
    status, outcome = status_of(error, result)
    usage = call.usage or (result.usage if result is not None else None)
    savings: dict[str, int] = {}
    stage_ms: dict[str, float] = {}
    for event in call.events:
        technique = event.technique
        if technique is None:
            continue
        if event.saved > 0:
            savings[technique] = savings.get(technique, 0) + event.saved
        if event.stage in REWRITE_STAGES and event.ms > 0:
            stage_ms[technique] = stage_ms.get(technique, 0.0) + event.ms
    identity = call.identity
    original, sent = call.token_counts()
    return CallRecord(
        ts=call.created_at,
        request_id=call.request_id,
        route=call.route or call.protocol.name,
        protocol=call.protocol.name,
        team=identity.team,
        key=identity.key_name or identity.key_id,
        user=identity.user,
        step=identity.step,
        model=call.model,
        backend=call.backend,
        upstream_model=call.upstream_model,
        fallback=call.fallback,
        stream=call.stream if call.body else False,
        status=status,
        outcome=outcome,
        error=_error_text(error),
        error_type=(getattr(error, "code", None) or type(error).__name__)
        if outcome in ("error", "refused") and error is not None else None,
        upstream_status=call.upstream_status,
        latency_ms=latency,
        upstream_ms=upstream,
        added_ms=round(max(0.0, latency - upstream), 3),
        tokens_original=original,
        tokens_sent=sent,
        tokens_input=usage.prompt_tokens if usage else 0,
        tokens_cache_read=usage.cached_tokens if usage else 0,
        tokens_cache_write=usage.cache_write_tokens if usage else 0,
        tokens_output=usage.completion_tokens if usage else 0,
        tokens_reasoning=usage.reasoning_tokens if usage else 0,
        usage_estimated=bool(usage and usage.estimated),
        cost_usd=None if call.cost_usd is None else round(call.cost_usd, 10),
        saved_tokens=sum(savings.values()),
        saved_usd=round(sum(call.savings_usd.values()), 10) if call.savings_usd else None,
        savings=savings,
        savings_usd={k: round(v, 10) for k, v in call.savings_usd.items()},
        mode=call.mode,
        consensus=call.consensus,
        cache=call.cache,
        budget_remaining=call.budget_remaining,
        settle=call.settle,
        stage_ms=stage_ms,
        events=call.events,
    )
