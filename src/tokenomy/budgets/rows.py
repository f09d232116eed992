"""The data that crosses into the ledger: request rows, scopes, reservations."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

from tokenomy.budgets.settings import BudgetSpec
from tokenomy.call import Event, Usage

MAX_EVENTS = 64
MAX_DETAIL_CHARS = 2000  # one stage's detail, as JSON; longer ones keep their keys only


class UsageTotals(BaseModel):
    """The additive figures of a request; a report group is their sum over its rows.

    Input comes in buckets that add up to `prompt_tokens` (all input sent):
    `uncached_tokens` + `cached_tokens` (cache reads) + `cache_write_tokens`
    (of which `cache_write_1h_tokens` had the 1-hour TTL). Output is
    `completion_tokens`, reasoning included and also shown apart.
    """

    prompt_tokens_original: int = 0
    prompt_tokens: int = 0
    uncached_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    saved_tokens: int = 0
    saved_usd: float = 0.0


class RequestRow(UsageTotals):
    """One request as the ledger stores it (columns of `tk_requests`)."""

    request_id: str
    ts: float
    team: str
    key_id: str | None = None
    user: str | None = None
    step: str | None = None
    model: str | None = None
    upstream_model: str | None = None
    backend: str | None = None
    mode: str | None = None
    latency_ms: float = 0.0
    status: int = 200
    outcome: str = "ok"  # ok|error|refused|cancelled|abandoned
    error: str | None = None
    stream: bool = False
    estimated: bool = False  # usage counted by tokenomy, not reported by the backend
    from_cache: bool = False  # answered by the response cache: no upstream call
    fallback: str | None = None  # "alias that failed -> alias that answered"
    tags: dict[str, str] = Field(default_factory=dict)
    # What each stage did (see `stage_events`): stored as JSON for the request view.
    events: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _uncached(self) -> RequestRow:
        # Callers that give only all-input and cache reads (older code, tests) get
        # the uncached bucket derived, so the buckets always add up.
        if "uncached_tokens" not in self.model_fields_set:
            rest = self.prompt_tokens - self.cached_tokens - self.cache_write_tokens
            self.uncached_tokens = max(0, rest)
        return self


def usage_columns(usage: Usage | None) -> dict[str, Any]:
    """The row's usage columns from a call's Usage (all zero when nothing was used)."""
    if usage is None:
        return {"uncached_tokens": 0}
    return {
        "prompt_tokens": usage.prompt_tokens,
        "uncached_tokens": usage.uncached_tokens,
        "cached_tokens": usage.cached_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens,
        "completion_tokens": usage.completion_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "total_tokens": usage.total_tokens,
        "estimated": usage.estimated,
    }


def stage_events(events: list[Event]) -> list[dict[str, Any]]:
    """A call's events as the ledger keeps them: plain JSON (a detail holding other
    types is written as text), bounded (a stage's detail is for people to read)."""
    import orjson

    out: list[dict[str, Any]] = []
    for event in events[:MAX_EVENTS]:
        try:
            raw = orjson.dumps(event.detail, default=str, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            raw = b"{}"
        detail = (orjson.loads(raw) if len(raw) <= MAX_DETAIL_CHARS
                  else {str(key): "…" for key in list(event.detail)[:32]})
        out.append({"stage": event.stage, "technique": event.technique,
                    "tokens_before": event.tokens_before, "tokens_after": event.tokens_after,
                    "ms": round(event.ms, 3), "detail": detail})
    return out


class Saving(BaseModel):
    technique: str
    tokens: int
    usd: float


class Scope(BaseModel):
    """A budget that applies to a call: the team's or the key's."""

    kind: str  # team|key
    id: str
    spec: BudgetSpec


class SoftHit(BaseModel):
    """A scope whose soft limit this call crossed."""

    kind: str
    id: str
    action: str
    used_fraction: float


class Reservation(BaseModel):
    id: str
    request_id: str
    tokens: int
    usd: float
    scopes: list[tuple[str, str, int]]  # (scope, scope_id, window_start)
    soft: list[SoftHit] = Field(default_factory=list)
    # The tightest budget left across the scopes once this hold is taken (None: no
    # such limit); the x-tokenomy-budget-remaining header is derived from them.
    remaining_tokens: int | None = None
    remaining_usd: float | None = None
