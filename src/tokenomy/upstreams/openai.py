"""Any OpenAI-compatible backend over one pooled aiohttp session: the fast path.

The session, retries, reading and stream draining are `pooled.PooledBackend`'s
(shared with the `anthropic` kind); this kind adds where each protocol is
served under the base URL and the bearer key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from tokenomy.config import BackendSettings
from tokenomy.transcript import OPENAI_CHAT, WireProtocol
from tokenomy.upstreams.base import speaks
from tokenomy.upstreams.pooled import PooledBackend, status_error

__all__ = ["ANSWER_FIELD", "PATHS", "SPOKEN", "OpenAICompatible", "status_error"]

# The path each protocol is served at, under the backend's base URL (which ends in /v1),
# and the field a well-formed answer of that protocol always has.
PATHS = {"openai.chat": "/chat/completions", "openai.responses": "/responses"}
ANSWER_FIELD = {"openai.chat": "choices", "openai.responses": "output"}
SPOKEN = frozenset(PATHS)


class OpenAICompatible(PooledBackend):
    spoken = SPOKEN  # narrowed per backend by its `protocols` setting (see the router)

    def __init__(self, name: str, settings: BackendSettings):
        headers = dict(settings.headers)
        api_key = settings.resolved_api_key()
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        super().__init__(name, settings, headers, settings.base_url or "")

    async def complete(self, body: dict[str, Any], *, protocol: WireProtocol = OPENAI_CHAT,
                       headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        """`headers` are the client headers on the protocol's allowlist (never credentials:
        the allowlist names none, and ours are the session's own)."""
        speaks(self.name, protocol, self.spoken)
        response = await self.post(PATHS[protocol.name], body, headers)
        return await self.read_json(response, ANSWER_FIELD[protocol.name])

    async def open_stream(self, body: dict[str, Any], *, protocol: WireProtocol = OPENAI_CHAT,
                          headers: Mapping[str, str] | None = None
                          ) -> AsyncIterator[dict[str, Any]]:
        speaks(self.name, protocol, self.spoken)
        response = await self.post(PATHS[protocol.name], body, headers)
        return self.sse_chunks(response, protocol)
