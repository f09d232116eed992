"""Database engines for the ledger: SQLite (WAL, BEGIN IMMEDIATE) or PostgreSQL.

`postgresql://` and `postgres://` URLs are rewritten to use psycopg 3. A
`?schema=NAME` query parameter on a PostgreSQL URL sets the search_path, so
several ledgers (or test runs) can share one database without colliding.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, text

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def normalize_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if parsed.get_backend_name() == "postgresql":
        return _postgres_engine(url)
    raise ValueError(f"unsupported ledger database {parsed.get_backend_name()!r}")


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN IMMEDIATE itself: the write
        # lock is taken at the start of the transaction, so a check-and-reserve
        # never races another writer and never fails on lock upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Reads (see `reader`) take no write lock: in WAL mode they never block.
        readonly = conn.get_execution_options().get("tk_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: str) -> Engine:
    parsed = make_url(url)
    schema = parsed.query.get("schema")
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}
    if schema:
        parsed = parsed.difference_update_query(["schema"])
        kwargs["connect_args"] = {"options": f"-csearch_path={schema}"}
    engine = create_engine(parsed, **kwargs)
    if schema:
        if not _IDENT.fullmatch(schema):
            raise ValueError(f"schema name {schema!r} must be a plain identifier")
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    return engine


def reader(engine: Engine) -> Engine:
    """The same engine (and pool) for read-only work: on SQLite a deferred BEGIN."""
    return engine.execution_options(tk_readonly=True)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
