"""Any Anthropic-compatible backend (Anthropic's API, or a server that speaks Messages).

It carries Anthropic Messages requests natively, over the pooled client the
`openai` kind uses too (`pooled.PooledBackend`): `POST {base_url}/v1/messages`
(a base URL that already ends in `/v1` is used as it is), the key from
`api_key` / `api_key_env` as `x-api-key`, and the client headers the protocol
forwards (`anthropic-version`, `anthropic-beta`, ...) with an
`anthropic-version` of its own when the client sent none. Credentials and
content type are the backend's: a client header never replaces them.

Requests of other protocols reach it only through a translator (none is built
in: chat requests go to chat backends), so it speaks Messages alone.
`count_tokens` asks the backend's own counter (`/v1/messages/count_tokens`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from tokenomy.config import BackendSettings
from tokenomy.errors import UpstreamError
from tokenomy.transcript import ANTHROPIC_MESSAGES, WireProtocol
from tokenomy.transcript.anthropic_messages import complete_usage
from tokenomy.upstreams.base import speaks
from tokenomy.upstreams.pooled import PooledBackend

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_VERSION = "2023-06-01"  # the only stable `anthropic-version` there is
SPOKEN = frozenset({ANTHROPIC_MESSAGES.name})
# Headers the backend's settings own; a forwarded client header never replaces them.
_OWN = frozenset({"x-api-key", "authorization", "content-type", "content-length", "host"})


class AnthropicBackend(PooledBackend):
    spoken = SPOKEN

    def __init__(self, name: str, settings: BackendSettings):
        headers = dict(settings.headers)
        api_key = settings.resolved_api_key()
        if api_key:
            headers["x-api-key"] = api_key
        base = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        super().__init__(name, settings, headers, base)
        self._prefix = "" if base.endswith("/v1") else "/v1"
        self._version = next((v for k, v in settings.headers.items()
                              if k.lower() == "anthropic-version"), DEFAULT_VERSION)

    def _headers_for(self, client: Mapping[str, str] | None) -> dict[str, str]:
        out = {name: value for name, value in (client or {}).items()
               if name.lower() not in _OWN}
        if not any(name.lower() == "anthropic-version" for name in out):
            out["anthropic-version"] = self._version
        return out

    async def complete(self, body: dict[str, Any], *, protocol: WireProtocol = ANTHROPIC_MESSAGES,
                       headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        speaks(self.name, protocol, self.spoken)
        response = await self.post(self._prefix + "/messages", body, self._headers_for(headers))
        return await self.read_json(response, "content")

    async def open_stream(self, body: dict[str, Any], *,
                          protocol: WireProtocol = ANTHROPIC_MESSAGES,
                          headers: Mapping[str, str] | None = None
                          ) -> AsyncIterator[dict[str, Any]]:
        speaks(self.name, protocol, self.spoken)
        response = await self.post(self._prefix + "/messages", body, self._headers_for(headers))
        return complete_usage(self.sse_chunks(response, protocol))

    async def count_tokens(self, body: dict[str, Any],
                           headers: Mapping[str, str] | None = None) -> int:
        """The backend's own count of a count_tokens body (`{"input_tokens": N}`)."""
        response = await self.post(self._prefix + "/messages/count_tokens", body,
                                   self._headers_for(headers))
        data = await self.read_json(response, "input_tokens")
        value = data["input_tokens"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UpstreamError(f"backend '{self.name}' returned an invalid token count")
        return value
