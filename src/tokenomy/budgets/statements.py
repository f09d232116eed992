"""The ledger's hot-path SQL, built once per dialect with bind parameters.

Building a Core statement costs more Python time than SQLite takes to run it;
prebuilt statements go straight to SQLAlchemy's compiled cache.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, false, update
from sqlalchemy.dialects import postgresql, sqlite

from tokenomy.budgets import schema

_USAGE = schema.budget_usage
_RES = schema.reservations


def dialect_insert(conn: Connection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


class Statements:
    """The hot-path statements, built once with bind parameters.

    Building a Core statement costs more Python time than SQLite takes to run
    it; prebuilt statements hit SQLAlchemy's compiled cache directly.
    """

    def __init__(self, dialect: str):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        c = _USAGE.c
        key = and_(
            c.scope == bindparam("k_scope"),
            c.scope_id == bindparam("k_id"),
            c.window_start == bindparam("k_start"),
        )
        self.take: dict[tuple[bool, bool], Any] = {}
        for has_tokens in (False, True):
            for has_usd in (False, True):
                conditions = [key]
                if has_tokens:
                    conditions.append(
                        c.spent_tokens + c.reserved_tokens + bindparam("n_tokens")
                        <= bindparam("lim_tokens")
                    )
                if has_usd:
                    conditions.append(
                        c.spent_usd + c.reserved_usd + bindparam("n_usd") <= bindparam("lim_usd")
                    )
                self.take[(has_tokens, has_usd)] = (
                    update(_USAGE)
                    .where(*conditions)
                    .values(
                        reserved_tokens=c.reserved_tokens + bindparam("n_tokens"),
                        reserved_usd=c.reserved_usd + bindparam("n_usd"),
                    )
                    .returning(c.spent_tokens, c.reserved_tokens, c.spent_usd, c.reserved_usd)
                )
        self.charge = (
            update(_USAGE)
            .where(key)
            .values(
                reserved_tokens=c.reserved_tokens - bindparam("held_tokens"),
                reserved_usd=c.reserved_usd - bindparam("held_usd"),
                spent_tokens=c.spent_tokens + bindparam("add_tokens"),
                spent_usd=c.spent_usd + bindparam("add_usd"),
            )
        )
        self.add_reservation = _RES.insert()
        self.drop_reservation = delete(_RES).where(_RES.c.id == bindparam("rid"))
        # A live reservation grows (more upstream calls) or records what a stream
        # delivered so far (the row reconciliation writes, and charges, if we die).
        self.grow_reservation = (
            update(_RES)
            .where(_RES.c.id == bindparam("rid"))
            .values(tokens=_RES.c.tokens + bindparam("g_tokens"),
                    usd=_RES.c.usd + bindparam("g_usd"))
        )
        self.checkpoint = update(_RES).where(_RES.c.id == bindparam("rid")).values(
            row=bindparam("g_row"))
        requests = schema.requests
        upsert = insert(requests)
        columns = [col.name for col in requests.columns if col.name not in ("id",)]
        # A settle writes its row unless a settle already did: the `settled` mark
        # makes a retried or replayed settle a no-op (no row returned), while the
        # `abandoned` row reconciliation left (settled = false) is replaced.
        # RETURNING, not rowcount: psycopg reports -1 for this upsert.
        self.settle_row = upsert.on_conflict_do_update(
            index_elements=["request_id"],
            set_={name: upsert.excluded[name] for name in columns if name != "request_id"},
            where=requests.c.settled == false(),
        ).returning(requests.c.id)
        self.insert_row_once = insert(requests).on_conflict_do_nothing(
            index_elements=["request_id"]
        )
        # Written only by the settle that wrote the row; an upsert all the same.
        savings = insert(schema.savings)
        self.add_savings = savings.on_conflict_do_update(
            index_elements=["request_id", "technique"],
            set_={
                "tokens_saved": savings.excluded.tokens_saved,
                "usd_saved": savings.excluded.usd_saved,
            },
        )


def scope_key(kind: str, scope_id: str, start: int) -> dict[str, Any]:
    return {"k_scope": kind, "k_id": scope_id, "k_start": start}
