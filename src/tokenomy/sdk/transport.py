"""httpx transports that route an OpenAI client's chat calls through tokenomy.

Any client built on httpx (the `openai` package, LangChain's `ChatOpenAI`)
takes a transport; swapping it is the one-line way in, the same seam httpx
itself uses for tests. `TokenomyTransport` serves `POST .../chat/completions`

- in process, from an `InProcessEngine` (no server at all), or
- through a running proxy, adding the step's `tokenomy` body field on the way.

Either way the open `@tokenomy.step` is read in the caller's context (the
transport runs in the caller's thread or task), its budget is checked, and
the usage that comes back is charged to it. Other requests go to `inner`
(the network) unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson

from tokenomy.errors import TokenomyError
from tokenomy.identify import api_key_from_headers
from tokenomy.sdk.context import CallTicket
from tokenomy.sdk.dispatch import ORIGINAL_HEADER, SENT_HEADER, StreamTap, attach_step, settle
from tokenomy.sdk.runner import InProcessEngine, Outcome
from tokenomy.stream import close_source
from tokenomy.upstreams.sse import DONE, Decoder, SSEvent, encode, encode_chunk, encode_error

IN_PROCESS_URL = "http://tokenomy.in-process/v1"
JSON_HEADERS = {"content-type": "application/json"}
SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}


def _is_chat(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.rstrip("/").endswith("/chat/completions")


def _bearer(request: httpx.Request) -> str | None:
    return api_key_from_headers({k.lower(): v for k, v in request.headers.items()})


def _error(exc: TokenomyError) -> httpx.Response:
    # x-should-retry: the openai client must not retry a refusal (budget, bad request).
    headers = {**JSON_HEADERS, "x-should-retry": "false"}
    return httpx.Response(exc.status, headers=headers, content=orjson.dumps(exc.to_dict()))


def _settled_json(outcome: Outcome, ticket: CallTicket, tap: StreamTap) -> httpx.Response:
    """The in-process engine's JSON answer, with its usage settled on the step's ticket."""
    assert outcome.response is not None
    settle(ticket, outcome.response.get("usage"), tap.original, tap.sent)
    return httpx.Response(200, headers={**JSON_HEADERS, **_call_headers(outcome)},
                          content=orjson.dumps(outcome.response))


def _call_headers(outcome: Outcome) -> dict[str, str]:
    return outcome.call.response_headers()


class _SyncSSE(httpx.SyncByteStream):
    def __init__(self, chunks: Iterator[dict[str, Any]]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._chunks:
                yield encode_chunk(chunk)
            yield DONE
        except TokenomyError as exc:
            yield encode_error(exc)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class _AsyncSSE(httpx.AsyncByteStream):
    def __init__(self, chunks: AsyncIterator[dict[str, Any]]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._chunks:
                yield encode_chunk(chunk)
            yield DONE
        except TokenomyError as exc:
            yield encode_error(exc)

    async def aclose(self) -> None:
        await close_source(self._chunks)


def _retap(event: SSEvent, tap: StreamTap) -> bytes | None:
    """One SSE event from the proxy, re-encoded after the tap saw it (None: hide it)."""
    data = event.data.strip()
    if event.event is not None or data == "[DONE]":
        return encode(event.data, event.event)
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        return encode(event.data)
    if not isinstance(chunk, dict) or ("choices" not in chunk and "usage" not in chunk):
        return encode(event.data)
    out = tap.see(chunk)
    return None if out is None else encode_chunk(out)


class TokenomyTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Route chat completions through tokenomy; in process (`engine`) or via a proxy."""

    def __init__(
        self,
        engine: InProcessEngine | None = None,
        *,
        inner: httpx.BaseTransport | None = None,
        async_inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.engine = engine
        self.inner = inner or httpx.HTTPTransport()
        self.async_inner = async_inner or httpx.AsyncHTTPTransport()

    # -- sync ------------------------------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not _is_chat(request):
            return self.inner.handle_request(request)
        try:
            body, ticket, wants_usage = attach_step(orjson.loads(request.read()))
        except TokenomyError as exc:
            return _error(exc)
        if self.engine is None:
            return self._via_proxy(request, body, StreamTap(ticket, wants_usage))
        try:
            outcome = self.engine.handle(body, _bearer(request))
        except TokenomyError as exc:
            return _error(exc)
        tap = StreamTap(ticket, wants_usage, outcome.call.prompt_tokens_original,
                        outcome.call.prompt_tokens_sent)
        if outcome.chunks is not None:
            chunks = tap.iterate(self.engine.iterate(outcome.chunks))
            return httpx.Response(200, headers={**SSE_HEADERS, **_call_headers(outcome)},
                                  stream=_SyncSSE(chunks))
        return _settled_json(outcome, ticket, tap)

    def _via_proxy(self, request: httpx.Request, body: dict[str, Any],
                   tap: StreamTap) -> httpx.Response:
        response = self.inner.handle_request(_rebuild(request, body))
        tap.original, tap.sent = (response.headers.get(ORIGINAL_HEADER),
                                  response.headers.get(SENT_HEADER))
        if body.get("stream") and response.status_code == 200:
            return httpx.Response(response.status_code, headers=_plain(response.headers),
                                  stream=_SyncTapped(response, tap))
        content = response.read()
        response.close()
        _settle_json(tap, content, response.status_code)
        return httpx.Response(response.status_code, headers=_plain(response.headers),
                              content=content)

    def close(self) -> None:
        self.inner.close()

    # -- async -----------------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not _is_chat(request):
            return await self.async_inner.handle_async_request(request)
        try:
            body, ticket, wants_usage = attach_step(orjson.loads(await request.aread()))
        except TokenomyError as exc:
            return _error(exc)
        if self.engine is None:
            return await self._avia_proxy(request, body, StreamTap(ticket, wants_usage))
        try:
            outcome = await self.engine.ahandle(body, _bearer(request))
        except TokenomyError as exc:
            return _error(exc)
        tap = StreamTap(ticket, wants_usage, outcome.call.prompt_tokens_original,
                        outcome.call.prompt_tokens_sent)
        if outcome.chunks is not None:
            chunks = tap.aiterate(self.engine.aiterate(outcome.chunks))
            return httpx.Response(200, headers={**SSE_HEADERS, **_call_headers(outcome)},
                                  stream=_AsyncSSE(chunks))
        return _settled_json(outcome, ticket, tap)

    async def _avia_proxy(self, request: httpx.Request, body: dict[str, Any],
                          tap: StreamTap) -> httpx.Response:
        response = await self.async_inner.handle_async_request(_rebuild(request, body))
        tap.original, tap.sent = (response.headers.get(ORIGINAL_HEADER),
                                  response.headers.get(SENT_HEADER))
        if body.get("stream") and response.status_code == 200:
            return httpx.Response(response.status_code, headers=_plain(response.headers),
                                  stream=_AsyncTapped(response, tap))
        content = await response.aread()
        await response.aclose()
        _settle_json(tap, content, response.status_code)
        return httpx.Response(response.status_code, headers=_plain(response.headers),
                              content=content)

    async def aclose(self) -> None:
        await self.async_inner.aclose()


def _rebuild(request: httpx.Request, body: dict[str, Any]) -> httpx.Request:
    """The same request with the step merged into its JSON body; identity encoding, so the
    tap reads plain bytes."""
    headers = {k: v for k, v in request.headers.items()
               if k.lower() not in ("content-length", "accept-encoding")}
    headers["accept-encoding"] = "identity"
    return httpx.Request(request.method, request.url, headers=headers,
                         content=orjson.dumps(body), extensions=request.extensions)


def _plain(headers: httpx.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items()
            if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")}


def _settle_json(tap: StreamTap, content: bytes, status: int) -> None:
    if status != 200:
        return
    try:
        usage = orjson.loads(content).get("usage")
    except (orjson.JSONDecodeError, AttributeError):
        usage = None
    settle(tap.ticket, usage, tap.original, tap.sent)


class _SyncTapped(httpx.SyncByteStream):
    def __init__(self, response: httpx.Response, tap: StreamTap) -> None:
        self.response, self.tap = response, tap

    def __iter__(self) -> Iterator[bytes]:
        decoder = Decoder()
        try:
            for data in self.response.iter_raw():
                for event in decoder.feed(data):
                    out = _retap(event, self.tap)
                    if out is not None:
                        yield out
            for event in decoder.close():
                out = _retap(event, self.tap)
                if out is not None:
                    yield out
        finally:
            self.tap.end()

    def close(self) -> None:
        self.response.close()


class _AsyncTapped(httpx.AsyncByteStream):
    def __init__(self, response: httpx.Response, tap: StreamTap) -> None:
        self.response, self.tap = response, tap

    async def __aiter__(self) -> AsyncIterator[bytes]:
        decoder = Decoder()
        try:
            async for data in self.response.aiter_raw():
                for event in decoder.feed(data):
                    out = _retap(event, self.tap)
                    if out is not None:
                        yield out
            for event in decoder.close():
                out = _retap(event, self.tap)
                if out is not None:
                    yield out
        finally:
            self.tap.end()

    async def aclose(self) -> None:
        await self.response.aclose()
