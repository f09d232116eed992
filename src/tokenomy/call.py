"""The types every stage shares: a Call flows in, a Result flows out.

A `Call` carries the OpenAI-shaped request body, who is asking, the policy
that applies and the events each stage recorded. A `Result` is either a whole
response or a stream of chunks; stages that need the end of a stream wrap it
(see `Result.wrap_stream`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field


def new_request_id() -> str:
    return "tk-" + uuid.uuid4().hex


class Identity(BaseModel):
    """Who a call is attributed to."""

    team: str = "default"
    key_id: str | None = None
    user: str | None = None
    step: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class CompressOptions(BaseModel):
    """What the caller asked of compression (the `tokenomy.compress` field)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    target_ratio: float | None = Field(default=None, gt=1.0, le=100.0)
    target_tokens: int | None = Field(default=None, ge=1)
    method: Literal["auto", "lossless", "extractive", "tokens", "code", "history"] = "auto"
    keep_prefix: bool = True
    reorder: bool = False
    documents: list[int] | None = None  # message indices to treat as retrieved documents


class TokenomyOptions(BaseModel):
    """The per-request `tokenomy` body field. It never reaches the backend."""

    model_config = ConfigDict(extra="forbid")

    compress: CompressOptions | None = None
    reasoning: str | None = None  # "auto" or a mode name
    step: str | None = None
    team: str | None = None
    user: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    # Ask for the cheap path (compress harder, think less): the SDK sets it when a
    # step with on_budget="degrade" has spent its budget; the `step` stage applies it.
    degrade: bool = False


class Event(BaseModel):
    """What one stage did to a call."""

    stage: str
    technique: str | None = None
    tokens_before: int | None = None
    tokens_after: int | None = None
    ms: float = 0.0
    detail: dict[str, Any] = Field(default_factory=dict)

    @property
    def saved(self) -> int:
        if self.tokens_before is None or self.tokens_after is None:
            return 0
        return max(0, self.tokens_before - self.tokens_after)


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


class Call(BaseModel):
    """One chat-completion request on its way through the pipeline."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    request_id: str = Field(default_factory=new_request_id)
    body: dict[str, Any]
    options: TokenomyOptions = Field(default_factory=TokenomyOptions)
    identity: Identity = Field(default_factory=Identity)
    started: float = Field(default_factory=time.perf_counter)
    created_at: float = Field(default_factory=time.time)
    events: list[Event] = Field(default_factory=list)
    # Response headers any stage may add (x-tokenomy-*).
    headers: dict[str, str] = Field(default_factory=dict)
    # Set by the stages that know them.
    backend: str | None = None
    upstream_model: str | None = None
    prompt_tokens_original: int | None = None
    prompt_tokens_sent: int | None = None
    mode: str | None = None
    degrade: bool = False  # budget pressure: compress harder, think less
    # Scratch space for stages that must talk to each other (e.g. a reservation).
    state: dict[str, Any] = Field(default_factory=dict)

    @property
    def model(self) -> str:
        return str(self.body.get("model") or "")

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages") or []

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    def record(self, stage: str, **fields: Any) -> Event:
        event = Event(stage=stage, **fields)
        self.events.append(event)
        return event


Chunk = dict[str, Any]


class Result(BaseModel):
    """A whole response, or a stream of OpenAI `chat.completion.chunk` dicts."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    response: dict[str, Any] | None = None
    chunks: AsyncIterator[Chunk] | None = None
    usage: Usage | None = None
    status: int = 200

    @property
    def is_stream(self) -> bool:
        return self.chunks is not None

    def wrap_stream(
        self,
        on_chunk: Callable[[Chunk], None] | None = None,
        on_end: Callable[[BaseException | None], Awaitable[None]] | None = None,
    ) -> None:
        """Wrap the stream so a stage sees every chunk and the stream's end.

        `on_end` runs exactly once: after the last chunk, on an error (with the
        exception), or when the consumer goes away mid-stream (GeneratorExit).
        Usage found in chunks is copied into `self.usage` before `on_end`.
        """
        inner = self.chunks
        assert inner is not None
        result = self

        async def wrapped() -> AsyncIterator[Chunk]:
            error: BaseException | None = None
            try:
                async for chunk in inner:
                    usage = chunk.get("usage")
                    if usage:
                        result.usage = Usage.from_openai(usage)
                    if on_chunk is not None:
                        on_chunk(chunk)
                    yield chunk
            except BaseException as exc:  # includes GeneratorExit and cancellation
                error = exc
                raise
            finally:
                if on_end is not None:
                    # A client that disconnects cancels the response task; the end of
                    # the stream (settling the ledger) must still run to completion.
                    with anyio.CancelScope(shield=True):
                        await on_end(error)

        self.chunks = wrapped()
