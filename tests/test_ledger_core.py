"""Ledger-level behaviour against real databases: SQLite files and PostgreSQL."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

import budget_support
from tokenomy.budgets.ledger import Ledger
from tokenomy.budgets.migrations import MIGRATIONS, current_version
from tokenomy.budgets.rows import RequestRow, Saving, Scope
from tokenomy.budgets.settings import BudgetSpec, LedgerSettings
from tokenomy.budgets.windows import window_bounds
from tokenomy.errors import BudgetExceeded

ledger_url = budget_support.ledger_url  # the fixture: a SQLite file, then a PostgreSQL schema


@pytest.fixture
def ledger(ledger_url: str):
    ledger = Ledger(ledger_url, LedgerSettings()).open(background=False)
    yield ledger
    ledger.close()


def _row(request_id: str, team: str = "alpha", **fields) -> RequestRow:
    return RequestRow(request_id=request_id, ts=fields.pop("ts", time.time()), team=team, **fields)


def _team(tokens: int | None = None, usd: float | None = None, window: str = "1d", **kw) -> Scope:
    return Scope(
        kind="team", id="alpha", spec=BudgetSpec(tokens=tokens, usd=usd, window=window, **kw)
    )


def test_migrations_are_versioned_and_idempotent(ledger: Ledger) -> None:
    with ledger.engine.connect() as conn:
        assert current_version(conn) == len(MIGRATIONS)
    # A second process opening the same database applies nothing twice.
    again = Ledger(ledger.url, LedgerSettings()).open(background=False)
    with again.engine.connect() as conn:
        assert current_version(conn) == len(MIGRATIONS)
    again.close()


def test_reserve_settle_charges_real_usage_once(ledger: Ledger) -> None:
    scope = _team(tokens=1000)
    res = ledger.reserve("r1", [scope], 300, 0.0, _row("r1"))
    usage = ledger.window_usage(scope)
    assert (usage["spent_tokens"], usage["reserved_tokens"]) == (0, 300)
    row = _row("r1", prompt_tokens=100, completion_tokens=20, total_tokens=120, cost_usd=0.5)
    ledger.settle(res, row, [Saving(technique="extractive", tokens=50, usd=0.1)])
    usage = ledger.window_usage(scope)
    assert (usage["spent_tokens"], usage["reserved_tokens"]) == (120, 0)
    assert ledger.open_reservations() == 0


def test_hard_limit_names_scope_limit_spent_and_reset(ledger: Ledger) -> None:
    scope = _team(tokens=500)
    res = ledger.reserve("r1", [scope], 400, 0.0, _row("r1"))
    ledger.settle(res, _row("r1", total_tokens=400))
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve("r2", [scope], 200, 0.0, _row("r2"))
    err = info.value
    assert err.status == 429
    assert "team 'alpha'" in err.message and "500 tokens" in err.message
    assert "400 spent" in err.message and "resets at" in err.message
    _, end = window_bounds("1d", time.time())
    assert err.extra["scope"] == "team" and err.extra["limit_tokens"] == 500
    assert err.extra["spent_tokens"] == 400
    assert err.extra["resets_at"].startswith(time.strftime("%Y-%m-%d", time.gmtime(end)))
    # The refused request held nothing.
    assert ledger.window_usage(scope)["reserved_tokens"] == 0


def test_key_scope_refuses_even_when_team_has_room(ledger: Ledger) -> None:
    team = _team(tokens=10_000)
    key = Scope(kind="key", id="k1", spec=BudgetSpec(tokens=100, window="1h"))
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve("r1", [key, team], 150, 0.0, _row("r1"))
    assert info.value.extra["scope"] == "key" and "key 'k1'" in info.value.message
    # The team's hold in the same transaction was rolled back.
    assert ledger.window_usage(team)["reserved_tokens"] == 0


def test_usd_limit(ledger: Ledger) -> None:
    scope = _team(usd=1.0)
    res = ledger.reserve("r1", [scope], 10, 0.7, _row("r1"))
    ledger.settle(res, _row("r1", total_tokens=10, cost_usd=0.9))
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve("r2", [scope], 10, 0.2, _row("r2"))
    assert "$1.0000" in info.value.message


def test_window_resets_on_time(ledger: Ledger) -> None:
    scope = _team(tokens=100, window="1h")
    t0 = 1_800_000_000.0  # on an hour boundary + 0
    _, end = window_bounds("1h", t0)
    res = ledger.reserve("r1", [scope], 100, 0.0, _row("r1", ts=t0), now=t0)
    ledger.settle(res, _row("r1", ts=t0, total_tokens=100))
    with pytest.raises(BudgetExceeded):
        ledger.reserve("r2", [scope], 1, 0.0, _row("r2", ts=t0 + 10), now=t0 + 10)
    # One second into the next window the budget is whole again.
    res = ledger.reserve("r3", [scope], 100, 0.0, _row("r3", ts=end + 1), now=end + 1)
    assert res.scopes == [("team", "alpha", end)]


def test_month_window_is_the_calendar_month() -> None:
    # 2026-02-15 -> [2026-02-01, 2026-03-01)
    start, end = window_bounds("month", 1_771_156_800.0)
    assert time.strftime("%Y-%m-%d", time.gmtime(start)) == "2026-02-01"
    assert time.strftime("%Y-%m-%d", time.gmtime(end)) == "2026-03-01"
    december = datetime(2026, 12, 31, 23, 59, tzinfo=UTC).timestamp()
    start, end = window_bounds("month", december)
    assert time.strftime("%Y-%m", time.gmtime(end)) == "2027-01"


def test_soft_limit_reported_on_reserve(ledger: Ledger) -> None:
    scope = _team(tokens=1000, soft_limit=0.5, soft_action="degrade")
    first = ledger.reserve("r1", [scope], 400, 0.0, _row("r1"))
    assert first.soft == []
    second = ledger.reserve("r2", [scope], 200, 0.0, _row("r2"))
    assert [(h.kind, h.action) for h in second.soft] == [("team", "degrade")]
    assert second.soft[0].used_fraction == pytest.approx(0.6)


def test_failed_request_releases_and_is_one_row(ledger: Ledger) -> None:
    scope = _team(tokens=1000)
    res = ledger.reserve("r1", [scope], 600, 0.0, _row("r1"))
    ledger.settle(res, _row("r1", status=502, outcome="error", error="boom"))
    assert ledger.window_usage(scope)["reserved_tokens"] == 0
    ledger.reserve("r2", [scope], 1000, 0.0, _row("r2"))  # the whole budget is free again
    with ledger.engine.connect() as conn:
        from sqlalchemy import text

        rows = conn.execute(text("select count(*) from tk_requests where request_id='r1'")).scalar()
    assert rows == 1


def test_concurrent_reservations_never_exceed_the_budget(ledger: Ledger) -> None:
    """200 threads race for a budget that admits 10: exactly 10 win."""
    scope = _team(tokens=1000)

    def attempt(i: int) -> bool:
        try:
            ledger.reserve(f"c{i}", [scope], 100, 0.0, _row(f"c{i}"))
            return True
        except BudgetExceeded:
            return False

    with ThreadPoolExecutor(max_workers=32) as pool:
        wins = sum(pool.map(attempt, range(200)))
    assert wins == 10
    assert ledger.window_usage(scope)["reserved_tokens"] == 1000


def test_reconcile_releases_dead_owner_and_late_settle_is_not_double(ledger: Ledger) -> None:
    scope = _team(tokens=1000)
    other = Ledger(ledger.url, LedgerSettings())
    other.open(background=False)
    res = other.reserve("r1", [scope], 500, 0.0, _row("r1"))
    assert ledger.window_usage(scope)["reserved_tokens"] == 500
    # The other process stops heartbeating: after owner_ttl it is dead.
    assert ledger.reconcile(now=time.time() + 5) == 0
    assert ledger.reconcile(now=time.time() + ledger.settings.owner_ttl + 5) == 1
    assert ledger.window_usage(scope)["reserved_tokens"] == 0
    with ledger.engine.connect() as conn:
        from sqlalchemy import text

        outcome = conn.execute(
            text("select outcome from tk_requests where request_id='r1'")
        ).scalar()
    assert outcome == "abandoned"
    # If the owner was only slow and settles after all, it charges once and
    # replaces the abandoned row; the reserve is not subtracted a second time.
    other.settle(res, _row("r1", total_tokens=120))
    usage = ledger.window_usage(scope)
    assert (usage["spent_tokens"], usage["reserved_tokens"]) == (120, 0)
    with ledger.engine.connect() as conn:
        rows = conn.execute(text("select outcome from tk_requests where request_id='r1'")).all()
    assert [r[0] for r in rows] == ["ok"]
    other.close()


def test_window_row_starts_from_existing_spend(ledger: Ledger) -> None:
    # Spend recorded before any budget applied still counts once a budget appears.
    ledger.record(_row("r0", total_tokens=900))
    scope = _team(tokens=1000)
    with pytest.raises(BudgetExceeded):
        ledger.reserve("r1", [scope], 200, 0.0, _row("r1"))
