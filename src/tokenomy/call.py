"""The types every stage shares: a Call flows in, a Result flows out.

A `Call` carries the request in its own wire protocol (`body`), a transcript
view of it (`transcript`), who is asking, where it goes, and its accounting.
It owns two things no stage touches directly:

- the prompt: stages change it only with `call.edit(...)`, which writes each
  edited part back into the native body, records the event and recounts the
  edited parts once (tokens in the upstream model's tokenizer);
- the response headers: `call.response_headers()` derives every
  `x-tokenomy-*` header from the call's typed fields, for the proxy and the
  SDK alike.

A `Result` is a whole response or a `ChunkStream`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator

from tokenomy.limits import BudgetSpec
from tokenomy.options import CompressOptions, TokenomyOptions
from tokenomy.stream import Chunk, ChunkStream
from tokenomy.tokenizers import count_text
from tokenomy.transcript import OPENAI_CHAT, Part, Transcript, WireProtocol
from tokenomy.usage import Usage

__all__ = ["Allowance", "Call", "Chunk", "ChunkStream", "CompressOptions", "Credentials", "Event",
           "Identity", "Result", "Route", "TokenomyOptions", "Usage", "new_request_id"]

log = logging.getLogger("tokenomy.call")

REQUEST_ID = "x-tokenomy-request-id"
INLINE_COUNT_BYTES = 32_768  # larger bodies are counted off the event loop


def header_value(value: Any) -> str:
    """A header value never carries CR/LF or non-latin-1 text (no header injection)."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    return text.encode("latin-1", "replace").decode("latin-1")


def new_request_id() -> str:
    return "tk-" + uuid.uuid4().hex


DEFAULT_TEAM = "default"


