"""Report renderers for the terminal and for files: table, CSV and JSON.

All read one `Report` (see report.py); CSV rows are exactly the JSON `groups`.
"""

from __future__ import annotations

import csv
import io

from tokenomy.budgets.report import COLUMNS, BudgetStatus, Group, Report


def to_json(report: Report) -> str:
    return report.model_dump_json(indent=2)


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([report.query.group_by, *COLUMNS[1:]])
    for group in report.groups:
        writer.writerow([_cell(getattr(group, name)) for name in COLUMNS])
    return out.getvalue()


def _cell(value: object) -> object:
    # Full precision for money: CSV and JSON must agree to the last digit.
    return repr(value) if isinstance(value, float) else value


def _money(value: float) -> str:
    sign, value = ("-", -value) if value < 0 else ("", value)
    return sign + (f"${value:,.4f}" if value < 100 else f"${value:,.2f}")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=False)]
    line = "  ".join("-" * w for w in widths)
    fmt = [
        "  ".join(
            str(c).rjust(w) if i else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=False))
        )
        for r in [headers, *rows]
    ]
    return "\n".join([fmt[0], line, *fmt[1:]])


def _section(title: str, headers: list[str], rows: list[list[str]]) -> list[str]:
    """A blank line, a title and its table: the lines a report section adds."""
    return ["", title, _table(headers, rows)]


def to_table(report: Report) -> str:
    q = report.query
    scope = f"team {q.team}" if q.team else "all teams"
    parts = [f"tokenomy usage — {scope}, by {q.group_by} (generated {report.generated_at})", ""]
    headers = [
        q.group_by,
        "requests",
        "refused",
        "errors",
        "cache hits",
        "prompt in",
        "sent",
        "uncached",
        "cache read",
        "cache write",
        "hit rate",
        "output",
        "reasoning",
        "cost",
        "saved tok",
        "saved $",
    ]

    def row(g: Group) -> list[str]:
        return [
            _label(g),
            f"{g.requests:,}",
            f"{g.refused:,}",
            f"{g.errors:,}",
            f"{g.cache_hits:,}",
            f"{g.prompt_tokens_original:,}",
            f"{g.prompt_tokens:,}",
            f"{g.uncached_tokens:,}",
            f"{g.cached_tokens:,}",
            _writes(g),
            f"{g.cache_hit_rate:.0%}",
            f"{g.completion_tokens:,}",
            f"{g.reasoning_tokens:,}",
            _money(g.cost_usd),
            f"{g.saved_tokens:,}",
            _money(g.saved_usd),
        ]

    parts.append(_table(headers, [row(g) for g in report.groups] + [row(report.totals)]))
    if q.group_by == "technique":
        parts.append("(each request in one group: the set of techniques that saved on it)")
    parts.append("(cache hits: requests the response cache answered; hit rate: prompt-cache "
                 "reads / input sent; errors include cancelled and abandoned requests)")
    if report.savings_by_technique:
        parts += _section(
            "Saved by technique",
            ["technique", "requests", "tokens saved", "saved $"],
            [
                [s.technique, f"{s.requests:,}", f"{s.tokens_saved:,}", _money(s.usd_saved)]
                for s in report.savings_by_technique
            ],
        )
    if report.budgets:
        parts += _section(
            "Budgets (current window)",
            ["scope", "window", "used", "limit", "resets at", "forecast at reset"],
            [
                [f"{b.scope} {b.name or b.id}", b.window, _used(b), _limit(b), b.resets_at,
                 f"{b.forecast_fraction or 0:.0%}"]
                for b in report.budgets
            ],
        )
    if report.top_steps:
        parts += _section(
            "Top steps by cost",
            ["step", "requests", "tokens", "cost"],
            [
                [s.key, f"{s.requests:,}", f"{s.total_tokens:,}", _money(s.cost_usd)]
                for s in report.top_steps
            ],
        )
    return "\n".join(parts) + "\n"


def _label(g: Group) -> str:
    """A group's name: a key's name with its id, else the key itself."""
    if g.name:
        return f"{g.name} ({g.key})"
    return g.key or "-"


def _writes(g: Group) -> str:
    """Cache writes, with the 1-hour part when there is one."""
    text = f"{g.cache_write_tokens:,}"
    return f"{text} ({g.cache_write_1h_tokens:,} 1h)" if g.cache_write_1h_tokens else text


def _used(b: BudgetStatus) -> str:
    spent = []
    if b.limit_tokens is not None:
        spent.append(f"{b.spent_tokens:,} tok")
    if b.limit_usd is not None:
        spent.append(_money(b.spent_usd))
    return " / ".join(spent) + f" ({b.used_fraction:.0%})"


def _limit(b: BudgetStatus) -> str:
    limits = []
    if b.limit_tokens is not None:
        limits.append(f"{b.limit_tokens:,} tok")
    if b.limit_usd is not None:
        limits.append(_money(b.limit_usd))
    return " / ".join(limits)
