"""What every HTTP backend kind shares: one pooled aiohttp session, safe retries, reading.

`PooledBackend` is the base of the `openai` and `anthropic` kinds. It owns the
session (one per event loop), POSTs with the retries that are safe before
anything reached the caller, maps a backend's error status to ours without
leaking its credentials, reads JSON answers, and reads SSE streams through the
one `protocol_chunks` reader, draining a finished stream so its connection
goes back to the pool.

Why aiohttp and not httpx: measured on this project's loopback benchmark, an
httpx.AsyncClient POST costs ~1,000 µs of CPU per request (httpcore + anyio +
h11 in pure Python), an aiohttp one ~110-150 µs (C HTTP parser, plain asyncio
protocol). The client is most of the proxy's own cost, so it decides whether
the proxy adds under a millisecond (see benchmarks/proxy_overhead.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import aiohttp
import orjson
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from tokenomy.config import BackendSettings
from tokenomy.errors import BadRequest, TokenomyError, UpstreamError, UpstreamTimeout
from tokenomy.transcript import WireProtocol
from tokenomy.upstreams.retry import RETRYABLE_STATUS, backoff, retry_after_seconds
from tokenomy.upstreams.sse import events, protocol_chunks

# After a stream's last event the rest of the body (the chunked terminator) is read so
# the connection goes back to the pool; a backend that keeps it open longer loses it.
DRAIN_SECONDS = 1.0
OVERLOADED = 529  # Anthropic's "overloaded": a server-side, retryable refusal


def _error_message(content: bytes, reason: str | None) -> tuple[str, str | None]:
    """The message of an error body (OpenAI's `{"error": {...}}`, Anthropic's
    `{"type": "error", "error": {...}}`, a bare string, else the first bytes), and the
    request field it names (if it names one)."""
    try:
        body = orjson.loads(content)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            param = error.get("param")
            return str(error["message"]), param if isinstance(param, str) else None
        if isinstance(error, str):
            return error, None
    except orjson.JSONDecodeError:
        pass
    return content[:300].decode("utf-8", "replace") or reason or "no details", None


def status_error(backend: str, status: int, headers: Mapping[str, str],
                 content: bytes, reason: str | None = None) -> TokenomyError:
    """Map a backend's error status to ours, never leaking its credentials; the
    backend's own status stays on the error (`upstream_status`) for the request log."""
    error = _status_error(backend, status, headers, content, reason)
    error.upstream_status = status
    return error


def _status_error(backend: str, status: int, headers: Mapping[str, str],
                  content: bytes, reason: str | None) -> TokenomyError:
    message, param = _error_message(content, reason)
    if status in (401, 403):
        # The backend refused *our* credentials: a gateway problem, not the caller's.
        return UpstreamError(f"backend '{backend}' refused the proxy's credentials ({status})")
    if status == 429:
        extra = {}
        if headers.get("retry-after"):
            extra["retry-after"] = headers["retry-after"]
        return TokenomyError(
            f"backend '{backend}' is rate limiting: {message}",
            status=429, type="rate_limit_error", code="upstream_rate_limited", headers=extra,
        )
    if 400 <= status < 500:
        return TokenomyError(message, status=status, type="invalid_request_error",
                             code="upstream_rejected", param=param)
    if status == 504:
        return UpstreamTimeout(f"backend '{backend}' timed out (504): {message}")
    if status == OVERLOADED:
        return TokenomyError(f"backend '{backend}' is overloaded: {message}", status=OVERLOADED,
                             type="overloaded_error", code="upstream_overloaded")
    return UpstreamError(f"backend '{backend}' failed with {status}: {message}")


