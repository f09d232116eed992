"""Every other provider (Anthropic, Gemini, Bedrock, ...) through litellm.acompletion."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from tokenomy.assets import import_litellm
from tokenomy.config import BackendSettings
from tokenomy.errors import TokenomyError, UpstreamError, UpstreamTimeout
from tokenomy.transcript import OPENAI_CHAT, WireProtocol
from tokenomy.upstreams.base import speaks


def _translate(backend: str, exc: Exception) -> TokenomyError:
    error = _mapped(backend, exc)
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        error.upstream_status = status  # the provider's own status, for the request log
    return error


def _mapped(backend: str, exc: Exception) -> TokenomyError:
    litellm = import_litellm()

    text = str(getattr(exc, "message", "") or exc)[:300]
    if isinstance(exc, litellm.Timeout):
        return UpstreamTimeout(f"backend '{backend}' timed out")
    if isinstance(exc, litellm.RateLimitError):
        return TokenomyError(f"backend '{backend}' is rate limiting: {text}", status=429,
                             type="rate_limit_error", code="upstream_rate_limited")
    if isinstance(exc, litellm.AuthenticationError | litellm.PermissionDeniedError):
        return UpstreamError(f"backend '{backend}' refused the proxy's credentials")
    if isinstance(exc, litellm.NotFoundError):
        return TokenomyError(text, status=404, type="invalid_request_error", code="model_not_found")
    if isinstance(exc, litellm.BadRequestError):
        return TokenomyError(text, status=400, type="invalid_request_error",
                             code="upstream_rejected")
    return UpstreamError(f"backend '{backend}' failed: {type(exc).__name__}")


SPOKEN = frozenset({"openai.chat"})


class LiteLLMBackend:
    spoken = SPOKEN

    def __init__(self, name: str, settings: BackendSettings):
        self.name = name
        self.settings = settings

    def _params(self, body: dict[str, Any]) -> dict[str, Any]:
        params = dict(body)
        params.update(self.settings.provider_params)
        params.setdefault("drop_params", True)  # never send a parameter the model rejects
        params["timeout"] = self.settings.timeout
        params["num_retries"] = self.settings.max_retries
        api_key = self.settings.resolved_api_key()
        if api_key:
            params["api_key"] = api_key
        if self.settings.base_url:
            params["api_base"] = self.settings.base_url
        return params

    async def complete(self, body: dict[str, Any], *, protocol: WireProtocol = OPENAI_CHAT,
                       headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        speaks(self.name, protocol, SPOKEN)
        litellm = import_litellm()

        try:
            response = await litellm.acompletion(**self._params({**body, "stream": False}))
        except Exception as exc:
            raise _translate(self.name, exc) from exc
        return response.model_dump(exclude_none=True)

    async def open_stream(self, body: dict[str, Any], *, protocol: WireProtocol = OPENAI_CHAT,
                          headers: Mapping[str, str] | None = None
                          ) -> AsyncIterator[dict[str, Any]]:
        speaks(self.name, protocol, SPOKEN)
        litellm = import_litellm()

        try:
            stream = await litellm.acompletion(**self._params({**body, "stream": True}))
        except Exception as exc:
            raise _translate(self.name, exc) from exc
        return self._chunks(stream)

    async def _chunks(self, stream: Any) -> AsyncIterator[dict[str, Any]]:
        try:
            async for chunk in stream:
                yield chunk.model_dump(exclude_none=True)
        except Exception as exc:
            raise _translate(self.name, exc) from exc

    async def aclose(self) -> None:
        return None
