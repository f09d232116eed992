"""Versioned migrations: an ordered list, each applied once, recorded in
`tk_schema_version`. Add a migration by appending a function; never edit one
that has shipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, Table, case, inspect, select, text, update

from tokenomy.budgets import schema

Migration = Callable[[Connection], None]


def _m001_initial(conn: Connection) -> None:
    tables = [
        schema.requests,
        schema.savings,
        schema.budget_usage,
        schema.reservations,
        schema.owners,
        schema.api_keys,
    ]
    for table in tables:
        table.create(conn, checkfirst=True)


def _m002_buckets_and_settled(conn: Connection) -> None:
    """The input buckets beside `prompt_tokens`/`cached_tokens`, `estimated`, and `settled`.

    `settled` marks a row written by a settle (not by reconciliation): it makes
    a retried or replayed settle charge nothing twice. Existing rows were
    settled unless reconciliation abandoned them; their uncached input is
    all input minus cache reads (the ledger kept no cache writes before).
    Migration 1 creates tables from the current schema module, so on a new
    database these columns exist already: only the missing ones are added.
    """
    table = schema.requests
    have = {column["name"] for column in inspect(conn).get_columns(table.name)}
    added = []
    for name in (
        "uncached_tokens",
        "cache_write_tokens",
        "cache_write_1h_tokens",
        "estimated",
        "settled",
    ):
        if name in have:
            continue
        column = table.c[name]
        kind = column.type.compile(dialect=conn.dialect)
        default = column.server_default.arg  # type: ignore[union-attr]
        if not isinstance(default, str):
            default = str(default.compile(dialect=conn.dialect))
        conn.execute(
            text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind} NOT NULL DEFAULT {default}")
        )
        added.append(name)
    c = table.c
    if "uncached_tokens" in added:
        rest = c.prompt_tokens - c.cached_tokens
        conn.execute(update(table).values(uncached_tokens=case((rest > 0, rest), else_=0)))
    if "settled" in added:
        conn.execute(update(table).where(c.outcome == "abandoned").values(settled=False))


def _add_missing_columns(conn: Connection, table: Table, names: tuple[str, ...]) -> list[str]:
    """ALTER TABLE ... ADD COLUMN for each of `names` the table lacks; returns those added."""
    have = {column["name"] for column in inspect(conn).get_columns(table.name)}
    added = []
    for name in names:
        if name in have:
            continue
        column = table.c[name]
        kind = column.type.compile(dialect=conn.dialect)
        clause = ""
        if column.server_default is not None:
            default = column.server_default.arg  # type: ignore[attr-defined]
            if not isinstance(default, str):
                default = str(default.compile(dialect=conn.dialect))
            clause = f" NOT NULL DEFAULT {default}"
        conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}{clause}"))
        added.append(name)
    return added


def _m003_response_cache_and_events(conn: Connection) -> None:
    """The response cache's table, the secrets table, and two request columns:
    `from_cache` (answered by the response cache) and `events` (what each stage did,
    for the dashboard's request view). Creates or adds only what is missing."""
    schema.response_cache.create(conn, checkfirst=True)
    schema.secrets.create(conn, checkfirst=True)
    _add_missing_columns(conn, schema.requests, ("from_cache", "events"))


def _m004_fallback(conn: Connection) -> None:
    """`tk_requests.fallback`: which alias failed and which answered ("a -> b").
    Adds the column only where it is missing (a new database has it already)."""
    _add_missing_columns(conn, schema.requests, ("fallback",))


MIGRATIONS: list[Migration] = [
    _m001_initial,
    _m002_buckets_and_settled,
    _m003_response_cache_and_events,
    _m004_fallback,
]


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table(schema.schema_version.name):
        return 0
    value = conn.execute(
        select(schema.schema_version.c.version)
        .order_by(schema.schema_version.c.version.desc())
        .limit(1)
    ).scalar()
    return int(value or 0)


def migrate(engine: Engine) -> int:
    """Bring the database to the newest version; safe to run from many processes."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Serialise concurrent starters (two replicas booting at once).
            conn.execute(text("SELECT pg_advisory_xact_lock(7305820211)"))
        schema.schema_version.create(conn, checkfirst=True)
        version = current_version(conn)
        for number, migration in enumerate(MIGRATIONS, start=1):
            if number <= version:
                continue
            migration(conn)
            conn.execute(
                schema.schema_version.insert().values(version=number, applied_at=time.time())
            )
            version = number
    return version
