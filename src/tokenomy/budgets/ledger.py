"""The ledger: atomic budget reservations, settlement, and one row per request.

Reserve, settle and reconcile each run in one database transaction:

- reserve: for every scope (team, then key: always the same order, so two
  transactions never wait on each other in a cycle) one conditional
  `UPDATE tk_budget_usage SET reserved = reserved + :n WHERE spent + reserved
  + :n <= :limit RETURNING ...`. On PostgreSQL the UPDATE takes the row lock
  and re-checks the condition after any wait; on SQLite the transaction
  starts with BEGIN IMMEDIATE. If any scope refuses, the transaction rolls
  back and nothing is held. The reservation row records its owner (this
  process) and an expiry.
- settle: delete the reservation (if the reconciler has not already), move the
  estimate from reserved to the real spend, and upsert the request row, all
  in one transaction: nothing is charged twice or lost.
- reconcile: reservations past their expiry, or owned by a process that is
  gone (no heartbeat, or a dead pid on this host), are released and their
  request gets an `abandoned` row (a later settle by a live owner replaces it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, delete, func, select, update

from tokenomy.budgets import schema
from tokenomy.budgets.db import is_sqlite, make_engine, reader
from tokenomy.budgets.limits import refusal, soft_hit
from tokenomy.budgets.migrations import migrate
from tokenomy.budgets.rows import RequestRow, Reservation, Saving, Scope, SoftHit
from tokenomy.budgets.settings import LedgerSettings
from tokenomy.budgets.statements import Statements, dialect_insert, scope_key
from tokenomy.budgets.windows import day_of, window_bounds

log = logging.getLogger(__name__)
T = TypeVar("T")

_USAGE = schema.budget_usage
_RES = schema.reservations


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child its parent has not reaped yet is a zombie: dead to us
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class Ledger:
    """A handle on the ledger database, shared by the stages of one process."""

    def __init__(
        self, url: str, settings: LedgerSettings | None = None, *, engine: Engine | None = None
    ):
        self.settings = settings or LedgerSettings()
        self.url = url
        self.engine = engine or make_engine(url)
        self.reader = reader(self.engine)
        self._sql = Statements(self.engine.dialect.name)
        self.host = socket.gethostname()
        self.owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        # SQLite has one writer at a time: one thread keeps the process's writes
        # queued in order instead of spinning on the busy handler.
        workers = 1 if is_sqlite(self.engine) else 16
        self.inline = is_sqlite(self.engine) and self.settings.sqlite_inline
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tk-ledger")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._opened = False

    # -- lifecycle -------------------------------------------------------

    def open(self, *, background: bool = True) -> Ledger:
        if self._opened:
            return self
        migrate(self.engine)
        self.heartbeat()
        self.reconcile()
        self._opened = True
        if background:
            self._thread = threading.Thread(
                target=self._loop, name="tk-ledger-reconcile", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._executor.shutdown(wait=True)
        if self._opened:
            with self.engine.begin() as conn:
                conn.execute(delete(schema.owners).where(schema.owners.c.owner == self.owner))
        self.engine.dispose()
        self._opened = False

    def _loop(self) -> None:
        beat = min(self.settings.owner_ttl / 3, self.settings.reconcile_interval)
        last_reconcile = time.time()
        while not self._stop.wait(beat):
            try:
                self.heartbeat()
                if time.time() - last_reconcile >= self.settings.reconcile_interval:
                    self.reconcile()
                    last_reconcile = time.time()
            except Exception:  # a database blip must not kill the loop
                log.exception("ledger heartbeat/reconcile failed")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking ledger call: inline on SQLite, else in the ledger's threads.

        A SQLite transaction here takes a fraction of a millisecond, less than
        handing it to a thread and back (which, on a busy machine, waits for the
        scheduler twice); the event loop also serialises this process's writers
        for free. PostgreSQL waits on the network and fsync, so it gets threads.
        """
        if self.inline:
            return fn(*args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    # -- owners ----------------------------------------------------------

    def heartbeat(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            stmt = dialect_insert(conn, schema.owners).values(
                owner=self.owner, host=self.host, pid=os.getpid(), started_at=now, heartbeat_at=now
            )
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["owner"], set_={"heartbeat_at": now})
            )

    def _dead_owners(self, conn: Connection, now: float) -> set[str]:
        dead: set[str] = set()
        rows = conn.execute(select(schema.owners)).mappings().all()
        for row in rows:
            if row["owner"] == self.owner:
                continue
            stale = row["heartbeat_at"] < now - self.settings.owner_ttl
            gone = row["host"] == self.host and not _pid_alive(int(row["pid"]))
            if stale or gone:
                dead.add(row["owner"])
        return dead

    # -- reserve ---------------------------------------------------------

    def reserve(
        self,
        request_id: str,
        scopes: list[Scope],
        tokens: int,
        usd: float,
        row: RequestRow,
        now: float | None = None,
    ) -> Reservation:
        """Hold `tokens`/`usd` against every scope, or raise BudgetExceeded holding nothing."""
        now = time.time() if now is None else now
        ordered = sorted(scopes, key=lambda s: (s.kind != "team", s.id))
        held: list[tuple[str, str, int]] = []
        soft: list[SoftHit] = []
        with self.engine.begin() as conn:
            for scope in ordered:
                start, end = window_bounds(scope.spec.window, now)
                values = self._take(conn, scope, start, end, tokens, usd)
                if values is None:
                    self._ensure_window(conn, scope, start, end)
                    values = self._take(conn, scope, start, end, tokens, usd)
                if values is None:
                    current = self._window_row(conn, scope, start)
                    raise refusal(scope, current, tokens, usd, end)
                held.append((scope.kind, scope.id, start))
                hit = soft_hit(scope, values)
                if hit is not None:
                    soft.append(hit)
            reservation = Reservation(
                id=uuid.uuid4().hex,
                request_id=request_id,
                tokens=tokens,
                usd=usd,
                scopes=held,
                soft=soft,
            )
            if held:
                conn.execute(
                    self._sql.add_reservation,
                    {
                        "id": reservation.id,
                        "request_id": request_id,
                        "owner": self.owner,
                        "created_at": now,
                        "expires_at": now + self.settings.reservation_ttl,
                        "tokens": tokens,
                        "usd": usd,
                        "scopes": json.dumps(held),
                        "row": row.model_dump_json(),
                    },
                )
        return reservation

    def _take(
        self, conn: Connection, scope: Scope, start: int, end: int, tokens: int, usd: float
    ) -> dict[str, Any] | None:
        spec = scope.spec
        stmt = self._sql.take[(spec.tokens is not None, spec.usd is not None)]
        params = scope_key(scope.kind, scope.id, start)
        params.update(n_tokens=tokens, n_usd=usd)
        if spec.tokens is not None:
            params["lim_tokens"] = spec.tokens
        if spec.usd is not None:
            params["lim_usd"] = spec.usd
        found = conn.execute(stmt, params).mappings().first()
        return dict(found) if found is not None else None

    def _window_row(self, conn: Connection, scope: Scope, start: int) -> dict[str, Any]:
        c = _USAGE.c
        found = (
            conn.execute(
                select(_USAGE).where(
                    c.scope == scope.kind, c.scope_id == scope.id, c.window_start == start
                )
            )
            .mappings()
            .first()
        )
        return (
            dict(found)
            if found
            else {"spent_tokens": 0, "reserved_tokens": 0, "spent_usd": 0.0, "reserved_usd": 0.0}
        )

    def _ensure_window(self, conn: Connection, scope: Scope, start: int, end: int) -> None:
        """Create the window's row, starting from what requests already spent in it."""
        r = schema.requests.c
        who = r.team == scope.id if scope.kind == "team" else r.key_id == scope.id
        spent = conn.execute(
            select(
                func.coalesce(func.sum(r.total_tokens), 0), func.coalesce(func.sum(r.cost_usd), 0.0)
            ).where(who, r.ts >= start, r.ts < end)
        ).one()
        stmt = dialect_insert(conn, _USAGE).values(
            scope=scope.kind,
            scope_id=scope.id,
            window_start=start,
            window_end=end,
            spent_tokens=int(spent[0]),
            reserved_tokens=0,
            spent_usd=float(spent[1]),
            reserved_usd=0.0,
        )
        conn.execute(stmt.on_conflict_do_nothing())

    # -- settle / record -------------------------------------------------

    def settle(
        self, reservation: Reservation | None, row: RequestRow, savings: list[Saving] | None = None
    ) -> None:
        """Replace the estimate with the real usage and write the request row, atomically.

        With no reservation (no budget applied) it only writes the row. A
        failed request settles with zero usage, which releases the estimate.
        """
        with self.engine.begin() as conn:
            if reservation is not None and reservation.scopes:
                sql = self._sql
                gone = conn.execute(sql.drop_reservation, {"rid": reservation.id}).rowcount
                # If the reconciler released it already, only the spend is added.
                held_t, held_u = (reservation.tokens, reservation.usd) if gone else (0, 0.0)
                for kind, scope_id, start in reservation.scopes:
                    params = scope_key(kind, scope_id, start)
                    params.update(
                        held_tokens=held_t,
                        held_usd=held_u,
                        add_tokens=row.total_tokens,
                        add_usd=row.cost_usd,
                    )
                    conn.execute(sql.charge, params)
            self._write_row(conn, row, savings or [], replace=True)

    def record(self, row: RequestRow, savings: list[Saving] | None = None) -> None:
        self.settle(None, row, savings)

    def _write_row(
        self, conn: Connection, row: RequestRow, savings: list[Saving], *, replace: bool
    ) -> None:
        values = row.model_dump()
        values["tags"] = json.dumps(row.tags) if row.tags else None
        values["day"] = day_of(row.ts)
        sql = self._sql
        conn.execute(sql.upsert_row if replace else sql.insert_row_once, values)
        if replace and savings:
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

    # -- reconcile -------------------------------------------------------

    def reconcile(self, now: float | None = None) -> int:
        """Release reservations that expired or whose owner is gone; returns how many."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            dead = self._dead_owners(conn, now)
            cond = _RES.c.expires_at < now
            if dead:
                cond = cond | _RES.c.owner.in_(dead)
            # Reservations of an owner that never registered (or was already removed).
            cond = cond | _RES.c.owner.not_in(select(schema.owners.c.owner))
            stale = conn.execute(select(_RES).where(cond)).mappings().all()
            released = 0
            for res in stale:
                if not conn.execute(delete(_RES).where(_RES.c.id == res["id"])).rowcount:
                    continue
                for kind, scope_id, start in json.loads(res["scopes"]):
                    c = _USAGE.c
                    conn.execute(
                        update(_USAGE)
                        .where(c.scope == kind, c.scope_id == scope_id, c.window_start == start)
                        .values(
                            reserved_tokens=c.reserved_tokens - res["tokens"],
                            reserved_usd=c.reserved_usd - res["usd"],
                        )
                    )
                row = RequestRow.model_validate_json(res["row"])
                row = row.model_copy(
                    update={
                        "outcome": "abandoned",
                        "status": 499,
                        "error": f"reservation released by reconciliation (owner {res['owner']})",
                    }
                )
                self._write_row(conn, row, [], replace=False)
                released += 1
            if dead:
                conn.execute(delete(schema.owners).where(schema.owners.c.owner.in_(dead)))
        if released:
            log.warning("ledger: released %d stale reservation(s)", released)
        return released

    # -- reads -----------------------------------------------------------

    def window_usage(self, scope: Scope, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        start, end = window_bounds(scope.spec.window, now)
        with self.reader.connect() as conn:
            row = self._window_row(conn, scope, start)
            if "window_start" not in row:  # no reservation yet in this window
                r = schema.requests.c
                who = r.team == scope.id if scope.kind == "team" else r.key_id == scope.id
                spent = conn.execute(
                    select(
                        func.coalesce(func.sum(r.total_tokens), 0),
                        func.coalesce(func.sum(r.cost_usd), 0.0),
                    ).where(who, r.ts >= start, r.ts < end)
                ).one()
                row.update(spent_tokens=int(spent[0]), spent_usd=float(spent[1]))
        row.update(window_start=start, window_end=end)
        return row

    def open_reservations(self) -> int:
        with self.reader.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(_RES)).scalar() or 0)
