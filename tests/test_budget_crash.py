"""Crash reconciliation: kill -9 a proxy mid-request; nothing stays reserved,
nothing is charged twice, and the request ends as exactly one ledger row.

SQLite: the crashed proxy is restarted and reconciles once the dead
instance's heartbeat is older than owner_ttl (liveness is by heartbeat only,
never by PID). PostgreSQL: a second replica sharing the database reconciles
while it keeps serving.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

import budget_support
from budget_support import sqlite_url
from test_budget_proxy import chat, post, proxy_config
from tokenomy.budgets.db import make_engine
from tokenomy.testing.processes import Server, run_proxy, start_proxy

pg_url = budget_support.pg_url  # the fixture: a fresh PostgreSQL schema


def _query(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def _wait_for_reservation(engine: Engine, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _query(engine, "select request_id from tk_reservations")
        if rows:
            return str(rows[0][0])
        time.sleep(0.05)
    raise AssertionError("the slow request never reserved its budget")


def _hang_a_request(proxy: Server) -> threading.Thread:
    """Send a request the test upstream holds for 30 s (it will die with the proxy)."""

    def send() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the proxy is killed under it
            httpx.post(
                proxy.v1 + "/chat/completions",
                json=chat("crash", model="fault:timeout"),
                timeout=60,
            )

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def _budget_row(engine: Engine) -> tuple[int, int]:
    rows = _query(
        engine, "select spent_tokens, reserved_tokens from tk_budget_usage where scope_id='crash'"
    )
    return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)


def _wait_released(engine: Engine, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while _query(engine, "select count(*) from tk_reservations")[0][0] and (
        time.monotonic() < deadline
    ):
        time.sleep(0.2)


def _assert_reconciled(engine: Engine, request_id: str) -> None:
    assert _query(engine, "select count(*) from tk_reservations")[0][0] == 0
    assert _budget_row(engine) == (0, 0)
    rows = _query(
        engine, "select outcome, total_tokens from tk_requests where request_id=:r", r=request_id
    )
    assert rows == [("abandoned", 0)]


def _config(upstream: Server, url: str) -> dict[str, Any]:
    config = proxy_config(upstream, url)
    config["teams"]["crash"] = {"tokens": 1_000_000, "window": "1d"}
    return config


def test_kill_mid_request_then_restart_sqlite(upstream: Server, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    config = _config(upstream, url)
    engine = make_engine(url)
    victim = start_proxy(config, folder=tmp_path)
    try:
        _hang_a_request(victim)
        request_id = _wait_for_reservation(engine)
        assert _budget_row(engine)[1] > 0  # held while the backend works
    finally:
        victim.process.kill()  # SIGKILL: no cleanup of any kind runs
        victim.process.wait()
    # The reservation outlived its process ...
    assert _query(engine, "select count(*) from tk_reservations")[0][0] == 1
    # ... until the restarted proxy reconciles it (at start, or at its next
    # reconcile once the dead instance's heartbeat is older than owner_ttl).
    with run_proxy(config, folder=tmp_path) as again:
        _wait_released(engine)
        _assert_reconciled(engine, request_id)
        ok = post(again, chat("crash"))
        assert ok.status_code == 200
        spent, held = _budget_row(engine)
        assert (spent, held) == (ok.json()["usage"]["total_tokens"], 0)
        assert _query(engine, "select count(*) from tk_requests where team='crash'")[0][0] == 2
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_kill_one_replica_the_other_reconciles_postgres(
    upstream: Server, tmp_path: Path, pg_url: str
) -> None:
    engine = make_engine(pg_url)
    try:
        config = _config(upstream, pg_url)
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        with run_proxy(config, folder=tmp_path / "b") as survivor:
            victim = start_proxy(config, folder=tmp_path / "a")
            try:
                _hang_a_request(victim)
                request_id = _wait_for_reservation(engine)
            finally:
                victim.process.kill()
                victim.process.wait()
            # The survivor's periodic reconcile (every 1 s here) releases it.
            _wait_released(engine)
            _assert_reconciled(engine, request_id)
            assert post(survivor, chat("crash")).status_code == 200
    finally:
        engine.dispose()
