"""The `response_cache` stage: identical requests answered without an upstream call.

It runs innermost (after `plan`), so the key is the request exactly as it
would leave (see entry.py), and inside `identify` and `budget`: a caller that
is not authenticated or whose team is over budget gets no cached answer, and
every hit is one ledger row like any request (zero upstream spend; the
tokens and dollars the answer cost when it was made are saved under the
technique `response_cache`).

Which requests: a team that enables the cache (`[teams.NAME.response_cache]`
or `[response_cache] enabled = true`) has its deterministic requests cached
(temperature 0, as the wire protocol says; `match = "all"`: every request);
any request may opt in with `{"tokenomy": {"cache": true}}` (or the
x-tokenomy-options header) and out with `"cache": false` or `Cache-Control:
no-store`. `Cache-Control: no-cache` is not answered from the cache, and its
fresh answer replaces the kept one. Consensus samples are never cached. Only
a 200 from the route's primary backend is kept (not a fallback's answer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import orjson

from tokenomy.call import Call, Chunk, Result, Usage
from tokenomy.config import Settings
from tokenomy.pipeline import Next, Services
from tokenomy.response_cache.entry import Entry, cache_key
from tokenomy.response_cache.settings import ResponseCacheSettings
from tokenomy.response_cache.store import LedgerStore, RedisStore, Store
from tokenomy.tokenizers import count_text
from tokenomy.transcript import Deterministic

log = logging.getLogger(__name__)

NAME = "response_cache"


def _no_usage(chunk: Chunk) -> Usage | None:
    return None  # a replayed chunk's usage was paid for when it was made


class ResponseCacheStage:
    name = NAME

    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store
        base = settings.section(NAME, ResponseCacheSettings)
        self.max_entry_bytes = base.max_entry_bytes
        self._teams: dict[str, ResponseCacheSettings] = {}
        self._pending: set[asyncio.Task[None]] = set()

    def policy(self, team: str) -> ResponseCacheSettings:
        found = self._teams.get(team)
        if found is None:
            found = self._teams[team] = self.settings.for_team(team).section(
                NAME, ResponseCacheSettings)
        return found

    def eligible(self, call: Call, policy: ResponseCacheSettings) -> bool:
        asked = call.options.cache
        if asked is False or call.forked:
            return False
        if asked:
            return True
        if not policy.enabled:
            return False
        if policy.match == "all":
            return True
        protocol = call.protocol
        return isinstance(protocol, Deterministic) and protocol.deterministic(call.body)

    async def __call__(self, call: Call, next: Next) -> Result:
        policy = self.policy(call.identity.team)
        if call.options.cache is False:
            call.cache = "bypass"
        if not self.eligible(call, policy):
            return await next(call)
        started = time.perf_counter()
        key = cache_key(call)
        if key is None:
            return await next(call)
        if not call.options.cache_refresh:
            raw = await self.store.get(key)
            entry = _entry(raw, call) if raw is not None else None
            if entry is not None:
                return self._hit(call, entry, key, started)
        call.cache = "refresh" if call.options.cache_refresh else "miss"
        call.record(self.name, ms=(time.perf_counter() - started) * 1000,
                    detail={"cache": call.cache, "key": key[:16], "store": self.store.name})
        result = await next(call)
        if result.status != 200 or call.fallback:
            return result  # only the primary backend's answer is kept under this key
        if result.is_stream:
            self._keep_stream(call, result, key, policy)
        elif result.response is not None:
            self._keep(call, key, policy, Entry(
                protocol=call.protocol.name, stream=False, model=call.upstream_model,
                created_at=time.time(), usage=_usage(call, result, None),
                response=result.response))
        return result

    def _hit(self, call: Call, entry: Entry, key: str, started: float) -> Result:
        call.cache = "hit"
        usage = entry.usage
        call.record(self.name, technique=NAME, ms=(time.perf_counter() - started) * 1000,
                    detail={"cache": "hit", "key": key[:16], "store": self.store.name,
                            "age_s": round(time.time() - entry.created_at, 1),
                            "saved_tokens": usage.total_tokens})
        if entry.chunks is not None:
            return Result(chunks=_replay(entry.chunks), read_usage=_no_usage, cached_usage=usage)
        return Result(response=entry.response, cached_usage=usage)

    def _keep_stream(self, call: Call, result: Result, key: str,
                     policy: ResponseCacheSettings) -> None:
        chunks: list[Chunk] = []
        size = 0
        too_big = False
        limit = self.max_entry_bytes

        def on_chunk(chunk: Chunk) -> None:
            nonlocal size, too_big
            if too_big:
                return
            size += len(orjson.dumps(chunk))
            if size > limit:
                too_big = True
                chunks.clear()
            else:
                chunks.append(chunk)

        async def on_end(error: BaseException | None) -> None:
            if error is not None or too_big or not chunks:
                return  # a stream cut short, failed, or too large is not kept
            text = "".join(call.protocol.chunk_text(c) for c in chunks)
            self._keep(call, key, policy, Entry(
                protocol=call.protocol.name, stream=True, model=call.upstream_model,
                created_at=time.time(), usage=_usage(call, result, text), chunks=chunks))

        result.wrap_stream(on_chunk=on_chunk, on_end=on_end)

    def _keep(self, call: Call, key: str, policy: ResponseCacheSettings, entry: Entry) -> None:
        """Write the answer in the background: the client does not wait for the store."""
        try:
            value = entry.dumps()
        except TypeError:
            return
        if len(value) > self.max_entry_bytes:
            return
        task = asyncio.get_running_loop().create_task(self.store.put(
            key, team=call.identity.team, protocol=entry.protocol, stream=entry.stream,
            value=value, ttl=policy.ttl))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self.store.aclose()


def _entry(raw: bytes, call: Call) -> Entry | None:
    try:
        entry = Entry.loads(raw)
    except ValueError:
        log.warning("response cache: an unreadable entry for %s; answering upstream",
                    call.request_id)
        return None
    if entry.protocol != call.protocol.name or entry.stream != call.stream:
        return None  # the key says they match; a hash collision must not cross them
    return entry


def _usage(call: Call, result: Result, streamed: str | None) -> Usage:
    """What the answer cost: the backend's report, else counted (marked estimated)."""
    if result.usage is not None:
        return result.usage
    if result.response is not None:
        found = call.protocol.response_usage(result.response)
        if found is not None:
            return found
        streamed = call.protocol.response_text(result.response)
    completion = count_text(streamed, call.token_model) if streamed else 0
    return Usage.of(call.prompt_tokens_sent, completion, estimated=True)


async def _replay(chunks: list[Chunk]) -> AsyncIterator[Chunk]:
    for chunk in chunks:
        yield chunk


def build(services: Services) -> ResponseCacheStage | None:
    """The stage with its store: Redis when configured, else the ledger's database
    (none without a ledger: then there is nowhere to keep answers)."""
    settings = services.settings
    config = settings.section(NAME, ResponseCacheSettings)
    store: Store
    if config.store == "redis":
        store = RedisStore(config.redis_url, prefix=config.redis_prefix,
                           max_entries=config.max_entries)
    elif services.budgets is not None:
        ledger = services.budgets.ledger
        store = LedgerStore(ledger.engine, ledger.run, max_entries=config.max_entries)
    else:
        return None
    return ResponseCacheStage(settings, store)
