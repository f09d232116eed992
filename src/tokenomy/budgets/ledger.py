"""The ledger: atomic budget reservations, settlement, and one row per request.

- reserve: for every scope (team, then key: always the same order, so two
  transactions never wait on each other in a cycle) one conditional
  `UPDATE tk_budget_usage SET reserved = reserved + :n WHERE spent + reserved
  + :n <= :limit RETURNING ...`. On PostgreSQL the UPDATE takes the row lock
  and re-checks the condition after any wait; on SQLite the transaction
  starts with BEGIN IMMEDIATE. If any scope refuses, the transaction rolls
  back and nothing is held. A window's row is created once, from what the
  window already spent; after that a refusal is one UPDATE and one keyed
  SELECT, never a sum over the requests. The reservation row records its
  owner (this process's random instance id) and an expiry.
- settle (settlement.py): one transaction per request, idempotent by request
  id. If the database cannot be reached it is retried with backoff in the
  ledger's worker thread, then written to a local spool (spool.py) that is
  replayed at open and by the background loop: spend is never lost, never
  charged twice. Settle never raises for database trouble.
- reconcile: reservations past their expiry, or owned by an instance whose
  heartbeat is older than `owner_ttl` (liveness by heartbeat only: PIDs mean
  nothing across containers), are released one transaction each, and their
  request gets an `abandoned` row (a later settle by a live owner replaces it).
- rows are cleaned before they are written (sanitize.py): a row the database
  cannot store never blocks a settle, a reconciliation or a restart.

The request path's calls (reserve, and the key store's) raise LedgerUnavailable
(503) when the database cannot be reached: budgets fail closed.
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

from sqlalchemy import Connection, Engine, delete, func, select
from sqlalchemy.exc import SQLAlchemyError

from tokenomy.budgets import schema
from tokenomy.budgets.db import guard, is_sqlite, make_engine, reader
from tokenomy.budgets.limits import refusal, soft_hit
from tokenomy.budgets.migrations import migrate
from tokenomy.budgets.reconcile import reconcile
from tokenomy.budgets.rows import RequestRow, Reservation, Saving, Scope, SoftHit
from tokenomy.budgets.sanitize import clean_row
from tokenomy.budgets.settings import LedgerSettings
from tokenomy.budgets.settlement import Settler
from tokenomy.budgets.spool import Spool
from tokenomy.budgets.statements import Statements, dialect_insert, scope_key
from tokenomy.budgets.windows import window_bounds
from tokenomy.errors import BudgetExceeded

log = logging.getLogger(__name__)
T = TypeVar("T")

_USAGE = schema.budget_usage
_RES = schema.reservations


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
        # A random instance id: two replicas with one hostname and colliding PIDs
        # (containers) are still two owners. The host is only a label for people.
        self.owner = f"{uuid.uuid4().hex[:16]}@{self.host}"[:128]
        settings = self.settings
        if settings.spool_path is None and settings.url != url:
            settings = settings.model_copy(update={"url": url})
        self.settler = Settler(
            self.engine, self._sql, self.settings, Spool(settings.resolved_spool())
        )
        # SQLite has one writer at a time: one thread keeps the process's writes
        # queued in order instead of spinning on the busy handler.
        workers = 1 if is_sqlite(self.engine) else 16
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
        # Settles spooled before a restart land before reconciliation could
        # call their reservations abandoned (it would be corrected, but later).
        self.replay_spool()
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
            try:
                with self.engine.begin() as conn:
                    conn.execute(delete(schema.owners).where(schema.owners.c.owner == self.owner))
            except SQLAlchemyError as exc:  # others will see our heartbeat age out
                log.warning("ledger: could not deregister %s: %s", self.owner, exc)
        self.engine.dispose()
        self._opened = False

    def _loop(self) -> None:
        beat = min(self.settings.owner_ttl / 3, self.settings.reconcile_interval)
        last_reconcile = time.time()
        while not self._stop.wait(beat):
            try:
                self.heartbeat()
                if self.settler.spool.depth():
                    self.replay_spool()
                if time.time() - last_reconcile >= self.settings.reconcile_interval:
                    self.reconcile()
                    last_reconcile = time.time()
            except SQLAlchemyError as exc:  # a database blip must not kill the loop
                log.warning("ledger: heartbeat/reconcile failed: %s", str(exc).splitlines()[0])
            except Exception:
                log.exception("ledger: heartbeat/reconcile failed")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking ledger call in the ledger's worker threads, off the event loop.

        A lock wait, a slow disk or a settle's retry backoff then delays only
        this call, never the other requests on the loop. On SQLite one worker
        keeps this process's writes in order (SQLite has one writer anyway).
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    # -- owners ----------------------------------------------------------

    def heartbeat(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            stmt = dialect_insert(conn, schema.owners).values(
                owner=self.owner,
                host=self.host[:256],
                pid=os.getpid(),
                started_at=now,
                heartbeat_at=now,
            )
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["owner"], set_={"heartbeat_at": now})
            )
        self.settler.down = False

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
        """Hold `tokens`/`usd` against every scope, or raise BudgetExceeded holding nothing.

        Raises LedgerUnavailable when the database cannot be reached.
        """
        now = time.time() if now is None else now
        ordered = sorted(scopes, key=lambda s: (s.kind != "team", s.id))
        row = clean_row(row)
        with guard("reserve"):
            while True:
                try:
                    return self._reserve(ordered, tokens, usd, row, now)
                except _NoWindow as missing:
                    # The window's row is created (once, from what the window
                    # already spent) and committed on its own: a refused first
                    # request must not roll it back, or every later refusal
                    # would sum the requests again.
                    with self.engine.begin() as conn:
                        self._ensure_window(conn, *missing.args)

    def _reserve(
        self, ordered: list[Scope], tokens: int, usd: float, row: RequestRow, now: float
    ) -> Reservation:
        held: list[tuple[str, str, int]] = []
        soft: list[SoftHit] = []
        left = _Left()
        with self.engine.begin() as conn:
            for scope in ordered:
                start, end = window_bounds(scope.spec.window, now)
                values = self._take(conn, scope, start, end, tokens, usd)
                if values is None:
                    current = self._window_row(conn, scope, start)
                    if current is None:  # the first reservation of this window
                        raise _NoWindow(scope, start, end)
                    raise refusal(scope, current, tokens, usd, end)
                held.append((scope.kind, scope.id, start))
                left.add(scope, values)
                hit = soft_hit(scope, values)
                if hit is not None:
                    soft.append(hit)
            reservation = Reservation(
                id=uuid.uuid4().hex,
                request_id=row.request_id,
                tokens=tokens,
                usd=usd,
                scopes=held,
                soft=soft,
                remaining_tokens=left.tokens,
                remaining_usd=left.usd,
            )
            if held:
                conn.execute(
                    self._sql.add_reservation,
                    {
                        "id": reservation.id,
                        "request_id": row.request_id,
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

    def extend(
        self,
        reservation: Reservation,
        scopes: list[Scope],
        tokens: int,
        usd: float,
    ) -> None:
        """Hold `tokens`/`usd` more for a live reservation, in the windows it holds.

        Raises BudgetExceeded holding nothing more (a scope refuses, or the
        reservation was released meanwhile); LedgerUnavailable when the
        database cannot be reached. Updates `reservation` in place.
        """
        specs = {(scope.kind, scope.id): scope for scope in scopes}
        with guard("reserve"), self.engine.begin() as conn:
            for kind, scope_id, start in reservation.scopes:  # reserve's order
                scope = specs[(kind, scope_id)]
                end = window_bounds(scope.spec.window, start)[1]
                if self._take(conn, scope, start, end, tokens, usd) is None:
                    current = self._window_row(conn, scope, start) or dict(_EMPTY)
                    raise refusal(scope, current, tokens, usd, end)
            grown = conn.execute(
                self._sql.grow_reservation,
                {"rid": reservation.id, "g_tokens": tokens, "g_usd": usd},
            ).rowcount
            if not grown:  # reconciled away: this request holds nothing any more
                raise BudgetExceeded(
                    f"the reservation of request {reservation.request_id} was released "
                    "(it outlived reservation_ttl or its owner's heartbeat); retry the request"
                )
        reservation.tokens += tokens
        reservation.usd += usd

    def checkpoint(self, reservation: Reservation, row: RequestRow) -> None:
        """Record what a live stream delivered so far in its reservation: if this process
        dies, reconciliation writes (and charges) this row instead of an empty one."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    self._sql.checkpoint,
                    {"rid": reservation.id, "g_row": clean_row(row).model_dump_json()},
                )
        except SQLAlchemyError as exc:  # the settle at the end still lands
            log.warning("ledger: checkpoint of %s failed: %s", row.request_id,
                        str(exc).splitlines()[0][:200])

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

    def _window_row(self, conn: Connection, scope: Scope, start: int) -> dict[str, Any] | None:
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
        return dict(found) if found is not None else None

    def _ensure_window(self, conn: Connection, scope: Scope, start: int, end: int) -> None:
        """Create the window's row once, starting from what requests already spent in it."""
        spent = _spent(conn, scope, start, end)
        stmt = dialect_insert(conn, _USAGE).values(
            scope=scope.kind,
            scope_id=scope.id,
            window_start=start,
            window_end=end,
            spent_tokens=spent[0],
            reserved_tokens=0,
            spent_usd=spent[1],
            reserved_usd=0.0,
        )
        conn.execute(stmt.on_conflict_do_nothing())

    # -- settle / record -------------------------------------------------

    def settle(
        self, reservation: Reservation | None, row: RequestRow, savings: list[Saving] | None = None
    ) -> str:
        """Replace the estimate with the real usage and write the request row, once.

        With no reservation (no budget applied) it only writes the row. A
        failed request settles with zero usage, which releases the estimate.
        Never raises for database trouble: retried, then spooled (see Settler).
        Returns how it landed: landed | spooled | rejected.
        """
        return self.settler.settle(reservation, row, savings or [])

    def record(self, row: RequestRow, savings: list[Saving] | None = None) -> None:
        self.settle(None, row, savings)

    def replay_spool(self) -> int:
        """Land spooled settles; returns how many landed (or had already)."""
        return self.settler.replay()

    def spool_depth(self) -> int:
        """Settles waiting in the local spool for the database (0 when all landed)."""
        return self.settler.spool.depth()

    # -- reconcile -------------------------------------------------------

    def reconcile(self, now: float | None = None) -> int:
        """Release reservations that expired or whose owner is gone; returns how many
        (see reconcile.py: one transaction each, one bad row never holds up the rest)."""
        now = time.time() if now is None else now
        return reconcile(self.engine, self.reader, self._sql, self.owner,
                         self.settings.owner_ttl, now)

    # -- reads -----------------------------------------------------------

    def window_usage(self, scope: Scope, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        start, end = window_bounds(scope.spec.window, now)
        with self.reader.connect() as conn:
            row = self._window_row(conn, scope, start)
            if row is None:  # no reservation yet in this window
                spent = _spent(conn, scope, start, end)
                row = {**_EMPTY, "spent_tokens": spent[0], "spent_usd": spent[1]}
        row.update(window_start=start, window_end=end)
        return row

    def open_reservations(self) -> int:
        with self.reader.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(_RES)).scalar() or 0)


