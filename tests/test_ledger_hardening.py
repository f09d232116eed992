"""The ledger on its own, against real SQLite files and a real PostgreSQL schema:
one bad row never poisons it, liveness is by heartbeat, a refusal is O(1), and
absurd usage is never credited."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import event, text

import budget_support
from tokenomy.budgets.ledger import Ledger
from tokenomy.budgets.rows import RequestRow, Saving, Scope
from tokenomy.budgets.sanitize import MARKER
from tokenomy.budgets.settings import BudgetSpec, LedgerSettings
from tokenomy.errors import BudgetExceeded

ledger_url = budget_support.ledger_url  # the fixture: a SQLite file, then a PostgreSQL schema


@pytest.fixture
def ledger(ledger_url: str):
    ledger = Ledger(ledger_url, LedgerSettings()).open(background=False)
    yield ledger
    ledger.close()


def _row(request_id: str, team: str = "alpha", **fields: Any) -> RequestRow:
    return RequestRow(request_id=request_id, ts=fields.pop("ts", time.time()), team=team, **fields)


def _scope(tokens: int = 10_000, team: str = "alpha") -> Scope:
    return Scope(kind="team", id=team, spec=BudgetSpec(tokens=tokens, window="1d"))


def _rows(ledger: Ledger, sql: str, **params: Any) -> list[Any]:
    with ledger.engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


# What a client can put in its `tokenomy` options, and what PostgreSQL refuses.
POISON = {
    "step": "plan\x00" + "s" * 1000,
    "user": "bob\ud800" + "\x07",  # a lone surrogate cannot be encoded at all
    "model": "m" * 300,
    "tags": {"run\x00": "v\x00" + "x" * 1000},
}


def test_a_poisoned_row_settles_sanitised_and_releases(ledger: Ledger) -> None:
    scope = _scope()
    res = ledger.reserve("bad-1", [scope], 500, 0.0, _row("bad-1", **POISON))
    ledger.settle(res, _row("bad-1", total_tokens=120, **POISON))
    usage = ledger.window_usage(scope)
    assert (usage["spent_tokens"], usage["reserved_tokens"]) == (120, 0)
    assert ledger.open_reservations() == 0
    [(step, user, model, tags)] = _rows(
        ledger, "select step, \"user\", model, tags from tk_requests where request_id='bad-1'"
    )
    assert "\x00" not in step and len(step) == 256 and step.startswith("plan") and step[-1] == "…"
    assert user == "bob" and len(model) == 256
    tags = json.loads(tags)
    assert set(tags[MARKER].split(",")) >= {"step", "user", "model", "tags"}
    assert "\x00" not in "".join(tags) + "".join(tags.values())
    # The next request is not affected in any way.
    res = ledger.reserve("ok-1", [scope], 500, 0.0, _row("ok-1"))
    ledger.settle(res, _row("ok-1", total_tokens=10))
    assert ledger.window_usage(scope)["spent_tokens"] == 130


def test_poisoned_reservations_never_block_reconciliation_or_a_restart(
    ledger: Ledger, ledger_url: str
) -> None:
    """Reservations holding unstorable rows (as written before rows were cleaned)
    are released one by one with the good ones, and the ledger still opens."""
    scope = _scope()
    for i in range(3):
        ledger.reserve(f"r{i}", [scope], 100, 0.0, _row(f"r{i}"))
    poison = _row("r1").model_dump()
    poison.update(step="x\x00" * 400, model="m" * 999)
    broken = "{not json"
    with ledger.engine.begin() as conn:
        conn.execute(
            text("update tk_reservations set row = :row where request_id = 'r1'"),
            {"row": json.dumps(poison)},
        )
        conn.execute(
            text("update tk_reservations set row = :row where request_id = 'r2'"), {"row": broken}
        )
        # Their owner crashed long ago: its heartbeat is far older than owner_ttl.
        conn.execute(text("update tk_owners set heartbeat_at = heartbeat_at - 3600"))
    assert ledger.window_usage(scope)["reserved_tokens"] == 300
    # A restarted replica: reconciliation runs inside open().
    later = Ledger(ledger_url, LedgerSettings())
    later.open(background=False)
    try:
        assert ledger.open_reservations() == 0
        assert ledger.window_usage(scope)["reserved_tokens"] == 0
        outcomes = _rows(ledger, "select request_id, outcome from tk_requests order by request_id")
        assert outcomes == [(f"r{i}", "abandoned") for i in range(3)]
    finally:
        later.close()


def _refuse_rows_named(ledger: Ledger, name: str) -> None:
    """Make the database itself refuse rows whose step is `name` (a real constraint)."""
    with ledger.engine.begin() as conn:
        if ledger.engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_poison BEFORE INSERT ON tk_requests "
                    f"WHEN NEW.step = '{name}' OR NEW.request_id = 'refused-always' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "ALTER TABLE tk_requests ADD CONSTRAINT refuse_poison CHECK "
                    f"(step IS DISTINCT FROM '{name}' AND request_id <> 'refused-always')"
                )
            )


def test_a_row_the_database_refuses_still_releases_and_charges(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    scope = _scope()
    _refuse_rows_named(ledger, "poison")
    res = ledger.reserve("p1", [scope], 500, 0.0, _row("p1"))
    with caplog.at_level(logging.ERROR, logger="tokenomy.budgets"):
        ledger.settle(res, _row("p1", step="poison", total_tokens=40))
    # A minimal row (no client-chosen text) took its place; the spend counts.
    [(step, tags)] = _rows(ledger, "select step, tags from tk_requests where request_id='p1'")
    assert step is None and json.loads(tags) == {MARKER: "row"}
    # Even a request whose every row is refused releases its hold and is charged.
    res = ledger.reserve("refused-always", [scope], 500, 0.0, _row("refused-always"))
    ledger.settle(res, _row("refused-always", total_tokens=2))
    usage = ledger.window_usage(scope)
    assert (usage["spent_tokens"], usage["reserved_tokens"]) == (42, 0)
    assert ledger.open_reservations() == 0
    assert "database refused the row" in caplog.text
    res = ledger.reserve("p2", [scope], 500, 0.0, _row("p2"))
    ledger.settle(res, _row("p2", total_tokens=8))
    assert ledger.window_usage(scope)["spent_tokens"] == 50


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_liveness_is_by_heartbeat_not_pid(ledger: Ledger) -> None:
    """Two replicas on one hostname whose PIDs look dead to each other (PID
    namespaces) keep each other's reservations while both heartbeat."""
    scope = _scope()
    other = Ledger(ledger.url, LedgerSettings()).open(background=False)
    try:
        for i in range(10):
            other.reserve(f"live-{i}", [scope], 100, 0.0, _row(f"live-{i}"))
        with ledger.engine.begin() as conn:
            conn.execute(
                text("update tk_owners set host = :h, pid = :p where owner = :o"),
                {"h": ledger.host, "p": _dead_pid(), "o": other.owner},
            )
        assert ledger.owner != other.owner
        assert ledger.reconcile() == 0
        assert ledger.open_reservations() == 10
        # Still heartbeating a little later: still alive.
        other.heartbeat(now=time.time() + 20)
        assert ledger.reconcile(now=time.time() + 25) == 0
        # Silent past the TTL: reclaimed.
        silent = time.time() + 20 + ledger.settings.owner_ttl + 1
        assert ledger.reconcile(now=silent) == 10
        assert ledger.window_usage(scope)["reserved_tokens"] == 0
    finally:
        other.close()


