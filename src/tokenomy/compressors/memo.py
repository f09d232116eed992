"""The compression memo: content compressed at turn k is sent identically at every later turn.

A provider's prompt cache bills a repeated prefix at a tenth of the price, so
an agent's history must reach the backend byte-for-byte the same on every
call. Agent compression therefore compresses a piece of content once, when it
is new, and records `key -> compressed text` here; later requests look the
key up and send the recorded text again.

The memo lives in the ledger's database (a table of its own), so replicas
share it and a restart does not forget it; an in-process LRU answers repeats
without a round trip. Entries expire after `ttl` seconds without use (a
provider cache is long gone by then, so recompressing costs nothing) and the
table is trimmed to `max_entries`. Without a database it is in-process only.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

from sqlalchemy import Column, Engine, Float, MetaData, String, Table, Text, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

_metadata = MetaData()
memo_table = Table(
    "tk_compress_memo",
    _metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("used_at", Float, nullable=False, index=True),
)

TOUCH_EVERY = 3600.0  # refresh `used_at` in the database at most this often per key
# Recorded for a part that compression left as it was: found again at the next turn (no
# database round trip, no second attempt), and never a form of its own.
UNCHANGED = ""


def memo_key(*parts: str) -> str:
    """A stable key for content plus what scopes it (team, conversation, occurrence)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


class Memo:
    def __init__(self, engine: Engine | None = None, *, ttl: float = 86_400.0,
                 max_entries: int = 200_000, local_entries: int = 50_000):
        self.engine = engine
        self.ttl = ttl
        self.max_entries = max_entries
        self._local: OrderedDict[str, tuple[str, float]] = OrderedDict()  # key -> (value, touched)
        self._local_max = local_entries
        self._lock = threading.Lock()
        self._writes = 0
        # Refresh `used_at` often enough that an entry in use never reaches its TTL.
        self._touch_every = min(TOUCH_EVERY, ttl / 4)
        if engine is not None:
            try:
                _metadata.create_all(engine, checkfirst=True)
            except SQLAlchemyError:  # a replica racing us to create it: fine once it exists
                log.warning("memo: could not create its table; using it if it exists",
                            exc_info=True)

    def peek(self, keys: Iterable[str]) -> dict[str, str]:
        """What this process already knows of `keys` (no database round trip)."""
        now = time.time()
        with self._lock:
            return {key: entry[0] for key in keys
                    if (entry := self._local.get(key)) is not None and now - entry[1] <= self.ttl}

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        now = time.time()
        found: dict[str, str] = {}
        missing: list[str] = []
        stale: list[str] = []
        with self._lock:
            for key in keys:
                entry = self._local.get(key)
                if entry is not None and now - entry[1] > self.ttl:
                    # Unused past the TTL here too: whatever the database says (another
                    # replica may have used it since) is what every replica sends.
                    del self._local[key]
                    entry = None
                if entry is None:
                    missing.append(key)
                    continue
                self._local.move_to_end(key)
                found[key] = entry[0]
                if now - entry[1] > self._touch_every:
                    stale.append(key)
                    self._local[key] = (entry[0], now)
        if self.engine is None or not (missing or stale):
            return found
        try:
            if missing:
                # A read-only transaction: on SQLite it takes no write lock.
                with self.engine.execution_options(tk_readonly=True).begin() as conn:
                    rows = conn.execute(select(memo_table.c.key, memo_table.c.value).where(
                        memo_table.c.key.in_(missing), memo_table.c.used_at >= now - self.ttl))
                    for key, value in rows:
                        found[key] = value
                        self._remember(key, value, now)
                stale += [k for k in missing if k in found]
            if stale:
                with self.engine.begin() as conn:
                    conn.execute(memo_table.update().where(memo_table.c.key.in_(stale))
                                 .values(used_at=now))
        except SQLAlchemyError:
            # The memo is an optimisation: without it a part is sent as it is (a cache
            # miss at worst), never wrong.
            log.warning("memo: lookup failed", exc_info=True)
        return found

    def put(self, key: str, value: str) -> str | None:
        """Record `value` under `key` (see `put_many`): the value that is recorded, or None."""
        recorded = self.put_many({key: value})
        return None if recorded is None else recorded.get(key)

    def put_many(self, items: dict[str, str]) -> dict[str, str] | None:
        """Record each `key -> value` in one transaction; returns the values that are
        recorded (another replica's where it recorded one first, so every replica sends
        the same bytes), or None when they could not be recorded: then the caller sends
        the originals, because a form no replica can find again would change at the next
        turn and break the cache."""
        now = time.time()
        values = dict(items)
        if self.engine is not None and items:
            try:
                with self.engine.begin() as conn:
                    insert = (postgresql.insert if conn.dialect.name == "postgresql"
                              else sqlite.insert)(memo_table)
                    conn.execute(insert.on_conflict_do_nothing(), [
                        {"key": key, "value": value, "created_at": now, "used_at": now}
                        for key, value in items.items()])
                    for key, stored in conn.execute(
                            select(memo_table.c.key, memo_table.c.value)
                            .where(memo_table.c.key.in_(list(items)))):
                        values[key] = stored
                before, self._writes = self._writes, self._writes + len(items)
                if before // 1000 != self._writes // 1000:
                    self.trim()
            except SQLAlchemyError:
                log.warning("memo: write failed; these parts go uncompressed", exc_info=True)
                return None
        for key, value in values.items():
            self._remember(key, value, now)
        return values

    def _remember(self, key: str, value: str, now: float) -> None:
        with self._lock:
            self._local[key] = (value, now)
            self._local.move_to_end(key)
            while len(self._local) > self._local_max:
                self._local.popitem(last=False)

    def trim(self) -> int:
        """Drop expired entries, then the least recently used past `max_entries`."""
        if self.engine is None:
            return 0
        now = time.time()
        with self.engine.begin() as conn:
            dropped = conn.execute(delete(memo_table).where(
                memo_table.c.used_at < now - self.ttl)).rowcount or 0
            count = conn.execute(select(func.count()).select_from(memo_table)).scalar() or 0
            if count > self.max_entries:
                cutoff = conn.execute(select(memo_table.c.used_at)
                                      .order_by(memo_table.c.used_at.desc())
                                      .offset(self.max_entries).limit(1)).scalar()
                if cutoff is not None:
                    dropped += conn.execute(delete(memo_table).where(
                        memo_table.c.used_at <= cutoff)).rowcount or 0
        return int(dropped)
