"""`tokenomy.Client` / `tokenomy.AsyncClient`: the OpenAI client's shape, tokenomy's engine.

    client = tokenomy.Client()                      # the engine in process (no server)
    client = tokenomy.Client("tokenomy.yaml")       # ... with these settings
    client = tokenomy.Client(base_url="http://127.0.0.1:8787/v1")   # a running proxy
    completion = client.chat.completions.create(model="local", messages=[...])

`create` returns `openai.types.chat.ChatCompletion`, or with `stream=True` an
iterator of `ChatCompletionChunk`, exactly as the `openai` package does. The
open `@tokenomy.step` travels with every call: in process as the request's
`tokenomy` options, to a proxy in the `tokenomy` body field. Per-request
options go in `tokenomy={...}` (or `extra_body={"tokenomy": {...}}`) and win
over the step's.

In process, errors are tokenomy's own (`tokenomy.errors.*`, OpenAI-shaped);
against a proxy they are the `openai` package's, as with any OpenAI client.
A step budget that is spent raises `tokenomy.errors.BudgetExceeded` before
anything is sent, either way.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

from openai import NotGiven, Omit
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tokenomy.call import Call
from tokenomy.config import Settings, load_settings
from tokenomy.sdk.dispatch import ORIGINAL_HEADER, SENT_HEADER, StreamTap, attach_step, settle
from tokenomy.sdk.runner import InProcessEngine
from tokenomy.stream import close_source

_REQUEST_ONLY = ("extra_headers", "extra_query", "timeout")


def _body(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split `create(**kwargs)` into the JSON body and the per-request HTTP options."""
    request = {k: kwargs.pop(k) for k in _REQUEST_ONLY if k in kwargs}
    extra = kwargs.pop("extra_body", None) or {}
    tokenomy = kwargs.pop("tokenomy", None)
    # None, NOT_GIVEN and omit mean "not sent", as in the openai client.
    body = {k: v for k, v in kwargs.items()
            if v is not None and not isinstance(v, NotGiven | Omit)}
    body.update(extra)
    if tokenomy is not None:
        body["tokenomy"] = {**(body.get("tokenomy") or {}), **tokenomy}
    return body, request


def _remote_args(body: dict[str, Any]) -> dict[str, Any]:
    """openai's `create` wants model/messages/stream as arguments; the rest rides in extra_body."""
    body = dict(body)
    return {"model": body.pop("model"), "messages": body.pop("messages"),
            "stream": bool(body.pop("stream", False)), "extra_body": body}


def _chunk_dict(chunk: ChatCompletionChunk) -> dict[str, Any]:
    return chunk.model_dump(exclude_unset=True)


class ChunkStream:
    """An iterator of ChatCompletionChunk; `close()` (or leaving `with`) ends it early."""

    def __init__(self, chunks: Iterator[dict[str, Any]], call: Call | None = None) -> None:
        self._chunks = chunks
        self.call = call

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        return self

    def __next__(self) -> ChatCompletionChunk:
        return ChatCompletionChunk.model_validate(next(self._chunks))

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> ChunkStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncChunkStream:
    def __init__(self, chunks: AsyncIterator[dict[str, Any]], call: Call | None = None) -> None:
        self._chunks = chunks
        self.call = call

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        return ChatCompletionChunk.model_validate(await self._chunks.__anext__())

    async def close(self) -> None:
        await close_source(self._chunks)

    async def __aenter__(self) -> AsyncChunkStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _settings(config: str | os.PathLike[str] | Settings | None) -> Settings:
    return config if isinstance(config, Settings) else load_settings(config)


class _Completions:
    def __init__(self, owner: Any) -> None:
        self._owner = owner

    def create(self, **kwargs: Any) -> Any:
        return self._owner._create(kwargs)


class _Chat:
    def __init__(self, owner: Any) -> None:
        self.completions = _Completions(owner)


