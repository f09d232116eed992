"""The dashboard and the HTML report, rendered from Jinja2 templates (autoescaped).

The templates ship in `tokenomy/budgets/templates/` as package data. Charts are
inline SVG drawn from `charts.py` geometry: no script, font or style from
anywhere else, so a report file opens offline and the dashboard works behind
a strict CSP. Every value that came from data (team, key, step and model names
are user input) is escaped by Jinja2's autoescaping, never by hand.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, Field

from tokenomy.budgets import charts
from tokenomy.budgets.budget_status import BudgetStatus
from tokenomy.budgets.insights import Insights, RequestDetail
from tokenomy.budgets.report import GROUP_BYS, STATUSES, Report

PERIODS = (
    ("1d", "last 24 hours"),
    ("2d", "last 2 days"),
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
    ("", "all time"),
)
COLORS = {"ok": "#2f6fde", "cached": "#2e9e6a", "refused": "#e8a33d", "errors": "#c2402f",
          "prompt": "#2f6fde", "completion": "#8fb3f0", "spend": "#2f6fde"}


class Filters(BaseModel):
    """What the dashboard's form shows and submits (never a secret: see server/dashboard.py)."""

    team: str = ""
    since: str = ""
    key_id: str = ""
    model: str = ""
    step: str = ""
    status: str = ""
    group_by: str = "day"
    bucket: str = ""
    page: int = 0
    teams: list[str] = Field(default_factory=list)

    def link(self, **changes: Any) -> str:
        """The dashboard URL for these filters with `changes` applied."""
        values = self.model_dump(exclude={"teams"}) | changes
        params = {k: v for k, v in values.items() if v not in ("", None, 0)}
        return "/dashboard" + ("?" + urlencode(params) if params else "")


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("tokenomy.budgets", "templates"),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=charts.money, num=_num, pct=_pct, ms=_ms, when=_when,
                       compact=charts.count)
    return env


def _num(value: Any) -> str:
    return f"{int(value or 0):,}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}" if value < 0.1 else f"{value:.0%}"


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _period(report: Report) -> str:
    from tokenomy.budgets.windows import iso

    q = report.query
    if q.since is None and q.until is None:
        return "all time"
    since = iso(q.since) if q.since is not None else "the start"
    until = iso(q.until) if q.until is not None else "now"
    return f"{since} to {until}"


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def budget_chart(b: BudgetStatus, now: float) -> charts.Burn:
    by_tokens = b.limit_tokens is not None
    limit = float((b.limit_tokens if by_tokens else b.limit_usd) or 0.0)
    forecast = b.forecast_tokens if by_tokens else b.forecast_usd
    points = [(p.at, float(p.total_tokens if by_tokens else p.cost_usd)) for p in b.burn]
    chart = charts.burn(_ts(b.window_start), _ts(b.resets_at), now, points, limit, b.soft_limit,
                        None if forecast is None else float(forecast),
                        charts.count if by_tokens else charts.money)
    chart.title = f"{b.scope} {b.name or b.id}: burn-down"
    return chart


def _savings(report: Report) -> list[charts.HBar]:
    rows = [(s.technique, s.usd_saved,
             f"{s.tokens_saved:,} tok · {s.requests:,} req" if s.tokens_saved
             else f"{s.requests:,} req") for s in report.savings_by_technique]
    rows.sort(key=lambda r: -r[1])
    return charts.hbars(rows, charts.money)


def summary(report: Report, now: float) -> dict[str, Any]:
    """What the report file and the dashboard both show."""
    t = report.totals
    answered = t.requests - t.refused - t.errors
    return {
        "report": report,
        "totals": t,
        "period": _period(report),
        "cache_rate": t.cache_hits / answered if answered > 0 else None,
        "savings": _savings(report),
        "budgets": [(b, budget_chart(b, now)) for b in report.budgets],
    }


def render_html(report: Report, *, title: str = "tokenomy usage") -> str:
    """`tokenomy report --format html`: one self-contained file."""
    now = time.time()
    points = report.spend_over_time
    use_cost = any(p.cost_usd > 0 for p in points)
    spend = charts.bars([p.day for p in points], [charts.Series(
        name="spend", color=COLORS["spend"],
        values=[p.cost_usd if use_cost else float(p.total_tokens) for p in points])],
        charts.money if use_cost else charts.count)
    return environment().get_template("report.html").render(
        title=title, spend=spend, spend_unit="USD" if use_cost else "tokens",
        **summary(report, now))


def render_dashboard(report: Report, view: Insights, filters: Filters, *, reader: str,
                     can_logout: bool) -> str:
    now = time.time()
    labels = [p.label for p in view.series]
    series = view.series
    spend = charts.bars(labels, [charts.Series(name="spend", color=COLORS["spend"],
                                               values=[p.cost_usd for p in series])],
                        charts.money)
    tokens = charts.bars(labels, [
        charts.Series(name="input sent", color=COLORS["prompt"],
                      values=[float(p.prompt_tokens) for p in series]),
        charts.Series(name="output", color=COLORS["completion"],
                      values=[float(p.completion_tokens) for p in series])], charts.count)
    requests = charts.bars(labels, [
        charts.Series(name=name, color=COLORS[name],
                      values=[float(getattr(p, name)) for p in series])
        for name in ("ok", "cached", "refused", "errors")], charts.count)
    return environment().get_template("dashboard.html").render(
        title="tokenomy dashboard", filters=filters, view=view, reader=reader,
        can_logout=can_logout, spend=spend, tokens=tokens, requests_chart=requests,
        periods=PERIODS, group_bys=GROUP_BYS, statuses=STATUSES, **summary(report, now))


def render_request(detail: RequestDetail, filters: Filters, *, reader: str,
                   can_logout: bool) -> str:
    return environment().get_template("request.html").render(
        title=f"request {detail.request_id}", r=detail, filters=filters, reader=reader,
        can_logout=can_logout)


def render_login(*, error: str | None = None) -> str:
    return environment().get_template("login.html").render(title="tokenomy dashboard",
                                                           error=error)


__all__ = ["Filters", "render_dashboard", "render_html", "render_login", "render_request"]
