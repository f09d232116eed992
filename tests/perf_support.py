"""Helpers for the reliability, soak, fuzz and security tests: real proxies, real ledgers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select

from tokenomy.budgets import schema
from tokenomy.testing.processes import Server

USER = [{"role": "user", "content": "hi"}]


def post(proxy: Server, body: Any, *, timeout: float = 30, **kwargs: Any) -> httpx.Response:
    return httpx.post(proxy.v1 + "/chat/completions", json=body, timeout=timeout, **kwargs)


def stream_text(response: httpx.Response) -> str:
    return "".join(response.iter_text())


def db_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'ledger.db'}"


def ledger_config(folder: Path, **ledger: Any) -> dict[str, Any]:
    return {"url": db_url(folder), **ledger}


def ledger_rows(url: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(schema.requests)).mappings()]
    finally:
        engine.dispose()


def open_reservations(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(schema.reservations)).scalar()
            return int(count or 0)
    finally:
        engine.dispose()


def upstream_count(upstream: Server, model: str) -> int:
    stats = httpx.get(upstream.url + "/_stats").json()
    return int(stats["by_model"].get(model, 0))
