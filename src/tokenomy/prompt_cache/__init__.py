"""Keeping provider prompt caches hitting: automatic breakpoints and cache keys, per team.

`[prompt_cache] enabled = true` (or `[teams.NAME.prompt_cache]`) turns on the
`prompt_cache` stage: Anthropic requests without any `cache_control` get
breakpoints (see transcript/anthropic_cache.py), OpenAI chat and Responses
requests a stable `prompt_cache_key` per team and conversation.
"""
