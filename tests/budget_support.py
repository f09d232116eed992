"""Shared helpers for the budget/ledger/report tests: real SQLite files and a
real PostgreSQL schema per test (dropped afterwards)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_available() -> bool:
    try:
        engine = create_engine(PG_BASE, connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'ledger.db'}"


def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose tables live in a fresh schema; dropped on exit."""
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432 (database 'test')")
    schema = "tk_test_" + uuid.uuid4().hex[:12]
    yield f"{PG_BASE}?schema={schema}"
    engine = create_engine(PG_BASE)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def seed_rows(ledger: object, count: int = 300, seed: int = 7, now: float | None = None) -> list:
    """Deterministic request rows over the last ~10 days for three teams, with savings."""
    import random
    import time

    from tokenomy.budgets.rows import RequestRow, Saving

    rng = random.Random(seed)
    now = time.time() if now is None else now
    teams = ["alpha", "beta", "<b>gamma & co</b>"]
    steps = ["retrieve", "plan", "answer", None]
    models = ["gpt-4o-mini", "gpt-4o", "echo"]
    rows = []
    for i in range(count):
        prompt = rng.randint(50, 5000)
        sent = int(prompt * rng.uniform(0.3, 1.0))
        completion = rng.randint(1, 800)
        reasoning = rng.randint(0, completion // 2)
        saved = {"extractive": prompt - sent} if prompt > sent else {}
        if rng.random() < 0.3:
            saved["lossless"] = rng.randint(1, 40)
        outcome = rng.choices(["ok", "error", "refused"], [0.85, 0.1, 0.05])[0]
        if outcome != "ok":
            sent = completion = reasoning = 0
            saved = {}
        cost = sent * 1.5e-7 + completion * 6e-7
        savings = [Saving(technique=t, tokens=n, usd=n * 1.5e-7) for t, n in saved.items()]
        row = RequestRow(
            request_id=f"seed-{seed}-{i}",
            ts=now - rng.uniform(0, 10 * 86400),
            team=rng.choice(teams),
            key_id=rng.choice(["k1", "k2", None]),
            step=rng.choice(steps),
            model=rng.choice(models),
            prompt_tokens_original=prompt,
            prompt_tokens=sent,
            completion_tokens=completion,
            reasoning_tokens=reasoning,
            total_tokens=sent + completion,
            cost_usd=cost,
            saved_tokens=sum(s.tokens for s in savings),
            saved_usd=sum(s.usd for s in savings),
            latency_ms=rng.uniform(5, 900),
            status={"ok": 200, "error": 502, "refused": 429}[outcome],
            outcome=outcome,
        )
        ledger.record(row, savings)  # type: ignore[attr-defined]
        rows.append((row, savings))
    return rows
