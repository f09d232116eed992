"""One aggregation behind every report: CLI table/CSV/JSON/HTML, the usage API
and the dashboard. Sums are computed in SQL over the same filter, so totals
equal the sum of the groups and the sum of the rows, for every grouping.

Grouping by technique puts each request in exactly one group, named by the
set of techniques that saved on it ("extractive+lossless", "cache", "none"),
so the groups add up to the totals like every other grouping; what each
single technique saved is `savings_by_technique` (which adds up too).
Input is reported in its buckets (uncached, cache read, cache write with its
1-hour part) with the cache hit rate: cache reads / all input.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, computed_field
from sqlalchemy import Connection, and_, case, false, func, literal, select, true

from tokenomy.budgets import schema
from tokenomy.budgets.budget_status import BudgetStatus, budget_statuses
from tokenomy.budgets.rows import UsageTotals
from tokenomy.budgets.service import Budgets
from tokenomy.budgets.windows import iso
from tokenomy.errors import BadRequest

GroupBy = Literal["day", "team", "key", "step", "model", "technique"]
GROUP_BYS: tuple[str, ...] = ("day", "team", "key", "step", "model", "technique")
# What a request's status filter may name: a response-cache hit is an ok request that
# the cache answered; "error" covers errors, cancellations and abandoned requests.
Status = Literal["ok", "cached", "refused", "error"]
STATUSES: tuple[str, ...] = ("ok", "cached", "refused", "error")
FAILED = ("error", "cancelled", "abandoned")

_R = schema.requests.c
_S = schema.savings.c

# At most 6 digits (999999w is far past any ledger; more would overflow `timedelta`).
_RELATIVE = re.compile(r"(\d{1,6})\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(value: str | None, *, end: bool = False, now: float | None = None) -> float | None:
    """'2026-11-01', an ISO datetime, 'today', or a span back from now ('7d', '24h').

    A bare date as an end bound means the end of that day.
    """
    if value is None or value == "":
        return None
    now = time.time() if now is None else now
    text = value.strip().lower()
    if text == "today":
        today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return (today + timedelta(days=1) if end else today).timestamp()
    match = _RELATIVE.fullmatch(text)
    if match:
        span = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        return now - span.total_seconds()
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"cannot read {value!r} as a time: use YYYY-MM-DD, an ISO datetime, "
            "'today', or a span such as 7d or 24h",
            param="since" if not end else "until",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end and len(value.strip()) == 10:  # a bare date: through the end of that day
        moment += timedelta(days=1)
    return moment.timestamp()


class ReportQuery(BaseModel):
    team: str | None = None
    key_id: str | None = None
    model: str | None = None
    step: str | None = None
    status: Status | None = None
    since: float | None = None
    until: float | None = None
    group_by: GroupBy = "day"


class Group(UsageTotals):
    key: str
    name: str | None = None  # the key's name when grouped by key (ids mean nothing to people)
    requests: int = 0
    refused: int = 0
    errors: int = 0
    cache_hits: int = 0  # requests the response cache answered (no upstream call)
    estimated: int = 0  # requests whose usage tokenomy counted (the backend reported none)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cache_hit_rate(self) -> float:
        """Cache reads as a share of all input sent."""
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


# The CSV columns: the group key and counts first, then the summed figures.
COLUMNS: tuple[str, ...] = (
    "key",
    "name",
    "requests",
    "refused",
    "errors",
    "cache_hits",
    "estimated",
    *UsageTotals.model_fields,
    "cache_hit_rate",
)


class TechniqueSaving(BaseModel):
    technique: str
    requests: int
    tokens_saved: int
    usd_saved: float


class DayPoint(BaseModel):
    day: str
    total_tokens: int
    cost_usd: float
    saved_tokens: int
    saved_usd: float


class Report(BaseModel):
    generated_at: str
    query: ReportQuery
    totals: Group
    groups: list[Group]
    savings_by_technique: list[TechniqueSaving]
    spend_over_time: list[DayPoint]
    top_steps: list[Group]
    budgets: list[BudgetStatus]


_SUMS = tuple(UsageTotals.model_fields)


def _metrics() -> list[Any]:
    cols = [
        func.count().label("requests"),
        func.coalesce(func.sum(case((_R.outcome == "refused", 1), else_=0)), 0).label("refused"),
        func.coalesce(func.sum(case((_R.outcome.in_(FAILED), 1), else_=0)), 0).label("errors"),
        func.coalesce(func.sum(case((_R.from_cache, 1), else_=0)), 0).label("cache_hits"),
        func.coalesce(func.sum(case((_R.estimated, 1), else_=0)), 0).label("estimated"),
    ]
    cols += [func.coalesce(func.sum(getattr(_R, name)), 0).label(name) for name in _SUMS]
    return cols


def where_clause(query: ReportQuery, team_col: Any = _R.team, ts_col: Any = _R.ts) -> Any:
    conditions = []
    if query.team is not None:
        conditions.append(team_col == query.team)
    if query.key_id is not None:
        conditions.append(_R.key_id == query.key_id)
    if query.model is not None:
        conditions.append(_R.model == query.model)
    if query.step is not None:
        conditions.append(_R.step == query.step)
    if query.status is not None:
        conditions.append(_STATUS[query.status])
    if query.since is not None:
        conditions.append(ts_col >= query.since)
    if query.until is not None:
        conditions.append(ts_col < query.until)
    return and_(True, *conditions)


def _group(key: Any, values: Any) -> Group:
    data = dict(values)
    data.pop("k", None)
    return Group(key="" if key is None else str(key), **data)


_STATUS = {
    "ok": and_(_R.outcome == "ok", _R.from_cache == false()),
    "cached": _R.from_cache == true(),
    "refused": _R.outcome == "refused",
    "error": _R.outcome.in_(FAILED),
}

_COLUMN = {"day": _R.day, "team": _R.team, "key": _R.key_id, "step": _R.step, "model": _R.model}


def aggregate(budgets: Budgets, query: ReportQuery, now: float | None = None) -> Report:
    now = time.time() if now is None else now
    where = where_clause(query)
    with budgets.ledger.reader.connect() as conn:
        totals = _group("total", conn.execute(select(*_metrics()).where(where)).mappings().one())
        groups = _groups(conn, query, where)
        savings = _savings(conn, query)
        over_time = _days(conn, where)
        steps = conn.execute(
            select(_R.step.label("k"), *_metrics())
            .where(where, _R.step.is_not(None))
            .group_by(_R.step)
            .order_by(func.sum(_R.cost_usd).desc(), func.sum(_R.total_tokens).desc())
            .limit(10)
        ).mappings()
        top_steps = [_group(row["k"], row) for row in steps]
        if query.group_by == "key":
            names = key_names(conn)
            groups = [g.model_copy(update={"name": names.get(g.key)}) for g in groups]
    # Outside the connection above: on SQLite every transaction takes the write
    # lock (BEGIN IMMEDIATE), and the budget rows open connections of their own.
    budget_rows = budget_statuses(budgets, query.team, query.key_id, now)
    return Report(
        generated_at=iso(now),
        query=query,
        totals=totals,
        groups=groups,
        savings_by_technique=savings,
        spend_over_time=over_time,
        top_steps=top_steps,
        budgets=budget_rows,
    )


def key_names(conn: Connection) -> dict[str, str]:
    """key id -> the name it was created with (revoked keys too: old rows name them)."""
    k = schema.api_keys.c
    rows = conn.execute(select(k.key_id, k.name).where(k.name.is_not(None)))
    return {key_id: name for key_id, name in rows}


def _groups(conn: Connection, query: ReportQuery, where: Any) -> list[Group]:
    if query.group_by == "technique":
        combo = _techniques(conn)
        key = func.coalesce(func.substr(combo.c.combo, 2), "none")
        source = schema.requests.outerjoin(combo, combo.c.request_id == _R.request_id)
        stmt = select(key.label("k"), *_metrics()).select_from(source)
        rows = conn.execute(stmt.where(where).group_by(key).order_by(key)).mappings()
        return [_group(row["k"], row) for row in rows]
    column = _COLUMN[query.group_by]
    rows = conn.execute(
        select(column.label("k"), *_metrics()).where(where).group_by(column).order_by(column)
    ).mappings()
    return [_group(row["k"], row) for row in rows]


def _techniques(conn: Connection) -> Any:
    """request_id -> "+a+b": the sorted set of techniques that saved on it.

    Built from one CASE per technique name (there are few) rather than a
    string aggregate, whose order neither SQLite nor PostgreSQL promises alike.
    """
    names = sorted(conn.execute(select(_S.technique).distinct()).scalars())
    combo: Any = literal("")
    for name in names:
        combo = combo + func.max(case((_S.technique == name, "+" + name), else_=""))
    return select(_S.request_id, combo.label("combo")).group_by(_S.request_id).subquery("combo")


def _savings(conn: Connection, query: ReportQuery) -> list[TechniqueSaving]:
    join = schema.savings.join(schema.requests, _S.request_id == _R.request_id)
    rows = conn.execute(
        select(
            _S.technique,
            func.count().label("requests"),
            func.sum(_S.tokens_saved).label("tokens_saved"),
            func.sum(_S.usd_saved).label("usd_saved"),
        )
        .select_from(join)
        .where(where_clause(query))
        .group_by(_S.technique)
        .order_by(func.sum(_S.tokens_saved).desc())
    ).mappings()
    return [TechniqueSaving(**row) for row in rows]


def _days(conn: Connection, where: Any) -> list[DayPoint]:
    rows = conn.execute(
        select(
            _R.day,
            func.coalesce(func.sum(_R.total_tokens), 0).label("total_tokens"),
            func.coalesce(func.sum(_R.cost_usd), 0.0).label("cost_usd"),
            func.coalesce(func.sum(_R.saved_tokens), 0).label("saved_tokens"),
            func.coalesce(func.sum(_R.saved_usd), 0.0).label("saved_usd"),
        )
        .where(where)
        .group_by(_R.day)
        .order_by(_R.day)
    ).mappings()
    return [DayPoint(**row) for row in rows]
