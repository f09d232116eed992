"""Any OpenAI-compatible backend over one pooled httpx.AsyncClient: the fast path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from tokenomy.config import BackendSettings
from tokenomy.errors import TokenomyError, UpstreamError, UpstreamTimeout
from tokenomy.middleware.upstreams.retry import RETRYABLE_STATUS, backoff, retry_after_seconds
from tokenomy.middleware.upstreams.sse import parse_sse


def _error_message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    except orjson.JSONDecodeError:
        pass
    return response.text[:300] or response.reason_phrase


def status_error(backend: str, response: httpx.Response) -> TokenomyError:
    """Map a backend's error status to ours, never leaking its credentials."""
    status = response.status_code
    message = _error_message(response)
    if status in (401, 403):
        # The backend refused *our* credentials: a gateway problem, not the caller's.
        return UpstreamError(f"backend '{backend}' refused the proxy's credentials ({status})")
    if status == 429:
        headers = {}
        if response.headers.get("retry-after"):
            headers["retry-after"] = response.headers["retry-after"]
        return TokenomyError(
            f"backend '{backend}' is rate limiting: {message}",
            status=429, type="rate_limit_error", code="upstream_rate_limited", headers=headers,
        )
    if 400 <= status < 500:
        return TokenomyError(message, status=status, type="invalid_request_error",
                             code="upstream_rejected")
    if status == 504:
        return UpstreamTimeout(f"backend '{backend}' timed out (504): {message}")
    return UpstreamError(f"backend '{backend}' failed with {status}: {message}")


class OpenAICompatible:
    def __init__(self, name: str, settings: BackendSettings):
        self.name = name
        self.settings = settings
        headers = {"content-type": "application/json", **settings.headers}
        api_key = settings.resolved_api_key()
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._url = settings.base_url.rstrip("/") + "/chat/completions"  # type: ignore[union-attr]
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
                keepalive_expiry=30,
            ),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _send(self, body: dict[str, Any], stream: bool) -> httpx.Response:
        """POST with retries that are safe: nothing has reached the caller yet."""
        content = orjson.dumps(body)
        attempt = 0
        while True:
            wait: float | None = None
            try:
                request = self._client.build_request("POST", self._url, content=content)
                response = await self._client.send(request, stream=stream)
            except httpx.TimeoutException as exc:
                # A read timeout may mean the backend is still working (and billing):
                # only a connect timeout is safe to retry.
                if isinstance(exc, httpx.ConnectTimeout) and attempt < self.settings.max_retries:
                    wait = backoff(attempt)
                else:
                    raise UpstreamTimeout(f"backend '{self.name}' timed out") from exc
            except httpx.TransportError as exc:
                if attempt < self.settings.max_retries and isinstance(exc, httpx.ConnectError):
                    wait = backoff(attempt)
                else:
                    raise UpstreamError(
                        f"backend '{self.name}' is unreachable: {type(exc).__name__}"
                    ) from exc
            else:
                if response.status_code < 400:
                    return response
                if stream:
                    await response.aread()
                    await response.aclose()
                if response.status_code in RETRYABLE_STATUS and attempt < self.settings.max_retries:
                    retry_after = retry_after_seconds(response.headers.get("retry-after"))
                    wait = backoff(attempt, retry_after)
                else:
                    raise status_error(self.name, response)
            attempt += 1
            await asyncio.sleep(wait)

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._send(body, stream=False)
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"backend '{self.name}' returned malformed JSON") from exc
        if not isinstance(data, dict) or "choices" not in data:
            raise UpstreamError(f"backend '{self.name}' returned a response without choices")
        return data

    async def open_stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        response = await self._send(body, stream=True)
        return self._chunks(response)

    async def _chunks(self, response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
        try:
            async for chunk in parse_sse(response.aiter_lines(), self.name):
                yield chunk
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"backend '{self.name}' stalled mid-stream") from exc
        except httpx.TransportError as exc:
            raise UpstreamError(
                f"backend '{self.name}' broke the stream: {type(exc).__name__}"
            ) from exc
        finally:
            await response.aclose()
