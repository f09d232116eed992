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


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0

    @classmethod
    def from_openai(cls, usage: dict[str, Any] | None) -> Usage | None:
        if not usage:
            return None
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        details = usage.get("completion_tokens_details") or {}
        prompt_details = usage.get("prompt_tokens_details") or {}
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=int(usage.get("total_tokens") or prompt + completion),
            reasoning_tokens=int(details.get("reasoning_tokens") or 0),
            cached_tokens=int(prompt_details.get("cached_tokens") or 0),
        )


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
