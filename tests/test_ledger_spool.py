"""Spend is never lost when the database blips: settles retry, then spool to a
local file that is replayed exactly once. Real outages only: PostgreSQL
connections terminated by the server or cut at TCP, a SQLite file that cannot
be opened or is full.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text

import budget_support
from budget_support import PG_BASE, Outage, query
from tokenomy.budgets.ledger import Ledger
from tokenomy.budgets.rows import RequestRow, Reservation, Saving, Scope
from tokenomy.budgets.settings import BudgetSpec, LedgerSettings
from tokenomy.errors import LedgerUnavailable

outage = budget_support.outage  # the fixture: SQLite, then PostgreSQL behind a relay
TEAM = Scope(kind="team", id="acme", spec=BudgetSpec(tokens=10**9, window="1d"))


def _row(request_id: str, **fields: Any) -> RequestRow:
    return RequestRow(request_id=request_id, ts=time.time(), team="acme", **fields)


def _settings(outage: Outage, **fields: Any) -> LedgerSettings:
    fields.setdefault("settle_backoff", 0.01)
    return LedgerSettings(spool_path=str(outage.spool), **fields)


def _open(outage: Outage, **fields: Any) -> Ledger:
    ledger = Ledger(outage.url, _settings(outage, **fields)).open(background=False)
    outage.watch(ledger.engine)
    return ledger


def _audit(url: str, ids: list[str], charged: int) -> None:
    """Every request has exactly one settled row, and the budget saw each once."""
    rows = query(url, "select request_id, outcome, total_tokens from tk_requests")
    by_id = {r[0]: r for r in rows}
    assert len(rows) == len(by_id)
    missing = [i for i in ids if i not in by_id]
    assert not missing, f"{len(missing)} requests have no row"
    assert {by_id[i][1] for i in ids} == {"ok"}
    [(spent, reserved)] = query(
        url, "select spent_tokens, reserved_tokens from tk_budget_usage where scope_id='acme'"
    )
    assert (spent, reserved) == (charged, 0)
    assert query(url, "select count(*) from tk_reservations") == [(0,)]


def _reserve_many(ledger: Ledger, n: int, prefix: str) -> list[tuple[Reservation, RequestRow]]:
    held = []
    for i in range(n):
        rid = f"{prefix}-{i}"
        held.append((ledger.reserve(rid, [TEAM], 1000, 0.0, _row(rid)), _row(rid)))
    return held


def _done(row: RequestRow, tokens: int) -> RequestRow:
    return row.model_copy(update={"total_tokens": tokens, "status": 200, "outcome": "ok"})


def test_settles_spool_while_the_database_is_gone_and_land_once(outage: Outage) -> None:
    ledger = _open(outage)
    try:
        held = _reserve_many(ledger, 20, "gone")
        outage.down()
        began = time.monotonic()
        for i, (res, row) in enumerate(held):
            ledger.settle(res, _done(row, 100 + i), [Saving(technique="lossless", tokens=3, usd=0)])
        # Bounded: only the first settle waits out the backoff; the rest spool at once.
        assert time.monotonic() - began < 10
        assert ledger.spool_depth() == 20
        with pytest.raises(LedgerUnavailable) as info:  # the request path fails closed
            ledger.reserve("refused", [TEAM], 10, 0.0, _row("refused"))
        assert info.value.status == 503 and info.value.code == "ledger_unavailable"
        assert info.value.headers["retry-after"]
        assert ledger.replay_spool() == 0  # still down: nothing lost, nothing landed
        assert ledger.spool_depth() == 20
        outage.up()
        assert ledger.replay_spool() == 20
        assert ledger.spool_depth() == 0
        ids = [row.request_id for _, row in held]
        _audit(outage.direct, ids, sum(100 + i for i in range(20)))
        # A second replay of the same entries (a crash before they were removed,
        # or a second replica sharing the file) charges nothing again.
        for i, (res, row) in enumerate(held):
            ledger.settle(res, _done(row, 100 + i))
        _audit(outage.direct, ids, sum(100 + i for i in range(20)))
        savings = query(outage.direct, "select count(*) from tk_savings")
        assert savings == [(20,)]
    finally:
        ledger.close()


def test_a_restarted_ledger_replays_the_spool_at_open(outage: Outage) -> None:
    ledger = _open(outage)
    held = _reserve_many(ledger, 5, "restart")
    outage.down()
    for res, row in held:
        ledger.settle(res, _done(row, 10))
    ledger.close()  # cannot deregister either: logged, not raised
    outage.up()
    again = _open(outage)
    try:
        assert again.spool_depth() == 0
        _audit(outage.direct, [row.request_id for _, row in held], 50)
    finally:
        again.close()


def test_a_spooled_settle_after_reconciliation_is_charged_once(outage: Outage) -> None:
    ledger = _open(outage)
    try:
        [(res, row)] = _reserve_many(ledger, 1, "late")
        outage.down()
        ledger.settle(res, _done(row, 77))
        outage.up()
        # Meanwhile the reservation expired and reconciliation released it.
        assert ledger.reconcile(now=time.time() + ledger.settings.reservation_ttl + 1) == 1
        assert query(outage.direct, "select outcome from tk_requests") == [("abandoned",)]
        assert ledger.replay_spool() == 1
        _audit(outage.direct, [row.request_id], 77)
    finally:
        ledger.close()


def test_the_background_loop_replays_when_the_database_returns(outage: Outage) -> None:
    ledger = Ledger(outage.url, _settings(outage, owner_ttl=0.6, reconcile_interval=0.2)).open(
        background=True
    )
    outage.watch(ledger.engine)
    try:
        held = _reserve_many(ledger, 3, "loop")
        outage.down()
        for res, row in held:
            ledger.settle(res, _done(row, 5))
        assert ledger.spool_depth() == 3
        outage.up()
        deadline = time.monotonic() + 15
        while ledger.spool_depth() and time.monotonic() < deadline:
            time.sleep(0.1)
        _audit(outage.direct, [row.request_id for _, row in held], 15)
    finally:
        ledger.close()


def test_a_full_sqlite_database_spools_instead_of_losing_rows(tmp_path) -> None:
    """SQLITE_FULL, for real: the database may not grow past its current pages."""
    spool = tmp_path / "spool.jsonl"
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger(url, LedgerSettings(spool_path=str(spool), settle_backoff=0.01))
    ledger.open(background=False)
    try:
        held = _reserve_many(ledger, 30, "full")
        with ledger.engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()

        def cap(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

        event.listen(ledger.engine, "connect", cap)
        ledger.engine.dispose()
        big = "x" * 3000  # rows that need new pages
        for i, (res, row) in enumerate(held):
            ledger.settle(res, _done(row, 10).model_copy(update={"error": big + str(i)}))
        assert ledger.spool_depth() > 0
        event.remove(ledger.engine, "connect", cap)
        ledger.engine.dispose()
        ledger.replay_spool()
        assert ledger.spool_depth() == 0
        _audit(url, [row.request_id for _, row in held], 300)
    finally:
        ledger.close()


@pytest.mark.postgres
def test_killed_connections_lose_no_spend_postgres(tmp_path) -> None:
    """pg_terminate_backend on the ledger's connections, again and again, while 60
    requests settle from 8 threads: afterwards every request has exactly one
    row and one charge, and nothing stays reserved."""
    gen = budget_support.pg_schema_url()
    url = next(gen)
    app = "tk_kill_" + uuid.uuid4().hex[:8]
    killer = create_engine(PG_BASE)
    try:
        ledger = Ledger(
            f"{url}&application_name={app}",
            LedgerSettings(spool_path=str(tmp_path / "spool.jsonl"), settle_backoff=0.02),
        ).open(background=False)
        held = _reserve_many(ledger, 60, "kill")
        stop = threading.Event()
        kills = 0

        def kill_loop() -> None:
            nonlocal kills
            with killer.connect() as conn:
                while not stop.wait(0.02):
                    # Only this ledger's connections (never another test's).
                    kills += len(
                        conn.execute(
                            text(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = 'test' AND pid <> pg_backend_pid() "
                                "AND application_name = :app"
                            ),
                            {"app": app},
                        ).all()
                    )
                    conn.commit()

        thread = threading.Thread(target=kill_loop, daemon=True)
        thread.start()

        def settle(item: tuple[int, tuple[Reservation, RequestRow]]) -> None:
            i, (res, row) = item
            ledger.settle(res, _done(row, 100 + i))
            time.sleep(0.005)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(settle, enumerate(held)))
        stop.set()
        thread.join()
        assert kills > 0
        ledger.replay_spool()
        assert ledger.spool_depth() == 0
        _audit(url, [row.request_id for _, row in held], sum(100 + i for i in range(60)))
        ledger.close()
    finally:
        killer.dispose()
        next(gen, None)


def test_key_store_fails_closed_when_the_database_is_gone(outage: Outage) -> None:
    from tokenomy.budgets.keys import KeyStore

    ledger = _open(outage)
    keys = KeyStore(ledger.engine, LedgerSettings())
    try:
        _, token = keys.create("acme")
        keys_fresh = KeyStore(ledger.engine, LedgerSettings())  # has not seen a key yet
        assert keys.verify(token) is not None
        outage.down()
        for call in (lambda: keys.verify(token), keys_fresh.auth_enabled):
            with pytest.raises(LedgerUnavailable) as info:
                call()
            assert info.value.status == 503 and info.value.code == "ledger_unavailable"
        outage.up()
        assert keys.verify(token) is not None and keys_fresh.auth_enabled()
    finally:
        ledger.close()