class _Left:
    """The tightest budget left across a reservation's scopes, this hold included."""

    def __init__(self) -> None:
        self.tokens: int | None = None
        self.usd: float | None = None

    def add(self, scope: Scope, values: dict[str, Any]) -> None:
        spec = scope.spec
        if spec.tokens is not None:
            tokens = int(spec.tokens - values["spent_tokens"] - values["reserved_tokens"])
            self.tokens = tokens if self.tokens is None else min(self.tokens, tokens)
        if spec.usd is not None:
            usd = float(spec.usd - values["spent_usd"] - values["reserved_usd"])
            self.usd = usd if self.usd is None else min(self.usd, usd)


class _NoWindow(Exception):
    """Raised inside a reservation (rolling it back) when a scope's window has no row yet."""


_EMPTY: dict[str, Any] = {
    "spent_tokens": 0,
    "reserved_tokens": 0,
    "spent_usd": 0.0,
    "reserved_usd": 0.0,
}


def _spent(conn: Connection, scope: Scope, start: int, end: int) -> tuple[int, float]:
    """What a scope's requests spent in a window: the one sum over tk_requests."""
    r = schema.requests.c
    who = r.team == scope.id if scope.kind == "team" else r.key_id == scope.id
    found = conn.execute(
        select(
            func.coalesce(func.sum(r.total_tokens), 0), func.coalesce(func.sum(r.cost_usd), 0.0)
        ).where(who, r.ts >= start, r.ts < end)
    ).one()
    return int(found[0]), float(found[1])
