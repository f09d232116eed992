"""`Usage`: what one call consumed, normalised from every protocol's report.

Figures are clamped where they are parsed: a negative, non-numeric or absurd
report from an upstream is never credited to anyone.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

# Upstream usage reports above this are treated as absurd (a bug or an attack): clamped, logged.
MAX_REPORTED_TOKENS = 50_000_000


def _count(value: Any) -> int:
    """A usage figure as a non-negative int; negative, bool, or non-numbers count as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if value != value or value < 0:  # NaN or negative
        return 0
    return int(min(value, MAX_REPORTED_TOKENS))


class Usage(BaseModel):
    """What one call consumed, in four input buckets plus output.

    `prompt_tokens` is all input (OpenAI's meaning): uncached + cache read +
    cache write. `completion_tokens` includes reasoning. Every protocol's
    report is normalised into this one shape by its `from_*` constructor.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0  # cache reads
    cache_write_tokens: int = 0  # cache writes, all TTLs
    cache_write_1h_tokens: int = 0  # the part of the writes with a 1-hour TTL
    estimated: bool = False  # counted by tokenomy, not reported by the backend

    @property
    def uncached_tokens(self) -> int:
        return max(0, self.prompt_tokens - self.cached_tokens - self.cache_write_tokens)

    def __add__(self, other: Usage) -> Usage:
        fields = ("prompt_tokens", "completion_tokens", "total_tokens", "reasoning_tokens",
                  "cached_tokens", "cache_write_tokens", "cache_write_1h_tokens")
        values: dict[str, Any] = {f: getattr(self, f) + getattr(other, f) for f in fields}
        return Usage(**values, estimated=self.estimated or other.estimated)

    @classmethod
    def of(cls, prompt: int, completion: int, *, reasoning: int = 0, cache_read: int = 0,
           cache_write: int = 0, cache_write_1h: int = 0, estimated: bool = False) -> Usage:
        """Built from already-cleaned counts; keeps the buckets consistent."""
        cache_read = min(cache_read, prompt)
        cache_write = min(cache_write, prompt - cache_read)
        return cls(prompt_tokens=prompt, completion_tokens=completion,
                   total_tokens=prompt + completion, reasoning_tokens=min(reasoning, completion),
                   cached_tokens=cache_read, cache_write_tokens=cache_write,
                   cache_write_1h_tokens=min(cache_write_1h, cache_write), estimated=estimated)

    @classmethod
    def from_openai(cls, usage: dict[str, Any] | None) -> Usage | None:
        """Chat Completions usage (DeepSeek's `prompt_cache_hit_tokens` understood too)."""
        if not usage or not isinstance(usage, dict):
            return None
        details = usage.get("completion_tokens_details") or {}
        prompt_details = usage.get("prompt_tokens_details") or {}
        details = details if isinstance(details, dict) else {}
        prompt_details = prompt_details if isinstance(prompt_details, dict) else {}
        cached = _count(prompt_details.get("cached_tokens"))
        if not cached:
            cached = _count(usage.get("prompt_cache_hit_tokens"))
        return cls.of(_count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")),
                      reasoning=_count(details.get("reasoning_tokens")), cache_read=cached,
                      cache_write=_count(prompt_details.get("cache_write_tokens")))

    @classmethod
    def from_responses(cls, usage: dict[str, Any] | None) -> Usage | None:
        """OpenAI Responses usage: input_tokens (cached included), output_tokens."""
        if not usage or not isinstance(usage, dict):
            return None
        inp = usage.get("input_tokens_details") or {}
        out = usage.get("output_tokens_details") or {}
        inp = inp if isinstance(inp, dict) else {}
        out = out if isinstance(out, dict) else {}
        return cls.of(_count(usage.get("input_tokens")), _count(usage.get("output_tokens")),
                      reasoning=_count(out.get("reasoning_tokens")),
                      cache_read=_count(inp.get("cached_tokens")))

    @classmethod
    def from_anthropic(cls, usage: dict[str, Any] | None) -> Usage | None:
        """Anthropic usage: `input_tokens` excludes cache reads and writes, so they are added."""
        if not usage or not isinstance(usage, dict):
            return None
        uncached = _count(usage.get("input_tokens"))
        read = _count(usage.get("cache_read_input_tokens"))
        write = _count(usage.get("cache_creation_input_tokens"))
        split = usage.get("cache_creation") or {}
        split = split if isinstance(split, dict) else {}
        write_1h = _count(split.get("ephemeral_1h_input_tokens"))
        if split and not write:
            write = _count(split.get("ephemeral_5m_input_tokens")) + write_1h
        return cls.of(uncached + read + write, _count(usage.get("output_tokens")),
                      cache_read=read, cache_write=write, cache_write_1h=write_1h)