class PooledBackend:
    """The shared half of an HTTP backend kind; subclasses say where and what to send."""

    def __init__(self, name: str, settings: BackendSettings, headers: dict[str, str],
                 base_url: str):
        self.name = name
        self.settings = settings
        self._headers = {"content-type": "application/json", **headers}
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=settings.timeout,  # waiting for a pooled connection, then connecting
            sock_connect=settings.connect_timeout,
            sock_read=settings.timeout,  # silence between two reads
        )
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # HTTP(S)_PROXY / NO_PROXY are read once here: aiohttp's trust_env would
        # look them up again in a worker thread on every request.
        self._proxy: Any = None
        self._proxy_auth: Any = None
        with contextlib.suppress(LookupError):
            self._proxy, self._proxy_auth = get_env_proxy_for_url(URL(self._base))

    def _client(self) -> aiohttp.ClientSession:
        """One pooled session per event loop (the SDK may run calls on several loops)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.settings.max_connections, keepalive_timeout=15, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=self._timeout, connector=connector,
                skip_auto_headers=("User-Agent",), raise_for_status=False,
                # A proxy must never carry one caller's cookies into another's request.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._loop = loop
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            # RuntimeError: its loop is gone (an SDK call on another loop).
            with contextlib.suppress(RuntimeError):
                await session.close()

    def error_for(self, status: int, headers: Mapping[str, str], content: bytes,
                  reason: str | None) -> TokenomyError:
        return status_error(self.name, status, headers, content, reason)

    async def post(self, path: str, body: dict[str, Any],
                   headers: Mapping[str, str] | None = None) -> aiohttp.ClientResponse:
        """POST `body` to the base URL + `path` with retries that are safe: nothing has
        reached the caller yet. `headers` are added to the session's (the caller
        filters them: they never carry credentials)."""
        url = self._base + path
        try:
            content = orjson.dumps(body)
        except orjson.JSONEncodeError as exc:  # e.g. nested deeper than orjson writes (255)
            raise BadRequest(f"the request cannot be forwarded as JSON: {exc}") from exc
        session = self._client()
        attempt = 0
        while True:
            wait: float | None = None
            try:
                response = await session.post(url, data=content, headers=headers or None,
                                              proxy=self._proxy, proxy_auth=self._proxy_auth)
            except aiohttp.ServerTimeoutError as exc:
                # A read timeout may mean the backend is still working (and billing):
                # only a connect timeout is safe to retry.
                if (isinstance(exc, aiohttp.ConnectionTimeoutError)
                        and attempt < self.settings.max_retries):
                    wait = backoff(attempt)
                else:
                    raise UpstreamTimeout(f"backend '{self.name}' timed out") from exc
            except TimeoutError as exc:  # waiting for a pooled connection
                raise UpstreamTimeout(f"backend '{self.name}' timed out") from exc
            except aiohttp.ClientError as exc:
                if (attempt < self.settings.max_retries
                        and isinstance(exc, aiohttp.ClientConnectorError)):
                    wait = backoff(attempt)
                else:
                    raise UpstreamError(
                        f"backend '{self.name}' is unreachable: {type(exc).__name__}"
                    ) from exc
            else:
                if response.status < 400:
                    return response
                try:
                    error_body = await response.read()
                except (aiohttp.ClientError, TimeoutError):
                    error_body = b""
                finally:
                    response.release()
                if response.status in RETRYABLE_STATUS and attempt < self.settings.max_retries:
                    retry_after = retry_after_seconds(response.headers.get("retry-after"))
                    wait = backoff(attempt, retry_after)
                else:
                    raise self.error_for(response.status, response.headers, error_body,
                                         response.reason)
            attempt += 1
            await asyncio.sleep(wait)

    @contextlib.contextmanager
    def reading(self, *, timed_out: str, broke: str) -> Iterator[None]:
        """aiohttp's failures while a response body is read, as our upstream errors."""
        try:
            yield
        except (aiohttp.ServerTimeoutError, TimeoutError) as exc:
            raise UpstreamTimeout(f"backend '{self.name}' {timed_out}") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"backend '{self.name}' broke the {broke}: {type(exc).__name__}"
            ) from exc

    async def read_json(self, response: aiohttp.ClientResponse, field: str) -> dict[str, Any]:
        """The whole JSON answer, which must be an object holding `field`."""
        try:
            with self.reading(timed_out="timed out", broke="response"):
                content = await response.read()
        finally:
            response.release()
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"backend '{self.name}' returned malformed JSON") from exc
        if not isinstance(data, dict) or field not in data:
            raise UpstreamError(f"backend '{self.name}' returned a response without {field}")
        return data

    async def sse_chunks(self, response: aiohttp.ClientResponse,
                         protocol: WireProtocol) -> AsyncIterator[dict[str, Any]]:
        """The stream's chunks in `protocol` (see `protocol_chunks`); a finished stream is
        drained so the connection is reused, a broken one is closed."""
        clean = False
        try:
            with self.reading(timed_out="stalled mid-stream", broke="stream"):
                async for chunk in protocol_chunks(events(response.content.iter_any()),
                                                   self.name, protocol):
                    yield chunk
            clean = True
        finally:
            if clean and not response.content.at_eof():
                try:
                    await asyncio.wait_for(response.content.read(), DRAIN_SECONDS)
                except (aiohttp.ClientError, TimeoutError):
                    clean = False
            if clean:
                response.release()  # fully read: the connection is reused
            else:
                response.close()  # cut short (client gone, error): never reuse it
