"""The one interface between the pipeline and a backend.

An upstream takes an OpenAI chat body (already addressed to the backend's own
model name) and returns a response dict, or opens a stream of chunk dicts.
`open_stream` returns only once the backend has accepted the request, so a
refusal still becomes a proper HTTP error status instead of a broken stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from tokenomy.config import BackendSettings


class Upstream(Protocol):
    name: str

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def open_stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]: ...

    async def aclose(self) -> None: ...


def build_upstream(name: str, settings: BackendSettings) -> Upstream:
    if settings.kind == "openai":
        from tokenomy.upstreams.openai import OpenAICompatible

        return OpenAICompatible(name, settings)
    if settings.kind == "litellm":
        from tokenomy.upstreams.litellm import LiteLLMBackend

        return LiteLLMBackend(name, settings)
    from tokenomy.upstreams.local import LocalModel

    return LocalModel(name, settings)
