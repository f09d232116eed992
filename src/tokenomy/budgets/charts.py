"""Chart geometry for the dashboard and the HTML report: bars, stacked bars,
horizontal bars and the budget burn-down, with axes and ticks.

Only numbers are computed here (typed models); the Jinja2 templates draw them
as inline SVG, escaping every label. No script, font or file from elsewhere:
the page opens offline and behind a strict CSP.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, Field

Format = Callable[[float], str]

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 30, 14, 36  # the plot area's margins (axis labels)


class Rect(BaseModel):
    x: float
    y: float
    w: float
    h: float
    fill: str
    title: str


class Tick(BaseModel):
    at: float  # pixel position along its axis
    label: str


class Series(BaseModel):
    name: str
    color: str
    values: list[float]


class Chart(BaseModel):
    """A bar chart (stacked when it has several series) on a time axis."""

    width: int = WIDTH
    height: int = HEIGHT
    left: float = LEFT
    top: float = TOP
    right: float = WIDTH - RIGHT
    bottom: float = HEIGHT - BOTTOM
    rects: list[Rect] = Field(default_factory=list)
    y_ticks: list[Tick] = Field(default_factory=list)
    x_ticks: list[Tick] = Field(default_factory=list)
    legend: list[tuple[str, str]] = Field(default_factory=list)  # (name, color)
    empty: bool = True


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """0 and round steps (1, 2, 2.5 or 5 times a power of ten) up to at least `top`."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    n = math.ceil(top / step - 1e-9)
    return [i * step for i in range(n + 1)]


def bars(labels: Sequence[str], series: Sequence[Series], fmt: Format) -> Chart:
    chart = Chart(legend=[(s.name, s.color) for s in series] if len(series) > 1 else [])
    n = len(labels)
    totals = [sum(s.values[i] for s in series) for i in range(n)]
    if not n or not any(totals):
        return chart
    ticks = nice_ticks(max(totals))
    top = ticks[-1]
    plot_h = chart.bottom - chart.top
    slot = (chart.right - chart.left) / n
    gap = min(2.0, slot * 0.15)

    def y(value: float) -> float:
        return chart.bottom - value / top * plot_h

    chart.y_ticks = [Tick(at=y(v), label=fmt(v)) for v in ticks]
    for i, label in enumerate(labels):
        base = 0.0
        x = chart.left + i * slot + gap / 2
        for s in series:
            value = s.values[i]
            if value > 0:
                chart.rects.append(Rect(
                    x=round(x, 2), y=round(y(base + value), 2), w=round(max(slot - gap, 0.5), 2),
                    h=round(value / top * plot_h, 2), fill=s.color,
                    title=f"{label}: {s.name} {fmt(value)}" if len(series) > 1
                    else f"{label}: {fmt(value)}"))
            base += value
    every = max(1, math.ceil(n / 8))  # at most ~8 labels on the time axis
    chart.x_ticks = [Tick(at=round(chart.left + (i + 0.5) * slot, 2), label=label)
                     for i, label in enumerate(labels) if i % every == 0]
    chart.empty = False
    return chart


class HBar(BaseModel):
    label: str
    width: float  # 0..1 of the longest
    value: str
    detail: str = ""


def hbars(rows: Sequence[tuple[str, float, str]], fmt: Format) -> list[HBar]:
    """One bar per row (label, value, detail), scaled to the largest value."""
    top = max((abs(v) for _, v, _ in rows), default=0.0) or 1.0
    return [HBar(label=label, width=max(abs(v) / top, 0.004), value=fmt(v), detail=detail)
            for label, v, detail in rows]


class Burn(BaseModel):
    """A budget's window: cumulative spend so far, the forecast to the reset, the limits."""

    width: int = 460
    height: int = 170
    left: float = LEFT
    top: float = TOP
    right: float = 460 - RIGHT
    bottom: float = 170 - 30
    spent: str = ""  # polyline points
    forecast: tuple[float, float, float, float] | None = None  # x1 y1 x2 y2
    limit_y: float = 0.0
    soft_y: float = 0.0
    now_x: float = 0.0
    y_ticks: list[Tick] = Field(default_factory=list)
    x_ticks: list[Tick] = Field(default_factory=list)
    title: str = ""


def burn(start: float, end: float, now: float, points: Sequence[tuple[float, float]],
         limit: float, soft: float, forecast: float | None, fmt: Format) -> Burn:
    """`points`: (time, cumulative spend) within [start, end]."""
    chart = Burn()
    ticks = nice_ticks(max([limit, forecast or 0.0, *(v for _, v in points)]) or 1.0)
    top = ticks[-1]
    span = max(end - start, 1.0)

    def x(t: float) -> float:
        return chart.left + (min(max(t, start), end) - start) / span * (chart.right - chart.left)

    def y(v: float) -> float:
        return chart.bottom - v / top * (chart.bottom - chart.top)

    path = [(x(start), y(0.0)), *((x(t), y(v)) for t, v in points)]
    chart.spent = " ".join(f"{a:.1f},{b:.1f}" for a, b in path)
    last = points[-1][1] if points else 0.0
    if forecast is not None and now < end:
        chart.forecast = (round(x(now), 1), round(y(last), 1), round(x(end), 1),
                          round(y(forecast), 1))
    chart.limit_y, chart.soft_y = round(y(limit), 1), round(y(limit * soft), 1)
    chart.now_x = round(x(now), 1)
    chart.y_ticks = [Tick(at=y(v), label=fmt(v)) for v in ticks]
    short = span <= 2 * 86400
    chart.x_ticks = [
        Tick(at=x(t), label=_moment(t, short))
        for t in (start + span * i / 4 for i in range(5))
    ]
    return chart


def _moment(ts: float, short: bool) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%H:%M" if short else "%m-%d")


def money(value: float) -> str:
    """$1,234 · $12.50 · $0.0062: cents at least, four decimals for small amounts."""
    sign, value = ("-", -value) if value < 0 else ("", value)
    if value == 0:
        return "$0"
    if value < 0.0001:
        return f"{sign}<$0.0001"
    if value >= 100:
        return f"{sign}${value:,.0f}"
    text = f"{value:,.2f}" if value >= 1 else f"{value:.4f}"
    while text.endswith("0") and len(text.split(".")[1]) > 2:
        text = text[:-1]
    return f"{sign}${text}"


def count(value: float) -> str:
    """Compact counts for axes: 950, 12k, 3.4M."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            text = f"{value / size:.1f}".rstrip("0").rstrip(".")
            return text + suffix
    return f"{value:,.0f}"
