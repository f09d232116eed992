"""Shared helpers for the budget/ledger/report tests: real SQLite files and a
real PostgreSQL schema per test (dropped afterwards), and real outages of both."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from tokenomy.testing.relay import Relay

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


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test (skipped when PostgreSQL is not reachable)."""
    yield from pg_schema_url()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One ledger database per test: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        yield from pg_schema_url()


class Outage:
    """A ledger database that really goes away and comes back.

    PostgreSQL: the ledger connects through a TCP relay; `down()` refuses new
    connections and resets the open ones. SQLite: `down()` closes the ledger's
    connections and puts a plain file where the database's folder was, so
    every open fails ("unable to open database file"); `up()` puts it back.
    `url` is what the ledger uses; `direct` reaches the database around the
    outage (to check what landed).
    """

    def __init__(self, kind: str, folder: Path, pg_url: str | None = None):
        self.kind = kind
        self.folder = folder / "db"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.relay: Relay | None = None
        if kind == "sqlite":
            self.url = self.direct = sqlite_url(self.folder)
        else:
            assert pg_url is not None
            self.relay = Relay(5432).up()
            self.direct = pg_url
            self.url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{self.relay.port}")
        self.spool = folder / "spool.jsonl"
        self._engines: list[Engine] = []

    def watch(self, engine: Engine) -> None:
        """Engines whose pooled SQLite connections must close when the file goes."""
        self._engines.append(engine)

    def down(self) -> None:
        if self.relay is not None:
            self.relay.down()
            return
        for engine in self._engines:
            engine.dispose()
        shutil.move(self.folder, self.folder.with_name("db-away"))
        self.folder.write_text("not a folder")

    def up(self) -> None:
        if self.relay is not None:
            self.relay.up()
            return
        self.folder.unlink()
        shutil.move(self.folder.with_name("db-away"), self.folder)

    def close(self) -> None:
        if self.relay is not None:
            self.relay.down()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    if request.param == "sqlite":
        found = Outage("sqlite", tmp_path)
        yield found
        return
    gen = pg_schema_url()
    found = Outage("postgres", tmp_path, next(gen))
    try:
        yield found
    finally:
        found.close()
        next(gen, None)


def query(url: str, sql: str, **params: Any) -> list[Any]:
    engine = make_engine_for(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())
    finally:
        engine.dispose()


def make_engine_for(url: str) -> Engine:
    from tokenomy.budgets.db import make_engine

    return make_engine(url)


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
