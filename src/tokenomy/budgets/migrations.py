"""Versioned migrations: an ordered list, each applied once, recorded in
`tk_schema_version`. Add a migration by appending a function; never edit one
that has shipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, case, inspect, select, text, update

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


def _m003_fallback(conn: Connection) -> None:
    """`tk_requests.fallback`: which alias failed and which answered ("a -> b").

    Idempotent: a new database has the column from migration 1 already.
    """
    table = schema.requests
    have = {column["name"] for column in inspect(conn).get_columns(table.name)}
    if "fallback" not in have:
        kind = table.c.fallback.type.compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN fallback {kind}"))


MIGRATIONS: list[Migration] = [_m001_initial, _m002_buckets_and_settled, _m003_fallback]


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