class Client:
    """Sync client; safe to call from plain code, worker threads and inside a running loop."""

    def __init__(
        self,
        config: str | os.PathLike[str] | Settings | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        **openai_options: Any,
    ) -> None:
        self.base_url = base_url
        self.last_call: Call | None = None  # the in-process engine's last Call (events, counts)
        self._engine: InProcessEngine | None = None
        self._remote: Any = None
        self._api_key = api_key  # in process: checked only when the ledger has virtual keys
        if base_url:
            import openai

            self._remote = openai.OpenAI(base_url=base_url, api_key=api_key or "tokenomy",
                                         **openai_options)
        else:
            self._engine = InProcessEngine(_settings(config))
        self.chat = _Chat(self)

    def _create(self, kwargs: dict[str, Any]) -> ChatCompletion | ChunkStream:
        body, request = _body(kwargs)
        body, ticket, wants_usage = attach_step(body)
        if self._remote is not None:
            raw = self._remote.chat.completions.with_raw_response.create(
                **_remote_args(body), **request)
            original, sent = raw.headers.get(ORIGINAL_HEADER), raw.headers.get(SENT_HEADER)
            parsed = raw.parse()
            if body.get("stream"):
                tap = StreamTap(ticket, wants_usage, original, sent)
                return ChunkStream(tap.iterate(_chunk_dict(c) for c in parsed))
            settle(ticket, parsed.usage.model_dump() if parsed.usage else None, original, sent)
            return parsed
        assert self._engine is not None
        outcome = self._engine.handle(body, self._api_key)
        call = self.last_call = outcome.call
        if outcome.chunks is not None:
            tap = StreamTap(ticket, wants_usage, call.prompt_tokens_original,
                            call.prompt_tokens_sent)
            return ChunkStream(tap.iterate(self._engine.iterate(outcome.chunks)), call)
        assert outcome.response is not None
        settle(ticket, outcome.response.get("usage"), call.prompt_tokens_original,
               call.prompt_tokens_sent)
        return ChatCompletion.model_validate(outcome.response)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
        if self._remote is not None:
            self._remote.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _AsyncCompletions:
    def __init__(self, owner: AsyncClient) -> None:
        self._owner = owner

    async def create(self, **kwargs: Any) -> Any:
        return await self._owner._create(kwargs)


class _AsyncChat:
    def __init__(self, owner: AsyncClient) -> None:
        self.completions = _AsyncCompletions(owner)


class AsyncClient:
    """Async client; awaiting it never blocks the caller's event loop."""

    def __init__(
        self,
        config: str | os.PathLike[str] | Settings | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        **openai_options: Any,
    ) -> None:
        self.base_url = base_url
        self.last_call: Call | None = None
        self._engine: InProcessEngine | None = None
        self._remote: Any = None
        self._api_key = api_key
        if base_url:
            import openai

            self._remote = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "tokenomy",
                                              **openai_options)
        else:
            self._engine = InProcessEngine(_settings(config))
        self.chat = _AsyncChat(self)

    async def _create(self, kwargs: dict[str, Any]) -> ChatCompletion | AsyncChunkStream:
        body, request = _body(kwargs)
        body, ticket, wants_usage = attach_step(body)
        if self._remote is not None:
            raw = await self._remote.chat.completions.with_raw_response.create(
                **_remote_args(body), **request)
            original, sent = raw.headers.get(ORIGINAL_HEADER), raw.headers.get(SENT_HEADER)
            parsed = raw.parse()  # the legacy raw response parses synchronously
            if body.get("stream"):
                tap = StreamTap(ticket, wants_usage, original, sent)
                return AsyncChunkStream(tap.aiterate(_adicts(parsed)))
            settle(ticket, parsed.usage.model_dump() if parsed.usage else None, original, sent)
            return parsed
        assert self._engine is not None
        outcome = await self._engine.ahandle(body, self._api_key)
        call = self.last_call = outcome.call
        if outcome.chunks is not None:
            tap = StreamTap(ticket, wants_usage, call.prompt_tokens_original,
                            call.prompt_tokens_sent)
            return AsyncChunkStream(tap.aiterate(self._engine.aiterate(outcome.chunks)), call)
        assert outcome.response is not None
        settle(ticket, outcome.response.get("usage"), call.prompt_tokens_original,
               call.prompt_tokens_sent)
        return ChatCompletion.model_validate(outcome.response)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.thread.arun(self._engine.engine.aclose())
            self._engine.thread.stop()
        if self._remote is not None:
            await self._remote.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _adicts(
        stream: AsyncIterator[ChatCompletionChunk]) -> AsyncGenerator[dict[str, Any], None]:
    async for chunk in stream:
        yield _chunk_dict(chunk)
