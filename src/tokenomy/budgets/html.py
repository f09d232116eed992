"""The HTML report and dashboard: one self-contained page, charts in inline SVG.

No scripts, fonts or styles from anywhere else, so the file opens offline and
the page works behind a strict CSP. Everything that came from data (team,
step and model names are user input) passes through `html.escape`.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from pydantic import BaseModel

from tokenomy.budgets.report import GROUP_BYS, BudgetStatus, DayPoint, Group, Report

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;
background:#f5f6f8}
header{background:#1d2330;color:#fff;padding:14px 24px}header h1{font-size:18px;margin:0}
header p{margin:2px 0 0;color:#b9c0cc;font-size:12px}
main{padding:16px 24px;max-width:1200px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;
margin:0 0 16px}
.card,.panel{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:12px 14px}
.card b{display:block;font-size:22px}.card span{color:#5b6475;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:12px;
margin:0 0 16px}
h2{font-size:14px;margin:0 0 8px}table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:4px 8px;border-bottom:1px solid #eceff3;text-align:right}
th:first-child,td:first-child{text-align:left}th{color:#5b6475;font-weight:600}
tfoot td{font-weight:700}form{display:flex;gap:8px;flex-wrap:wrap;align-items:end;margin:0 0 16px}
label{display:flex;flex-direction:column;font-size:12px;color:#5b6475}
select,input,button{font:inherit;padding:4px 6px}.muted{color:#8a93a3}
.panel{overflow-x:auto}.warn{color:#b35c00}.over{color:#b3261e}svg text{font-size:11px;fill:#5b6475}
"""

PERIODS = (
    ("1d", "last 24 hours"),
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
    ("", "all time"),
)


class Filters(BaseModel):
    """What the dashboard's form shows and submits."""

    team: str = ""
    since: str = ""
    group_by: str = "day"
    teams: list[str] = []
    key: str = ""  # carried through so a bookmarked dashboard URL keeps working


def _money(value: float) -> str:
    return f"${value:,.4f}" if abs(value) < 100 else f"${value:,.2f}"


def _num(value: int) -> str:
    return f"{value:,}"


def _bars(points: list[tuple[str, float]], fmt, *, color: str, height: int = 180) -> str:
    """A vertical bar chart as inline SVG."""
    if not points:
        return '<p class="muted">No data in this period.</p>'
    width = max(320, 36 * len(points) + 60)
    top = max(v for _, v in points) or 1.0
    bar_w = (width - 60) / len(points)
    parts = [f'<svg role="img" viewBox="0 0 {width} {height + 40}" width="100%">']
    parts.append(f'<text x="0" y="12">{escape(fmt(top))}</text>')
    for i, (label, value) in enumerate(points):
        h = (value / top) * (height - 20)
        x = 50 + i * bar_w
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{height - h:.1f}" width="{max(bar_w - 4, 1):.1f}" '
            f'height="{h:.1f}" fill="{color}"><title>{escape(label)}: {escape(fmt(value))}</title>'
            "</rect>"
        )
        if len(points) <= 16 or i % max(1, len(points) // 8) == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height + 16}" text-anchor="middle">'
                f"{escape(label[5:] if len(label) == 10 else label)}</text>"
            )
    parts.append(f'<line x1="48" y1="{height}" x2="{width}" y2="{height}" stroke="#c4cad3"/>')
    parts.append("</svg>")
    return "".join(parts)


