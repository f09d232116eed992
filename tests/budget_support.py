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