class Identity(BaseModel):
    """Who a call is attributed to, and the budget of the key that authenticated it."""

    team: str = DEFAULT_TEAM
    key_id: str | None = None
    key_name: str | None = None
    key_budget: BudgetSpec | None = None
    user: str | None = None
    step: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class Credentials(BaseModel):
    """What the caller presented (a tokenomy key), never forwarded to a backend."""

    api_key: SecretStr | None = None

    @property
    def token(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None


class Route(NamedTuple):
    """One place a model alias can go: the backend and the backend's own model name."""

    alias: str
    backend: str
    upstream_model: str


@runtime_checkable
class Allowance(Protocol):
    """What a request's upstream calls may spend: the budget stage's reservation.

    Every upstream call a request makes draws on it (`admit`, in the upstream
    handler), so consensus samples, an escalation, `n` choices and a fallback
    that re-sends are all held in the ledger before they are sent; a stage that
    is about to make several calls asks for them at once (`cover`) and can pick
    something cheaper when the budget says no. See budgets/allowance.py.
    """

    async def cover(self, calls: Sequence[Call]) -> bool:
        """Hold enough for these upstream calls (besides those made); False: refused."""
        ...

    async def admit(self, call: Call, route: Route, body: dict[str, Any]) -> dict[str, Any]:
        """Draw one upstream call of `body` on `route`; returns the body to send (with an
        output cap when it set none). Raises BudgetExceeded when it cannot be held."""
        ...

    def returned(self, call: Call, body: dict[str, Any], usage: Usage | None, *,
                 failed: bool = False) -> None:
        """The upstream call of `body` (as `admit` returned it) answered with `usage`
        (None: it reported none), or `failed` before answering (its draw goes back)."""
        ...


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


_PROTOCOL_TYPES: set[type] = set()  # classes `Call._is_protocol` has checked

class Call(BaseModel):
    """One request on its way through the pipeline."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    request_id: str = Field(default_factory=new_request_id)
    protocol: Any = OPENAI_CHAT  # a WireProtocol (typed as Any for pydantic)
    route: str = ""  # the way in: the HTTP path ("/v1/chat/completions") or "sdk"
    body: dict[str, Any]
    options: TokenomyOptions = Field(default_factory=TokenomyOptions)
    identity: Identity = Field(default_factory=Identity)
    credentials: Credentials = Field(default_factory=Credentials)
    # Client headers on the protocol's forwarding allowlist (e.g. anthropic-beta).
    client_headers: dict[str, str] = Field(default_factory=dict)
    body_bytes: int = 0  # size of the request as received (0: unknown, e.g. in process)
    started: float = Field(default_factory=time.perf_counter)
    created_at: float = Field(default_factory=time.time)
    events: list[Event] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)  # primary first, then fallbacks
    backend: str | None = None  # where the call went (or is about to go)
    upstream_model: str | None = None
    fallback: str | None = None  # "failed-alias -> alias that answered", when one did
    mode: str | None = None  # the reasoning mode the plan stage chose
    consensus: str | None = None  # "samples=N; escalated=BOOL"
    degrade: bool = False  # budget pressure: compress harder, think less
    budget_warning: str | None = None
    budget_remaining: str | None = None
    cost_usd: float | None = None
    # One of several upstream calls made for one request (consensus samples): never
    # answered from the response cache, which would make the samples identical.
    forked: bool = False
    # What the response cache did: hit, miss, refresh (looked past it), bypass.
    cache: str | None = None
    # What the ledger settled (the backend's usage, or tokenomy's count when it
    # reported none) and the dollars each technique saved at this model's prices.
    usage: Usage | None = None
    savings_usd: dict[str, float] = Field(default_factory=dict)
    settle: str | None = None  # how the ledger took it: landed | spooled | rejected
    # Time spent waiting on backends (every attempt; a stream until its last chunk),
    # so the request log can tell the backend's latency from tokenomy's.
    upstream_ms: float = 0.0
    upstream_status: int | None = None  # the backend's own HTTP status when it failed
    traceparent: str | None = None  # W3C trace context the client sent, for the spans
    # Set by the budget stage; shared by the call's forks (consensus samples).
    allowance: Allowance | None = None
    _transcript: Transcript | None = PrivateAttr(default=None)
    _original: int | None = PrivateAttr(default=None)
    _delta: int = PrivateAttr(default=0)

    @field_validator("protocol")
    @classmethod
    def _is_protocol(cls, value: Any) -> Any:
        # A runtime Protocol check walks every method (7% of a proxied request's CPU);
        # a class that passed once is remembered.
        kind = type(value)
        if kind not in _PROTOCOL_TYPES:
            if not isinstance(value, WireProtocol):
                raise ValueError("protocol must be a WireProtocol")
            _PROTOCOL_TYPES.add(kind)
        return value

    # -- reading the request --------------------------------------------------------

    @property
    def model(self) -> str:
        return str(self.body.get("model") or "")

    @property
    def messages(self) -> list[dict[str, Any]]:
        """OpenAI chat messages (tests and examples); stages read `transcript` instead."""
        return self.body.get("messages") or []

    @property
    def stream(self) -> bool:
        return bool(self.protocol.is_stream(self.body))

    @property
    def transcript(self) -> Transcript:
        if self._transcript is None or self._transcript.body is not self.body:
            self._transcript = Transcript(self.body, self.protocol.parts)
        return self._transcript

    @property
    def token_model(self) -> str:
        """The model whose tokenizer counts this call: the upstream's, else the alias."""
        return self.upstream_model or self.model or "gpt-4o"

    # -- accounting -----------------------------------------------------------------

    def count(self) -> int:
        """Prompt tokens of the body as it is now (a full count; edits use deltas)."""
        return self.protocol.count(self.body, self.token_model)

    def _count_safely(self) -> int:
        try:
            return self.count()
        except Exception:  # an odd shape must not block accounting: ~4 characters a token
            log.exception("counting prompt tokens failed; estimating from the body size")
            return max(self.body_bytes, len(str(self.body))) // 4 + 4

    @property
    def prompt_tokens_original(self) -> int:
        """Prompt tokens as the client sent them, counted once."""
        if self._original is None:
            self._original = self._count_safely()
        return self._original

    @prompt_tokens_original.setter
    def prompt_tokens_original(self, tokens: int) -> None:
        """Take a count made elsewhere as the baseline (tests, replays)."""
        self._original = tokens

    @property
    def counted_tokens_original(self) -> int | None:
        """`prompt_tokens_original` if something counted it already, else None: a request
        refused before it was counted is not counted just to be logged."""
        return self._original

    def token_counts(self) -> tuple[int | None, int | None]:
        """(original, sent) when the prompt was counted, else (None, None): read once
        for a finished call's record, without counting anything."""
        private = self.__pydantic_private__ or {}
        original = private.get("_original")
        if original is None:
            return None, None
        return original, original + private.get("_delta", 0)

    @property
    def prompt_tokens_sent(self) -> int:
        """Prompt tokens as they leave for the backend: the original plus every edit's delta."""
        return self.prompt_tokens_original + self._delta

    async def original_tokens(self) -> int:
        """`prompt_tokens_original`, counted in a worker thread when the body is large, so
        a megabyte prompt never stalls the event loop."""
        if self._original is None:
            if self.body_bytes > INLINE_COUNT_BYTES or (self.body_bytes == 0 and len(
                    self.body.get("messages") or self.body.get("input") or ()) > 64):
                self._original = await asyncio.to_thread(self._count_safely)
            else:
                self._original = self._count_safely()
        return self._original

    def edit(self, stage: str, changes: Sequence[tuple[Part, str]], *,
             technique: str | None = None, ms: float = 0.0,
             detail: dict[str, Any] | None = None,
             events: Sequence[Event] | None = None) -> list[Event]:
        """Change the prompt: write each part's new text back into the body, recount.

        Only the edited parts are counted again (before and after), so an edit of
        one tool output in an 80k-token prompt costs that output's tokens, not the
        prompt's. `events` records a stage's own breakdown (one per technique);
        without them one event covers the whole edit.
        """
        before = self.prompt_tokens_sent
        model = self.token_model
        delta = 0
        transcript = self.transcript
        for part, text in changes:
            if text == part.text:
                continue
            delta += count_text(text, model) - count_text(part.text, model)
            transcript.write(part, text)
        self._delta += delta
        if events is None:
            events = [Event(stage=stage, technique=technique, tokens_before=before,
                            tokens_after=before + delta, ms=ms, detail=detail or {})]
        self.events.extend(events)
        return list(events)

    def append_instruction(self, stage: str, text: str, *, technique: str | None = None,
                           ms: float = 0.0, detail: dict[str, Any] | None = None) -> Event:
        """Add an instruction at the end of the last user turn (the end, not the system
        prompt: the cached prefix stays byte-identical), and count what it added."""
        before = self.prompt_tokens_sent
        added = self.protocol.append_user_text(self.body, text)
        self._transcript = None  # the parts changed shape
        self._delta += count_text(added, self.token_model)
        return self.record(stage, technique=technique, tokens_before=before,
                           tokens_after=self.prompt_tokens_sent, ms=ms, detail=detail or {})

    def record(self, stage: str, **fields: Any) -> Event:
        """An event that did not change the prompt (a decision, a skip, a reservation)."""
        event = Event(stage=stage, **fields)
        self.events.append(event)
        return event

    def fork(self, body: dict[str, Any]) -> Call:
        """A copy of this call with another body (consensus samples): same identity,
        route and accounting baseline, its own events."""
        twin = self.model_copy(update={"body": body, "events": [], "forked": True})
        twin._transcript = None
        twin._original, twin._delta = self._original, self._delta
        return twin

    # -- the response's headers ---------------------------------------------------------

    def response_headers(self) -> dict[str, str]:
        """Every x-tokenomy-* header, derived from the call (the proxy and the SDK use this).

        The token counts are there once the call was counted (every answered call is,
        see Engine.run); a call refused before that (a missing key) is never counted
        just to fill a header: 8 MB of unauthenticated text is not tokenised.
        """
        headers = {REQUEST_ID: self.request_id}
        if self._original is not None:
            headers["x-tokenomy-prompt-tokens-original"] = str(self.prompt_tokens_original)
            headers["x-tokenomy-prompt-tokens-sent"] = str(self.prompt_tokens_sent)
        optional = {
            "x-tokenomy-mode": self.mode,
            "x-tokenomy-consensus": self.consensus,
            "x-tokenomy-budget-warning": self.budget_warning,
            "x-tokenomy-budget-remaining": self.budget_remaining,
            "x-tokenomy-fallback": self.fallback,
            "x-tokenomy-cache": self.cache,
            "x-tokenomy-cost-usd": (f"{self.cost_usd:.6f}" if self.cost_usd is not None
                                    else None),
        }
        headers.update({name: header_value(value) for name, value in optional.items() if value})
        return headers

    @property
    def headers(self) -> dict[str, str]:
        return self.response_headers()


UsageReader = Callable[[Chunk], Usage | None]


def _openai_chunk_usage(chunk: Chunk) -> Usage | None:
    return Usage.from_openai(chunk.get("usage"))


class Result(BaseModel):
    """A whole response, or a stream of chunks in the call's wire protocol."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    response: dict[str, Any] | None = None
    chunks: ChunkStream | None = None
    usage: Usage | None = None
    status: int = 200
    read_usage: UsageReader = _openai_chunk_usage  # how this protocol's chunks carry usage
    # Set when the response cache answered: what the answer cost when the backend
    # made it. Nothing was sent upstream this time, so nothing is charged for it.
    cached_usage: Usage | None = None

    @field_validator("chunks", mode="before")
    @classmethod
    def _as_stream(cls, value: Any) -> Any:
        return None if value is None else ChunkStream.of(value)

    @property
    def is_stream(self) -> bool:
        return self.chunks is not None

    def wrap_stream(
        self,
        on_chunk: Callable[[Chunk], None] | None = None,
        on_end: Callable[[BaseException | None], Awaitable[None]] | None = None,
    ) -> None:
        """See every chunk and the stream's end (`on_end` runs exactly once, see ChunkStream).

        Usage found in chunks is copied into `self.usage` before `on_end`.
        """
        stream = self.chunks
        assert stream is not None
        result = self

        def watch(chunk: Chunk) -> None:
            found = result.read_usage(chunk)
            if found is not None:
                result.usage = found
            if on_chunk is not None:
                on_chunk(chunk)

        stream.observe(watch)
        if on_end is not None:
            stream.on_end(on_end)