def _hbars(points: list[tuple[str, float]], fmt, *, color: str) -> str:
    """A horizontal bar chart (one row per label) as inline SVG."""
    if not points:
        return '<p class="muted">No savings recorded in this period.</p>'
    top = max(v for _, v in points) or 1.0
    row_h, width = 26, 520
    parts = [f'<svg role="img" viewBox="0 0 {width} {row_h * len(points) + 4}" width="100%">']
    for i, (label, value) in enumerate(points):
        y = i * row_h
        w = (value / top) * (width - 260)
        parts.append(f'<text x="0" y="{y + 17}">{escape(label)}</text>')
        parts.append(
            f'<rect x="140" y="{y + 4}" width="{max(w, 1):.1f}" height="{row_h - 8}" '
            f'fill="{color}"/><text x="{146 + w:.1f}" y="{y + 17}">{escape(fmt(value))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _burn(budget: BudgetStatus) -> str:
    """Cumulative spend across the window (x: time in the window) against the limit line."""
    by_tokens = budget.limit_tokens is not None
    limit = float((budget.limit_tokens if by_tokens else budget.limit_usd) or 0.0)
    spent = float(budget.spent_tokens if by_tokens else budget.spent_usd)
    start = _ts(budget.window_start)
    span = max(_ts(budget.resets_at) - start, 1.0)
    values = [float(p.total_tokens if by_tokens else p.cost_usd) for p in budget.burn]
    top = max([limit, spent, *values]) or 1.0
    width, height, left = 420, 110, 4
    points: list[tuple[float, float]] = [(float(left), float(height))]
    for point, value in zip(budget.burn, values, strict=True):
        end_of_day = min(_ts(point.day + "T00:00:00Z") + 86400 - start, span)
        x = left + (end_of_day / span) * (width - left - 4)
        points.append((x, height - (value / top) * (height - 12)))
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    limit_y = height - (limit / top) * (height - 12)
    soft_y = height - (limit * budget.soft_limit / top) * (height - 12)
    return (
        f'<svg role="img" viewBox="0 0 {width} {height + 18}" width="{width}" '
        f'style="max-width:100%;height:auto">'
        f"<title>{escape(budget.scope)} {escape(budget.id)}: burn-down</title>"
        f'<line x1="0" y1="{limit_y:.1f}" x2="{width}" y2="{limit_y:.1f}" stroke="#b3261e" '
        'stroke-dasharray="4 3"/>'
        f'<line x1="0" y1="{soft_y:.1f}" x2="{width}" y2="{soft_y:.1f}" stroke="#e8a33d" '
        'stroke-dasharray="2 3"/>'
        f'<polyline points="{path}" fill="none" stroke="#2f6fde" stroke-width="2"/>'
        f'<text x="{width - 4}" y="{max(limit_y - 3, 10):.1f}" text-anchor="end">limit</text>'
        f'<text x="0" y="{height + 14}">{escape(budget.window_start[:10])}</text>'
        f'<text x="{width}" y="{height + 14}" text-anchor="end">resets '
        f"{escape(budget.resets_at[:16].replace('T', ' '))}</text></svg>"
    )


def _ts(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _group_table(report: Report) -> str:
    head = (
        f"<tr><th>{escape(report.query.group_by)}</th><th>requests</th><th>prompt in</th>"
        "<th>sent</th><th>completion</th><th>reasoning</th><th>cost</th><th>saved tokens</th>"
        "<th>saved $</th></tr>"
    )

    def row(g: Group, tag: str = "td") -> str:
        cells = [
            escape(g.key or "-"),
            _num(g.requests),
            _num(g.prompt_tokens_original),
            _num(g.prompt_tokens),
            _num(g.completion_tokens),
            _num(g.reasoning_tokens),
            _money(g.cost_usd),
            _num(g.saved_tokens),
            _money(g.saved_usd),
        ]
        return "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"

    body = "".join(row(g) for g in report.groups)
    return (
        f'<table id="groups"><thead>{head}</thead><tbody>{body}</tbody>'
        f"<tfoot>{row(report.totals)}</tfoot></table>"
    )


def _budget_table(report: Report) -> str:
    if not report.budgets:
        return '<p class="muted">No budgets apply to this selection.</p>'
    rows = []
    for b in report.budgets:
        cls = "over" if b.used_fraction >= 1 else "warn" if b.used_fraction >= b.soft_limit else ""
        limit = " / ".join(
            x
            for x in [
                _num(b.limit_tokens) + " tok" if b.limit_tokens is not None else "",
                _money(b.limit_usd) if b.limit_usd is not None else "",
            ]
            if x
        )
        used = " / ".join(
            x
            for x in [
                _num(b.spent_tokens) + " tok" if b.limit_tokens is not None else "",
                _money(b.spent_usd) if b.limit_usd is not None else "",
            ]
            if x
        )
        rows.append(
            f"<tr><td>{escape(b.scope)} {escape(b.id)}</td><td>{escape(b.window)}</td>"
            f'<td class="{cls}">{used} ({b.used_fraction:.0%})</td><td>{limit}</td>'
            f"<td>{escape(b.resets_at)}</td></tr>"
            f'<tr><td colspan="5">{_burn(b)}</td></tr>'
        )
    return (
        '<table id="budgets"><thead><tr><th>scope</th><th>window</th><th>used</th><th>limit</th>'
        f"<th>resets at</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _steps_table(report: Report) -> str:
    if not report.top_steps:
        return '<p class="muted">No agent steps tagged in this period.</p>'
    rows = "".join(
        f"<tr><td>{escape(s.key)}</td><td>{_num(s.requests)}</td><td>{_num(s.total_tokens)}</td>"
        f"<td>{_money(s.cost_usd)}</td></tr>"
        for s in report.top_steps
    )
    return (
        '<table id="steps"><thead><tr><th>step</th><th>requests</th><th>tokens</th><th>cost</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _form(filters: Filters) -> str:
    teams = "".join(
        f'<option value="{escape(t)}"{" selected" if t == filters.team else ""}>'
        f"{escape(t)}</option>"
        for t in filters.teams
    )
    periods = "".join(
        f'<option value="{v}"{" selected" if v == filters.since else ""}>{label}</option>'
        for v, label in PERIODS
    )
    groups = "".join(
        f'<option value="{g}"{" selected" if g == filters.group_by else ""}>{g}</option>'
        for g in GROUP_BYS
    )
    key = f'<input type="hidden" name="key" value="{escape(filters.key)}">' if filters.key else ""
    return (
        '<form method="get" action="" id="filters">'
        f'<label>team<select name="team" id="team"><option value="">all teams</option>{teams}'
        "</select></label>"
        f'<label>period<select name="since" id="since">{periods}</select></label>'
        f'<label>group by<select name="group_by" id="group_by">{groups}</select></label>'
        f'{key}<button type="submit" id="apply">Apply</button></form>'
    )


def render_html(
    report: Report, *, title: str = "tokenomy usage", filters: Filters | None = None
) -> str:
    t = report.totals
    scope = f"team {report.query.team}" if report.query.team else "all teams"
    cards = [
        ("total-cost", _money(t.cost_usd), "spent"),
        ("total-requests", _num(t.requests), "requests"),
        ("total-tokens", _num(t.total_tokens), "tokens billed"),
        ("total-reasoning", _num(t.reasoning_tokens), "reasoning tokens"),
        ("total-saved-tokens", _num(t.saved_tokens), "tokens saved"),
        ("total-saved-usd", _money(t.saved_usd), "saved"),
    ]
    card_html = "".join(
        f'<div class="card"><b id="{i}">{escape(v)}</b><span>{escape(label)}</span></div>'
        for i, v, label in cards
    )
    use_cost = any(p.cost_usd > 0 for p in report.spend_over_time)
    spend = _bars(
        [
            (p.day, p.cost_usd if use_cost else float(p.total_tokens))
            for p in report.spend_over_time
        ],
        _money if use_cost else (lambda v: f"{v:,.0f} tok"),
        color="#2f6fde",
    )
    saved = _hbars(
        [(s.technique, float(s.tokens_saved)) for s in report.savings_by_technique],
        lambda v: f"{v:,.0f} tok",
        color="#2e9e6a",
    )
    form = _form(filters) if filters is not None else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{escape(title)}</title><style>{_CSS}</style></head>
<body><header><h1>{escape(title)} — {escape(scope)}</h1>
<p>generated {escape(report.generated_at)}{_period(report)}</p></header>
<main>{form}<section class="cards" id="totals">{card_html}</section>
<section class="grid">
<div class="panel" id="spend-chart"><h2>Spend over time</h2>{spend}</div>
<div class="panel" id="savings-chart"><h2>Savings by technique</h2>{saved}</div>
</section>
<section class="panel" id="budget-panel"><h2>Budgets: burn-down in the current window</h2>
{_budget_table(report)}</section>
<section class="grid" style="margin-top:16px">
<div class="panel"><h2>By {escape(report.query.group_by)}</h2>{_group_table(report)}</div>
<div class="panel"><h2>Top steps</h2>{_steps_table(report)}</div>
</section></main></body></html>
"""


def _period(report: Report) -> str:
    from tokenomy.budgets.windows import iso

    q = report.query
    if q.since is None and q.until is None:
        return " · all time"
    since = iso(q.since) if q.since is not None else "the start"
    until = iso(q.until) if q.until is not None else "now"
    return f" · {escape(since)} to {escape(until)}"


def dashboard_link(filters: Filters) -> str:
    params = {k: v for k, v in filters.model_dump(exclude={"teams"}).items() if v}
    return "/dashboard" + ("?" + urlencode(params) if params else "")


__all__ = ["DayPoint", "Filters", "dashboard_link", "render_html"]
