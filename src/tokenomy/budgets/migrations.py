"""Versioned migrations: an ordered list, each applied once, recorded in
`tk_schema_version`. Add a migration by appending a function; never edit one
that has shipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, select, text

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


MIGRATIONS: list[Migration] = [_m001_initial]


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