def test_a_refusal_never_sums_the_requests(ledger: Ledger) -> None:
    """Team A over budget: its refusals are one UPDATE and one keyed SELECT."""
    scope = _scope(tokens=1_000)
    for i in range(50):
        ledger.record(_row(f"seed-{i}", total_tokens=30))  # 1,500 tokens already spent
    with pytest.raises(BudgetExceeded):  # creates the window row (the one sum)
        ledger.reserve("first", [scope], 10, 0.0, _row("first"))
    seen: list[str] = []

    def on_sql(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.lower())

    event.listen(ledger.engine, "before_cursor_execute", on_sql)
    try:
        for i in range(5):
            with pytest.raises(BudgetExceeded) as info:
                ledger.reserve(f"again-{i}", [scope], 10, 0.0, _row(f"again-{i}"))
            assert info.value.extra["spent_tokens"] == 1500
    finally:
        event.remove(ledger.engine, "before_cursor_execute", on_sql)
    assert seen, "no statements were captured"
    assert not [s for s in seen if "tk_requests" in s or "sum(" in s], seen
    # Team B is another row entirely.
    ledger.reserve("b", [_scope(team="beta")], 10, 0.0, _row("b", team="beta"))


def test_negative_or_absurd_usage_is_never_credited(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    scope = _scope(tokens=1_000)
    res = ledger.reserve("r1", [scope], 400, 1.0, _row("r1"))
    ledger.settle(res, _row("r1", total_tokens=300, cost_usd=0.5))
    res = ledger.reserve("r2", [scope], 400, 1.0, _row("r2"))
    with caplog.at_level(logging.WARNING, logger="tokenomy.budgets"):
        ledger.settle(
            res,
            _row("r2", prompt_tokens=-9_000, total_tokens=-5_000, cost_usd=-3.0),
            [Saving(technique="extractive", tokens=-50, usd=float("nan"))],
        )
    usage = ledger.window_usage(scope)
    assert (usage["spent_tokens"], usage["reserved_tokens"]) == (300, 0)
    assert usage["spent_usd"] == pytest.approx(0.5)
    [(total, cost, saved)] = _rows(
        ledger, "select total_tokens, cost_usd, saved_tokens from tk_requests where request_id='r2'"
    )
    assert (total, cost, saved) == (0, 0.0, 0)
    assert "clamped absurd figures" in caplog.text
    # Past the column's range is clamped too (PostgreSQL would refuse it).
    ledger.record(_row("huge", total_tokens=10**15, cost_usd=float("inf")))
    [(total, cost)] = _rows(
        ledger, "select total_tokens, cost_usd from tk_requests where request_id='huge'"
    )
    assert (total, cost) == (2**31 - 1, 0.0)


def test_settling_twice_charges_once(ledger: Ledger) -> None:
    scope = _scope()
    res = ledger.reserve("twice", [scope], 500, 0.0, _row("twice"))
    row = _row("twice", total_tokens=70)
    ledger.settle(res, row, [Saving(technique="extractive", tokens=5, usd=0.0)])
    ledger.settle(res, row, [Saving(technique="extractive", tokens=5, usd=0.0)])
    usage = ledger.window_usage(scope)
    assert (usage["spent_tokens"], usage["reserved_tokens"]) == (70, 0)
    assert _rows(ledger, "select count(*) from tk_requests where request_id='twice'") == [(1,)]


def test_owner_ids_are_random_per_instance(ledger_url: str) -> None:
    a, b = Ledger(ledger_url), Ledger(ledger_url)
    try:
        assert a.owner != b.owner and str(os.getpid()) not in a.owner
    finally:
        a.engine.dispose()
        b.engine.dispose()


def test_request_ids_that_cannot_be_stored_map_to_one_stable_id(ledger: Ledger) -> None:
    weird = "tk-" + uuid.uuid4().hex * 4 + "\x00"
    ledger.record(_row(weird, total_tokens=1))
    ledger.record(_row(weird, total_tokens=1))  # the same request: still one row
    [(rid,)] = _rows(ledger, "select request_id from tk_requests")
    assert rid.startswith("tk-h-") and len(rid) <= 64


def test_a_reserve_that_committed_unheard_is_released(ledger: Ledger) -> None:
    # The reserve's COMMIT landed but its connection broke before the proxy heard:
    # the proxy answered 503 and settled the request's row (no reservation known).
    # Reconciliation sees a reservation whose request is settled and releases it.
    scope = _scope(tokens=1000)
    held = ledger.reserve("tk-in-doubt", [scope], 400, 0.0, _row("tk-in-doubt"))
    ledger.settle(None, _row("tk-in-doubt", status=503, outcome="error"))
    assert ledger.open_reservations() == 1
    assert ledger.reconcile() == 1
    assert ledger.open_reservations() == 0
    usage = ledger.window_usage(scope)
    assert (usage["reserved_tokens"], usage["spent_tokens"]) == (0, 0)
    assert _rows(ledger, "select outcome, status from tk_requests") == [("error", 503)]
    # A live reservation (no row yet) is left alone.
    ledger.reserve("tk-live", [scope], 100, 0.0, _row("tk-live"))
    assert ledger.reconcile() == 0 and held.tokens == 400
