"""What the dashboard shows beyond the report: traffic over time in hour or day
buckets, latency percentiles, the requests themselves, one request's stages,
and the choices its filters offer.

Everything reads the same selection as the report (`where_clause`: team,
key, model, step, status, period), so a chart, a card and the table below
it always describe the same requests.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, case, false, func, select

from tokenomy.budgets import buckets, schema
from tokenomy.budgets.buckets import Bucket
from tokenomy.budgets.report import FAILED, ReportQuery, key_names, where_clause
from tokenomy.budgets.service import Budgets
from tokenomy.budgets.windows import iso

_R = schema.requests.c
_S = schema.savings.c
PAGE = 50


class Point(BaseModel):
    """One time bucket of the selection."""

    start: float
    label: str
    requests: int = 0
    ok: int = 0
    cached: int = 0
    refused: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    saved_tokens: int = 0
    saved_usd: float = 0.0


class Latency(BaseModel):
    """Of answered requests (cache hits included): the median and the 95th percentile."""

    count: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None


class RequestItem(BaseModel):
    request_id: str
    ts: float
    time: str
    team: str
    key_id: str | None = None
    key_name: str | None = None
    model: str | None = None
    upstream_model: str | None = None
    backend: str | None = None
    step: str | None = None
    status: int
    outcome: str
    from_cache: bool = False
    stream: bool = False
    prompt_tokens_original: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    saved_tokens: int = 0
    saved_usd: float = 0.0
    latency_ms: float = 0.0
    error: str | None = None


class StageEvent(BaseModel):
    stage: str
    technique: str | None = None
    tokens_before: int | None = None
    tokens_after: int | None = None
    ms: float = 0.0
    detail: dict[str, Any] = Field(default_factory=dict)


class RequestDetail(RequestItem):
    user: str | None = None
    mode: str | None = None
    uncached_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False
    tags: dict[str, str] = Field(default_factory=dict)
    events: list[StageEvent] = Field(default_factory=list)
    savings: dict[str, tuple[int, float]] = Field(default_factory=dict)  # technique: tok, $


class Facets(BaseModel):
    """The values the filters offer for the selected team and period."""

    keys: list[tuple[str, str]] = Field(default_factory=list)  # (key id, name or id)
    models: list[str] = Field(default_factory=list)
    steps: list[str] = Field(default_factory=list)


class Insights(BaseModel):
    bucket: Bucket
    series: list[Point]
    latency: Latency
    requests: list[RequestItem]
    page: int
    more: bool
    facets: Facets


def insights(budgets: Budgets, query: ReportQuery, *, page: int = 0,
             bucket: Bucket | None = None, now: float | None = None) -> Insights:
    now = time.time() if now is None else now
    where = where_clause(query)
    engine = budgets.ledger.reader
    with engine.connect() as conn:
        first = conn.execute(select(func.min(_R.ts)).where(where)).scalar()
        chosen = bucket or buckets.choose(query.since, query.until or now, first)
        series = _series(conn, where, chosen, query, first, now, engine.dialect.name)
        latency = _latency(conn, where)
        names = key_names(conn)
        found = conn.execute(select(schema.requests).where(where)
                             .order_by(_R.ts.desc(), _R.id.desc())
                             .offset(page * PAGE).limit(PAGE + 1)).mappings().all()
        items = [_item(row, names) for row in found[:PAGE]]
        facet_query = ReportQuery(team=query.team, since=query.since, until=query.until)
        facets = _facets(conn, where_clause(facet_query), names)
    return Insights(bucket=chosen, series=series, latency=latency, requests=items, page=page,
                    more=len(found) > PAGE, facets=facets)


def _series(conn: Connection, where: Any, bucket: Bucket, query: ReportQuery,
            first: float | None, now: float, dialect: str) -> list[Point]:
    index = buckets.expression(_R.ts, bucket, dialect)
    answered = (_R.outcome == "ok") & (_R.from_cache == false())
    rows = conn.execute(
        select(
            index.label("b"),
            func.count().label("requests"),
            func.sum(case((answered, 1), else_=0)).label("ok"),
            func.sum(case((_R.from_cache, 1), else_=0)).label("cached"),
            func.sum(case((_R.outcome == "refused", 1), else_=0)).label("refused"),
            func.sum(case((_R.outcome.in_(FAILED), 1), else_=0)).label("errors"),
            *(func.coalesce(func.sum(getattr(_R, name)), 0).label(name) for name in (
                "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd",
                "saved_tokens", "saved_usd")),
        ).where(where).group_by(index).order_by(index)
    ).mappings().all()
    size = buckets.SIZE[bucket]
    by_start = {float(int(row["b"]) * size): row for row in rows}
    if not by_start and query.since is None:
        return []
    start = query.since if query.since is not None else min(by_start)
    end = min(query.until or now, now)
    if first is not None and by_start:
        end = max(end, max(by_start))
    points = []
    for begin in buckets.starts(start, end, bucket):
        row = by_start.get(begin)
        values = {k: v for k, v in row.items() if k != "b"} if row is not None else {}
        points.append(Point(start=begin, label=buckets.label(begin, bucket), **values))
    return points


def _latency(conn: Connection, where: Any) -> Latency:
    answered = where & (_R.outcome == "ok")
    count = int(conn.execute(select(func.count()).where(answered)).scalar() or 0)
    if not count:
        return Latency()

    def at(fraction: float) -> float:
        # The nearest-rank percentile, on both databases (SQLite has no percentile_cont).
        offset = max(0, min(count - 1, int(fraction * count + 0.999999) - 1))
        value = conn.execute(select(_R.latency_ms).where(answered)
                             .order_by(_R.latency_ms).offset(offset).limit(1)).scalar()
        return float(value or 0.0)

    return Latency(count=count, p50_ms=at(0.50), p95_ms=at(0.95))


def _item(row: Any, names: dict[str, str]) -> RequestItem:
    data = dict(row)
    key_id = data.get("key_id")
    error = data.get("error")
    return RequestItem(
        **{k: v for k, v in data.items() if k in RequestItem.model_fields and k != "error"},
        time=iso(data["ts"]),
        key_name=names.get(key_id) if key_id else None,
        error=(error[:160] + "…") if error and len(error) > 160 else error,
    )


def _facets(conn: Connection, where: Any, names: dict[str, str]) -> Facets:
    def values(column: Any) -> list[str]:
        found = conn.execute(select(column).distinct().where(where, column.is_not(None)))
        return sorted(str(v) for v in found.scalars())

    keys = [(key_id, names.get(key_id, key_id)) for key_id in values(_R.key_id)]
    return Facets(keys=sorted(keys, key=lambda k: k[1].lower()), models=values(_R.model),
                  steps=values(_R.step))


def request_detail(budgets: Budgets, request_id: str, team: str | None) -> RequestDetail | None:
    """One request with its stages and savings; None if absent or of another team."""
    with budgets.ledger.reader.connect() as conn:
        row = conn.execute(select(schema.requests)
                           .where(_R.request_id == request_id)).mappings().first()
        if row is None or (team is not None and row["team"] != team):
            return None
        saved = conn.execute(select(_S.technique, _S.tokens_saved, _S.usd_saved)
                             .where(_S.request_id == request_id)
                             .order_by(_S.technique)).all()
        names = key_names(conn)
    data = dict(row)
    item = _item(row, names)
    events = []
    for raw in _json(data.get("events"), []):
        if isinstance(raw, dict):
            try:
                events.append(StageEvent.model_validate(raw))
            except ValueError:
                continue
    tags = _json(data.get("tags"), {})
    return RequestDetail(
        **item.model_dump(),
        user=data.get("user"),
        mode=data.get("mode"),
        uncached_tokens=data.get("uncached_tokens") or 0,
        cached_tokens=data.get("cached_tokens") or 0,
        cache_write_tokens=data.get("cache_write_tokens") or 0,
        reasoning_tokens=data.get("reasoning_tokens") or 0,
        estimated=bool(data.get("estimated")),
        tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {},
        events=events,
        savings={t: (int(n), float(u)) for t, n, u in saved},
    )


def _json(text: Any, default: Any) -> Any:
    if not isinstance(text, str) or not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default
