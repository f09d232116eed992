"""The `prompt_cache` stage: breakpoints for Anthropic, a cache key for OpenAI, per team.

It runs after `compress` (so it marks the prompt as it will be sent, and
compression never sees a mark it did not get from the client) and before
`plan` (whose per-request instruction then lands after the last breakpoint,
outside the cached prefix).

- A protocol that places breakpoints (`cache_breakpoints`, Anthropic Messages)
  gets them on a request that carries none; a client's own are never moved
  or added to.
- A protocol that takes OpenAI's `prompt_cache_key` field (chat, Responses)
  gets one when the client sent none: `tokenomy-` and a hash of the team and
  the conversation, named the way agent compression names it (the team, the
  first system prompt and the first user turn, compressors/agent/zone.py),
  so every call of one conversation lands on the same cache shard.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from tokenomy.call import Call, Result
from tokenomy.compressors.agent.zone import zones
from tokenomy.compressors.memo import memo_key
from tokenomy.config import Settings
from tokenomy.pipeline import Next, Services
from tokenomy.prompt_cache.settings import PromptCacheSettings

SECTION = "prompt_cache"
CACHE_KEY_FIELD = "prompt_cache_key"  # OpenAI chat and Responses name it the same


@runtime_checkable
class PlacesBreakpoints(Protocol):
    def cache_breakpoints(self, body: dict[str, Any], ttl: str = "5m"
                          ) -> tuple[dict[str, Any], list[str]] | None: ...


def cache_key(call: Call) -> str:
    """The same key for every call of one conversation of one team."""
    conversation = zones(call.transcript.parts, call.identity.team).conversation
    return "tokenomy-" + memo_key(SECTION, conversation)[:32]


class PromptCacheStage:
    name = SECTION

    def __init__(self, settings: Settings):
        settings.check_section(SECTION, PromptCacheSettings)
        self.settings = settings

    def settings_for(self, team: str) -> PromptCacheSettings:
        return self.settings.for_team(team).section(SECTION, PromptCacheSettings)

    async def __call__(self, call: Call, next: Next) -> Result:
        wanted = self.settings_for(call.identity.team)
        if wanted.enabled:
            self.apply(call, wanted)
        return await next(call)

    def apply(self, call: Call, wanted: PromptCacheSettings) -> None:
        protocol, body = call.protocol, call.body
        if isinstance(protocol, PlacesBreakpoints):
            if not wanted.breakpoints:
                return
            placed = protocol.cache_breakpoints(body, wanted.ttl)
            if placed is None:
                return
            changes, where = placed
            # A new body: the transcript is rebuilt from it if a later stage reads it.
            call.body = {**body, **changes}
            call.record(self.name, detail={"breakpoints": where, "ttl": wanted.ttl})
        elif wanted.cache_key and CACHE_KEY_FIELD in protocol.request_fields \
                and CACHE_KEY_FIELD not in body:
            key = cache_key(call)
            body[CACHE_KEY_FIELD] = key
            call.record(self.name, detail={CACHE_KEY_FIELD: key})


def prompt_cache_stage(services: Services) -> PromptCacheStage | None:
    """None (no stage at all) unless the settings or some team turn it on."""
    settings = services.settings
    stage = PromptCacheStage(settings)
    teams = ["default", *settings.teams]
    return stage if any(stage.settings_for(team).enabled for team in teams) else None
