"""The `[prompt_cache]` settings section (and `[teams.NAME.prompt_cache]`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class PromptCacheSettings(BaseModel):
    """Off unless asked: a breakpoint makes the provider *write* the prefix (1.25x the
    input price for 5 minutes, 2x for an hour), which pays off only for traffic that
    comes back to it (agent loops, chats, shared system prompts) within the TTL."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    ttl: Literal["5m", "1h"] = "5m"  # Anthropic breakpoints' lifetime
    breakpoints: bool = True  # Anthropic: place cache_control on requests without any
    cache_key: bool = True  # OpenAI: send a prompt_cache_key per team and conversation
