"""Reconciliation: release the reservations nobody will settle, one transaction each.

A reservation is nobody's when it expired (`reservation_ttl`), when its owner's
heartbeat is older than `owner_ttl` (liveness by heartbeat only: PIDs mean
nothing across containers), when its owner never registered, or when its
request already has its settled row (the reserve committed while the
connection broke, so its owner answered 503 and wrote that row instead).

Each release gives the hold back, charges what the reservation's last
checkpoint says a stream had delivered, and leaves an `abandoned` row with
those figures; one that cannot be written is logged and skipped, never holding
up the others.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, true
from sqlalchemy.exc import SQLAlchemyError

from tokenomy.budgets import schema
from tokenomy.budgets.db import unavailable
from tokenomy.budgets.settlement import abandoned_row, release_tx, with_fallback
from tokenomy.budgets.statements import Statements

log = logging.getLogger("tokenomy.budgets.ledger")

_RES = schema.reservations


def dead_owners(conn: Connection, me: str, owner_ttl: float, now: float) -> set[str]:
    """Owners whose heartbeat is older than owner_ttl. Nothing else says "dead"."""
    o = schema.owners.c
    rows = conn.execute(select(o.owner).where(o.heartbeat_at < now - owner_ttl)).scalars()
    return {owner for owner in rows if owner != me}


def reconcile(engine: Engine, reader: Engine, sql: Statements, me: str, owner_ttl: float,
              now: float) -> int:
    """Release every reservation nobody will settle; returns how many were released."""
    with reader.connect() as conn:
        dead = dead_owners(conn, me, owner_ttl, now)
        cond = _RES.c.expires_at < now
        if dead:
            cond = cond | _RES.c.owner.in_(dead)
        # Reservations of an owner that never registered (or was already removed).
        cond = cond | _RES.c.owner.not_in(select(schema.owners.c.owner))
        # A reservation whose request already has its settled row.
        r = schema.requests.c
        cond = cond | _RES.c.request_id.in_(
            select(r.request_id).where(r.request_id == _RES.c.request_id, r.settled == true()))
        stale = conn.execute(select(_RES).where(cond)).mappings().all()
    released = 0
    for res in stale:
        try:
            found = dict(res)
            row = abandoned_row(found)
            # A stream that checkpointed is charged what it had delivered.
            charge = (row.total_tokens, row.cost_usd)

            def release(conn: Any, r: Any, found: dict[str, Any] = found,
                        charge: tuple[int, float] = charge) -> Any:
                return release_tx(conn, sql, found, r, charge)

            if with_fallback(engine, row, release, "reconcile"):
                released += 1
        except SQLAlchemyError as exc:
            if unavailable(exc):
                raise
            log.error("ledger: could not release reservation %s: %s", res["id"], exc)
    if dead:
        with engine.begin() as conn:
            conn.execute(delete(schema.owners).where(schema.owners.c.owner.in_(dead)))
    if released:
        log.warning("ledger: released %d stale reservation(s)", released)
    return released
