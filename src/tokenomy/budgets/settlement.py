"""The ledger's write transactions: settle one request, release one stale reservation.

Each runs alone in its own transaction, so one request's trouble stays its own.
Lock order is the same everywhere (the reservation row, then the request row,
then the budget rows team before key), so a settle and a reconciliation of
the same request wait on each other instead of deadlocking.

- `settle_tx`: delete the reservation (if reconciliation has not), write the
  request row marked `settled` unless a settle already did (then roll back:
  a retried or replayed settle charges nothing twice), move the estimate from
  reserved to the real spend, and store the savings.
- `release_tx`: delete a stale reservation, give its hold back, charge what
  its last checkpoint says a stream delivered, and leave an `abandoned` row
  with those figures (not `settled`: a late settle by a live owner replaces
  it, and is charged its own figures minus what the release charged).

`with_fallback` runs either with the cleaned row, then a minimal row, then no
row, so a row the database refuses never keeps a reservation held.

`Settler` lands a settle: at once, else after retries with backoff, else via
the local spool, replayed later; idempotency makes every path charge once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, false, select, update
from sqlalchemy.exc import SQLAlchemyError

from tokenomy.budgets import schema
from tokenomy.budgets.db import unavailable
from tokenomy.budgets.rows import RequestRow, Reservation, Saving
from tokenomy.budgets.sanitize import clean_row, clean_savings, minimal_row
from tokenomy.budgets.settings import LedgerSettings
from tokenomy.budgets.spool import Spool
from tokenomy.budgets.statements import Statements, scope_key
from tokenomy.budgets.windows import day_of

log = logging.getLogger(__name__)
T = TypeVar("T")

_USAGE = schema.budget_usage


class AlreadySettled(Exception):
    """Raised inside a settle transaction to roll it back: a settle already landed."""


def row_values(row: RequestRow, *, settled: bool) -> dict[str, Any]:
    values = row.model_dump()
    values["tags"] = json.dumps(row.tags) if row.tags else None
    # ASCII JSON: whatever a client put in a step name or a detail, the text column
    # never receives a NUL byte or a lone surrogate.
    values["events"] = json.dumps(row.events, default=str) if row.events else None
    values["day"] = day_of(row.ts)
    values["settled"] = settled
    return values


def settle_tx(
    conn: Connection,
    sql: Statements,
    reservation: Reservation | None,
    charge: RequestRow,
    row: RequestRow | None,
    savings: list[Saving],
) -> None:
    """One settle: charge `charge`'s figures and write `row` (None: write no row).

    Raises AlreadySettled (the caller's transaction then rolls back) when a
    settle of this request already landed.
    """
    gone = 0
    charged_t, charged_u = 0, 0.0  # what a release by reconciliation charged already
    if reservation is not None and reservation.scopes:
        gone = conn.execute(sql.drop_reservation, {"rid": reservation.id}).rowcount
        if not gone:
            r = schema.requests.c
            prior = conn.execute(
                select(r.total_tokens, r.cost_usd).where(
                    r.request_id == charge.request_id, r.settled == false()
                )
            ).first()
            if prior is not None:
                charged_t, charged_u = int(prior[0] or 0), float(prior[1] or 0.0)
    if row is not None:
        if conn.execute(sql.settle_row, row_values(row, settled=True)).first() is None:
            raise AlreadySettled(row.request_id)
        if savings:
            conn.execute(
                sql.add_savings,
                [
                    {
                        "request_id": row.request_id,
                        "technique": s.technique,
                        "ts": row.ts,
                        "team": row.team,
                        "tokens_saved": s.tokens,
                        "usd_saved": s.usd,
                    }
                    for s in savings
                ],
            )
    if reservation is not None and reservation.scopes:
        # If reconciliation released the hold already, only the spend is added.
        held_t, held_u = (reservation.tokens, reservation.usd) if gone else (0, 0.0)
        for kind, scope_id, start in reservation.scopes:
            params = scope_key(kind, scope_id, start)
            params.update(
                held_tokens=held_t,
                held_usd=held_u,
                add_tokens=charge.total_tokens - charged_t,
                add_usd=charge.cost_usd - charged_u,
            )
            conn.execute(sql.charge, params)


def release_tx(
    conn: Connection,
    sql: Statements,
    res: Mapping[str, Any],
    row: RequestRow | None,
    charge: tuple[int, float] = (0, 0.0),
) -> bool:
    """Release one stale reservation, charging `charge` (tokens, USD: what its last
    checkpoint recorded); False when someone else already did."""
    if not conn.execute(sql.drop_reservation, {"rid": res["id"]}).rowcount:
        return False
    c = _USAGE.c
    for kind, scope_id, start in json.loads(res["scopes"]):
        conn.execute(
            update(_USAGE)
            .where(c.scope == kind, c.scope_id == scope_id, c.window_start == start)
            .values(
                reserved_tokens=c.reserved_tokens - res["tokens"],
                reserved_usd=c.reserved_usd - res["usd"],
                spent_tokens=c.spent_tokens + charge[0],
                spent_usd=c.spent_usd + charge[1],
            )
        )
    if row is not None:
        conn.execute(sql.insert_row_once, row_values(row, settled=False))
    return True


def abandoned_row(res: Mapping[str, Any]) -> RequestRow:
    """The row a released reservation leaves; built from its columns if its JSON is bad."""
    note = f"reservation released by reconciliation (owner {res['owner']})"
    fields = {"outcome": "abandoned", "status": 499, "error": note, "request_id": res["request_id"]}
    try:
        row = RequestRow.model_validate_json(res["row"])
    except ValueError as exc:
        log.error("ledger: reservation %s holds an unreadable row (%s)", res["id"], exc)
        row = RequestRow(request_id=res["request_id"], ts=res["created_at"], team="unknown")
        return minimal_row(row, "unreadable reservation row").model_copy(update=fields)
    return clean_row(row.model_copy(update=fields))


def with_fallback(
    engine: Engine, row: RequestRow, body: Callable[[Connection, RequestRow | None], T], what: str
) -> T:
    """Run `body` in a transaction with the row; if the database refuses the row
    (not: cannot be reached), again with a minimal row, then with none.

    An unreachable database raises at once: the caller retries or spools.
    """
    candidate: RequestRow | None = row
    while True:
        try:
            with engine.begin() as conn:
                return body(conn, candidate)
        except SQLAlchemyError as exc:
            if unavailable(exc) or candidate is None:
                raise
            reason = str(exc).splitlines()[0][:300]
            log.error(
                "ledger: %s of request %s: the database refused the row (%s); retrying with %s",
                what,
                row.request_id,
                reason,
                "a minimal row" if candidate is row else "no row",
            )
            candidate = minimal_row(row, reason) if candidate is row else None


class Settler:
    """How a settle lands: now, after retries with backoff, or later from the spool.

    Runs in the ledger's worker thread (never on the event loop), so the
    backoff delays only the settle that waits. After a settle found the
    database unreachable (`down`), later settles try once and spool at once
    instead of each waiting out the backoff; any success clears it.
    """

    def __init__(self, engine: Engine, sql: Statements, settings: LedgerSettings, spool: Spool):
        self.engine = engine
        self.sql = sql
        self.settings = settings
        self.spool = spool
        self.down = False
        self._replaying = threading.Lock()

    def settle(
        self, reservation: Reservation | None, row: RequestRow, savings: list[Saving]
    ) -> str:
        """Land one settle; returns how: `landed`, `spooled` (the database is down:
        replayed later) or `rejected` (the database refused even a minimal row: kept
        in the spool's reject file). The request log and /metrics count the last two."""
        row = clean_row(row)
        clean = clean_savings(row.request_id, savings)
        if clean:  # the row's totals are the sum of its savings, as stored
            saved = {
                "saved_tokens": sum(s.tokens for s in clean),
                "saved_usd": sum(s.usd for s in clean),
            }
            if saved != {"saved_tokens": row.saved_tokens, "saved_usd": row.saved_usd}:
                row = row.model_copy(update=saved)
        retries = 0 if self.down else self.settings.settle_retries
        try:
            self.land(reservation, row, clean, retries)
        except SQLAlchemyError as exc:
            entry = _entry(reservation, row, clean)
            if not unavailable(exc):
                log.error(
                    "ledger: settle of %s cannot be stored: %s", row.request_id, _first_line(exc)
                )
                self._keep(entry, reject=_first_line(exc))
                return "rejected"
            self.down = True
            log.warning(
                "ledger: database unavailable (%s); settle of %s spooled to %s",
                _first_line(exc),
                row.request_id,
                self.spool.path,
            )
            self._keep(entry)
            return "spooled"
        return "landed"

    def land(
        self, reservation: Reservation | None, row: RequestRow, savings: list[Saving], retries: int
    ) -> None:
        """Apply one settle, retrying an unreachable database; raises if it stays so."""
        delay = self.settings.settle_backoff
        for attempt in range(retries + 1):
            try:
                with_fallback(
                    self.engine,
                    row,
                    lambda conn, r: settle_tx(conn, self.sql, reservation, row, r, savings),
                    "settle",
                )
                self.down = False
                return
            except AlreadySettled:
                log.info("ledger: settle of %s had landed already; nothing charged", row.request_id)
                return
            except SQLAlchemyError as exc:
                if not unavailable(exc) or attempt == retries:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _keep(self, entry: dict[str, Any], reject: str | None = None) -> None:
        try:
            if reject is None:
                self.spool.append(entry)
            else:
                self.spool.reject(entry, reject)
        except OSError:
            # Nowhere left to keep it: this log line is the last copy of the spend.
            log.critical(
                "ledger: spend lost, spool %s failed: %s",
                self.spool.path,
                json.dumps(entry),
                exc_info=True,
            )

    def replay(self) -> int:
        """Land spooled settles in order; stops at the first that finds the database down."""
        if not self._replaying.acquire(blocking=False):
            return 0  # another thread is replaying
        try:
            try:
                pending = self.spool.pending()
            except OSError as exc:  # an unreadable spool must not stop the ledger
                log.error("ledger: cannot read the spool %s: %s", self.spool.path, exc)
                return 0
            landed: set[str] = set()
            for entry in pending:
                try:
                    found = entry.get("reservation")
                    reservation = Reservation.model_validate(found) if found else None
                    row = RequestRow.model_validate(entry["row"])
                    savings = [Saving.model_validate(s) for s in entry.get("savings") or []]
                except (KeyError, TypeError, ValueError) as exc:
                    self._keep(entry, reject=f"unreadable entry: {exc}")
                    landed.add(entry["id"])
                    continue
                try:
                    self.land(reservation, row, savings, retries=0)
                except SQLAlchemyError as exc:
                    if unavailable(exc):
                        break  # still down: the rest waits for the next round
                    self._keep(entry, reject=_first_line(exc))
                landed.add(entry["id"])
            try:
                self.spool.remove(landed)
            except OSError as exc:  # they stay and land again later: a no-op, by request id
                log.error("ledger: cannot rewrite the spool %s: %s", self.spool.path, exc)
            if landed:
                log.warning("ledger: replayed %d spooled settle(s)", len(landed))
            return len(landed)
        finally:
            self._replaying.release()


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


def _entry(
    reservation: Reservation | None, row: RequestRow, savings: list[Saving]
) -> dict[str, Any]:
    return {
        "reservation": reservation.model_dump(mode="json") if reservation else None,
        "row": row.model_dump(mode="json"),
        "savings": [s.model_dump(mode="json") for s in savings],
    }
