"""Database engines for the ledger: SQLite (WAL, BEGIN IMMEDIATE) or PostgreSQL.

`postgresql://` and `postgres://` URLs are rewritten to use psycopg 3. A
`?schema=NAME` query parameter on a PostgreSQL URL sets the search_path, so
several ledgers (or test runs) can share one database without colliding.

`unavailable()` is the one rule for "the database cannot be reached" (as
opposed to "this statement is wrong"): the request path fails closed with 503
on it, and settlement retries and then spools on it.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy import exc as sa_exc

from tokenomy.errors import LedgerUnavailable

P = ParamSpec("P")
T = TypeVar("T")

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
    raw_schema = parsed.query.get("schema")
    schema = raw_schema if isinstance(raw_schema, str) else None
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


# SQLite raises OperationalError for "cannot use the file now" and for plain
# mistakes alike (a bad ON CONFLICT target, a missing column), so its messages
# decide. A table that vanished means the file was replaced: gone, too.
_SQLITE_GONE = (
    "locked",
    "busy",
    "disk i/o",
    "unable to open",
    "disk is full",
    "not a database",
    "readonly",
    "no such table",
)


def unavailable(exc: BaseException) -> bool:
    """True when `exc` means the database cannot be used now, not that a statement is bad.

    Connection loss, refused connects, an exhausted pool, PostgreSQL's
    operational errors (shutdown, deadlock, serialisation failure, disk full),
    and SQLite's locked, full, unopenable or replaced file. A bad row (too
    long, a NUL byte) is a DataError and is not this.
    """
    if isinstance(exc, sa_exc.TimeoutError):  # the pool had no connection to give
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if isinstance(exc.orig, sqlite3.Error):
        message = str(exc.orig).lower()
        return any(part in message for part in _SQLITE_GONE)
    return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Turn "the database cannot be reached" into LedgerUnavailable (503, Retry-After)."""
    try:
        yield
    except sa_exc.SQLAlchemyError as exc:
        if unavailable(exc):
            raise LedgerUnavailable(
                f"The budget ledger is unavailable ({what} failed); "
                "the request was not sent. Retry shortly."
            ) from exc
        raise


def guarded(what: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """`guard` as a decorator for the request path's ledger and key-store methods."""

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        @wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            with guard(what):
                return fn(*args, **kwargs)

        return wrapper

    return decorate
