"""Reports: sums equal the sum of rows for every grouping; CSV and JSON agree;
the CLI and the HTML file render the same aggregation."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from budget_support import seed_rows, sqlite_url
from tokenomy.budgets.render import to_csv, to_json
from tokenomy.budgets.report import GROUP_BYS, ReportQuery, aggregate, parse_when
from tokenomy.budgets.service import Budgets
from tokenomy.cli import main
from tokenomy.config import Settings
from tokenomy.errors import BadRequest

SUMMED = [
    "requests",
    "prompt_tokens_original",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost_usd",
    "saved_tokens",
    "saved_usd",
]
NOW = 1_790_000_000.0


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("report")
    settings = Settings(
        ledger={"url": sqlite_url(folder)},
        teams={"alpha": {"tokens": 2_000_000, "window": "30d"}},
    )
    budgets = Budgets.from_settings(settings, background=False)
    rows = seed_rows(budgets.ledger, now=NOW)
    yield budgets, rows, folder
    budgets.close()


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("group_by", GROUP_BYS)
def test_group_sums_equal_totals_equal_rows(seeded, group_by: str) -> None:
    budgets, rows, _ = seeded
    report = aggregate(budgets, ReportQuery(group_by=group_by), now=NOW)
    for field in SUMMED:
        from_rows = sum(getattr(r, field) if field != "requests" else 1 for r, _ in rows)
        from_groups = sum(getattr(g, field) for g in report.groups)
        total = getattr(report.totals, field)
        assert _close(from_groups, total) and _close(total, from_rows), field


def test_filters_team_and_period(seeded) -> None:
    budgets, rows, _ = seeded
    since, until = NOW - 3 * 86400, NOW - 86400
    query = ReportQuery(team="alpha", since=since, until=until, group_by="step")
    report = aggregate(budgets, query, now=NOW)
    expected = [r for r, _ in rows if r.team == "alpha" and since <= r.ts < until]
    assert report.totals.requests == len(expected) > 0
    assert _close(report.totals.cost_usd, sum(r.cost_usd for r in expected))
    assert report.top_steps and report.top_steps[0].cost_usd >= report.top_steps[-1].cost_usd


def test_savings_by_technique_match_rows(seeded) -> None:
    budgets, rows, _ = seeded
    report = aggregate(budgets, ReportQuery(group_by="technique"), now=NOW)
    by_technique: dict[str, int] = {}
    for _, savings in rows:
        for s in savings:
            by_technique[s.technique] = by_technique.get(s.technique, 0) + s.tokens
    assert {s.technique: s.tokens_saved for s in report.savings_by_technique} == by_technique
    assert sum(g.saved_tokens for g in report.groups) == report.totals.saved_tokens


def test_budget_burn_down(seeded) -> None:
    budgets, _, _ = seeded
    report = aggregate(budgets, ReportQuery(team="alpha"), now=NOW)
    [alpha] = report.budgets
    assert alpha.limit_tokens == 2_000_000 and alpha.window == "30d"
    # Cumulative: non-decreasing and ending at what the window spent.
    burn = [p.total_tokens for p in alpha.burn]
    assert burn == sorted(burn) and burn[-1] == alpha.spent_tokens > 0


def test_csv_and_json_agree(seeded) -> None:
    budgets, _, _ = seeded
    for group_by in GROUP_BYS:
        report = aggregate(budgets, ReportQuery(group_by=group_by), now=NOW)
        from_json = json.loads(to_json(report))["groups"]
        from_csv = list(csv.DictReader(io.StringIO(to_csv(report))))
        assert len(from_csv) == len(from_json)
        for c, j in zip(from_csv, from_json, strict=True):
            assert c[group_by] == j["key"]
            assert c["name"] == (j["name"] or "")
            for field, value in j.items():
                if field not in ("key", "name"):
                    assert float(c[field]) == value, (group_by, field)


def test_cli_report_formats(seeded, tmp_path: Path) -> None:
    _, rows, folder = seeded
    runner = CliRunner()
    db = ["--db", sqlite_url(folder), "--since", "2020-01-01"]
    out = runner.invoke(main, ["report", "--group-by", "team", "--format", "json", *db])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["totals"]["requests"] == len(rows)
    table = runner.invoke(main, ["report", "--group-by", "model", *db])
    assert (
        table.exit_code == 0
        and "gpt-4o-mini" in table.stdout
        and "Saved by technique" in table.stdout
    )
    target = tmp_path / "report.html"
    html = runner.invoke(
        main, ["report", "--format", "html", "--group-by", "team", "-o", str(target), *db]
    )
    assert html.exit_code == 0, html.output
    page = target.read_text()
    assert page.count("<svg") >= 1 and 'id="savings"' in page and "<script" not in page.lower()
    assert "&lt;b&gt;gamma &amp; co&lt;/b&gt;" in page and "<b>gamma" not in page
    assert "http://" not in page and "https://" not in page  # opens offline
    bad = runner.invoke(main, ["report", *db, "--since", "last tuesday"])
    assert bad.exit_code != 0 and "cannot read" in bad.output


def test_parse_when() -> None:
    now = 1_790_000_000.0
    assert parse_when("7d", now=now) == now - 7 * 86400
    assert parse_when("2026-01-02") == parse_when("2026-01-01", end=True)
    assert parse_when("2026-01-01T12:00:00Z") == 1767268800.0
    assert parse_when(None) is None
    assert abs(parse_when("today", end=True) - time.time()) <= 86400
    # A span too long for a date is the caller's mistake (400), not an overflow (500).
    for hostile in ("99999999999d", "9" * 5000 + "d"):
        with pytest.raises(BadRequest):
            parse_when(hostile, now=now)
