"""The data that crosses into the ledger: request rows, scopes, reservations."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tokenomy.budgets.settings import BudgetSpec


class UsageTotals(BaseModel):
    """The additive figures of a request; a report group is their sum over its rows."""

    prompt_tokens_original: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
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
    tags: dict[str, str] = Field(default_factory=dict)


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
