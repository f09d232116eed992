"""Where kept answers live: a table in the ledger's database, or Redis.

Both expire an answer `ttl` seconds after it was kept and hold at most
`max_entries` answers, dropping the oldest first. A store that cannot be
reached is a miss (logged), never an error: the request goes upstream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import SQLAlchemyError

from tokenomy.budgets import schema
from tokenomy.budgets.db import reader
from tokenomy.budgets.statements import dialect_insert

log = logging.getLogger(__name__)

_T = schema.response_cache
_C = _T.c

Run = Callable[..., Awaitable[Any]]  # runs a blocking function off the event loop


class Store(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, *, team: str, protocol: str, stream: bool, value: bytes,
                  ttl: float) -> None: ...

    async def aclose(self) -> None: ...


class LedgerStore:
    """`tk_response_cache` in the ledger's database, shared by every replica using it.

    Never on the event loop: writes run in the ledger's worker threads (`run`,
    one on SQLite, which has one writer anyway); lookups in a thread of their
    own, since a read takes no write lock and must not queue behind settles.
    """

    name = "ledger"

    def __init__(self, engine: Engine, run: Run, *, max_entries: int):
        self.engine = engine
        self.reader = reader(engine)
        self.run = run
        self.max_entries = max_entries

    async def get(self, key: str) -> bytes | None:
        try:
            return await asyncio.to_thread(self._get, key, time.time())
        except SQLAlchemyError as exc:
            log.warning("response cache: lookup failed (%s); answering upstream",
                        str(exc).splitlines()[0][:200])
            return None

    def _get(self, key: str, now: float) -> bytes | None:
        with self.reader.connect() as conn:
            value = conn.execute(
                select(_C.value).where(_C.key == key, _C.expires_at > now)).scalar()
        return value.encode() if isinstance(value, str) else None

    async def put(self, key: str, *, team: str, protocol: str, stream: bool, value: bytes,
                  ttl: float) -> None:
        try:
            await self.run(self._put, key, team, protocol, stream, value, ttl, time.time())
        except SQLAlchemyError as exc:
            log.warning("response cache: could not keep an answer (%s)",
                        str(exc).splitlines()[0][:200])

    def _put(self, key: str, team: str, protocol: str, stream: bool, value: bytes, ttl: float,
             now: float) -> None:
        row = {"key": key, "team": team[:128], "protocol": protocol[:64], "stream": stream,
               "created_at": now, "expires_at": now + ttl, "size": len(value),
               "value": value.decode()}
        with self.engine.begin() as conn:
            stmt = dialect_insert(conn, _T).values(**row)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["key"], set_={k: v for k, v in row.items() if k != "key"}))
            conn.execute(delete(_T).where(_C.expires_at <= now))
            # The newest max_entries stay: one indexed lookup finds the cut.
            cutoff = conn.execute(select(_C.created_at).order_by(_C.created_at.desc())
                                  .offset(self.max_entries).limit(1)).scalar()
            if cutoff is not None:
                conn.execute(delete(_T).where(_C.created_at <= cutoff))

    async def aclose(self) -> None:
        return None


# Keep one answer, index it by its expiry, forget the index entries of answers that
# expired and drop those closest to expiry past the bound: one round trip, atomic.
_PUT = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3] + ARGV[2], KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local old = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #old, 2 do redis.call('DEL', old[i]) end
end
return 1
"""


class RedisStore:
    """Answers as Redis strings with a TTL, plus a sorted set (by expiry) that bounds
    their number: past `max_entries` the answers closest to expiry go first."""

    name = "redis"

    def __init__(self, url: str, *, prefix: str, max_entries: int):
        import redis.asyncio as redis

        self.client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self.prefix = prefix
        self.index = prefix + "index"
        self.max_entries = max_entries
        self._put_script = self.client.register_script(_PUT)

    async def get(self, key: str) -> bytes | None:
        from redis.exceptions import RedisError

        try:
            value = await self.client.get(self.prefix + key)
        except RedisError as exc:
            log.warning("response cache: Redis lookup failed (%s); answering upstream", exc)
            return None
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, *, team: str, protocol: str, stream: bool, value: bytes,
                  ttl: float) -> None:
        from redis.exceptions import RedisError

        now_ms = int(time.time() * 1000)
        try:
            await self._put_script(keys=[self.prefix + key, self.index],
                                   args=[value, int(ttl * 1000), now_ms, self.max_entries])
        except RedisError as exc:
            log.warning("response cache: could not keep an answer in Redis (%s)", exc)

    async def aclose(self) -> None:
        await self.client.aclose()
