"""Where each budget stands: spent and held in the current window, the burn-down
(cumulative spend per hour or day), and a forecast to the reset at the pace so far."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import func, select

from tokenomy.budgets import buckets, schema
from tokenomy.budgets.buckets import Bucket
from tokenomy.budgets.rows import Scope
from tokenomy.budgets.service import Budgets
from tokenomy.budgets.windows import iso

_R = schema.requests.c


class BurnPoint(BaseModel):
    """Cumulative spend of a budget's window at the end of one bucket (hour or day)."""

    at: float  # epoch seconds: the end of the bucket (or now, for the current one)
    total_tokens: int
    cost_usd: float


class BudgetStatus(BaseModel):
    scope: str
    id: str
    name: str | None = None  # a key's name
    window: str
    window_start: str
    resets_at: str
    limit_tokens: int | None
    limit_usd: float | None
    spent_tokens: int
    reserved_tokens: int
    spent_usd: float
    reserved_usd: float
    used_fraction: float
    soft_limit: float
    # Cumulative spend per hour (windows up to two days) or day of the window.
    burn: list[BurnPoint] = Field(default_factory=list)
    # Where the window ends at the pace spent so far (spent per second since it began).
    forecast_tokens: int | None = None
    forecast_usd: float | None = None
    forecast_fraction: float | None = None


def budget_statuses(budgets: Budgets, team: str | None, key_id: str | None,
                    now: float) -> list[BudgetStatus]:
    """Every budget that applies to the selection (a team's, its keys'), as it stands now."""
    team_filter = team
    scopes: list[Scope] = []
    names: dict[str, str] = {}
    for team, settings in budgets.config.teams.items():
        if settings.active and team_filter in (None, team):
            scopes.append(Scope(kind="team", id=team, spec=settings))
    for info in budgets.keys.list(team_filter, include_revoked=False):
        if info.budget is not None and key_id in (None, info.key_id):
            scopes.append(Scope(kind="key", id=info.key_id, spec=info.budget))
            if info.name:
                names[info.key_id] = info.name
    statuses = []
    for scope in scopes:
        usage = budgets.ledger.window_usage(scope, now)
        spec = scope.spec
        start, end = usage["window_start"], usage["window_end"]
        used_t = usage["spent_tokens"] + usage["reserved_tokens"]
        used_u = usage["spent_usd"] + usage["reserved_usd"]
        # The pace so far, carried to the reset (not before a minute has passed).
        pace = (end - now) / max(now - start, 60.0)
        forecast_t, forecast_u = int(used_t + used_t * pace), used_u + used_u * pace
        fractions, forecasts = [], []
        if spec.tokens:
            fractions.append(used_t / spec.tokens)
            forecasts.append(forecast_t / spec.tokens)
        if spec.usd:
            fractions.append(used_u / spec.usd)
            forecasts.append(forecast_u / spec.usd)
        statuses.append(
            BudgetStatus(
                scope=scope.kind,
                id=scope.id,
                name=names.get(scope.id),
                window=spec.window,
                window_start=iso(start),
                resets_at=iso(end),
                limit_tokens=spec.tokens,
                limit_usd=spec.usd,
                spent_tokens=int(usage["spent_tokens"]),
                reserved_tokens=int(usage["reserved_tokens"]),
                spent_usd=float(usage["spent_usd"]),
                reserved_usd=float(usage["reserved_usd"]),
                used_fraction=max(fractions, default=0.0),
                soft_limit=spec.soft_limit,
                burn=_burn(budgets, scope, start, end, now),
                forecast_tokens=forecast_t if spec.tokens else None,
                forecast_usd=forecast_u if spec.usd else None,
                forecast_fraction=max(forecasts, default=0.0),
            )
        )
    return statuses


def _burn(budgets: Budgets, scope: Scope, start: float, end: float,
          now: float) -> list[BurnPoint]:
    """Cumulative spend of the scope's requests, bucket by bucket, up to now."""
    bucket: Bucket = "hour" if end - start <= 2 * 86400 else "day"
    who = _R.team == scope.id if scope.kind == "team" else _R.key_id == scope.id
    engine = budgets.ledger.reader
    index = buckets.expression(_R.ts, bucket, engine.dialect.name)
    with engine.connect() as conn:  # one short read per scope
        rows = conn.execute(
            select(index.label("b"), func.coalesce(func.sum(_R.total_tokens), 0),
                   func.coalesce(func.sum(_R.cost_usd), 0.0))
            .where(who, _R.ts >= start, _R.ts < end)
            .group_by(index).order_by(index)
        ).all()
    size = buckets.SIZE[bucket]
    points, tokens, usd = [], 0, 0.0
    for b, t, u in rows:
        tokens += int(t)
        usd += float(u)
        points.append(BurnPoint(at=min((int(b) + 1) * size, now, end), total_tokens=tokens,
                                cost_usd=usd))
    return points
