"""A request in one wire protocol, served by a backend that speaks another.

When an alias sends an Anthropic Messages or OpenAI Responses request to a
backend that only speaks OpenAI chat (the local model, a plain
OpenAI-compatible server, a litellm provider), a `Translator` for that
protocol turns the request into a chat request and the chat answer (whole, or
chunk by chunk) back into the protocol's answer. Translators are registered
per protocol through the `register_translators` hook; the built-in ones use
litellm's adapters. Requests that reach a backend of their own protocol are
never translated: they arrive as the client sent them plus tokenomy's edits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from tokenomy.errors import BadRequest
from tokenomy.transcript import OPENAI_CHAT, WireProtocol
from tokenomy.upstreams.base import Upstream


class Translator(Protocol):
    """Between one protocol (`protocol`) and OpenAI chat."""

    protocol: str

    def to_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """The chat request for `body` (already the protocol's forwarded body)."""
        ...

    def from_chat(self, response: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        """The protocol's answer for a chat answer to the translated `request`."""
        ...

    def stream_from_chat(self, chunks: AsyncIterator[dict[str, Any]],
                         request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The protocol's stream events for a chat stream (in the protocol's order)."""
        ...


class Translated:
    """An upstream that speaks chat, serving `translator.protocol` requests."""

    def __init__(self, inner: Upstream, translator: Translator):
        self.inner = inner
        self.translator = translator
        self.name = inner.name
        self.spoken = frozenset({translator.protocol})

    async def complete(self, body: dict[str, Any], *, protocol: WireProtocol,
                       headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        # In a thread: the first translation imports litellm (seconds), never on the loop.
        chat = await asyncio.to_thread(self.translator.to_chat, body)
        response = await self.inner.complete(chat, protocol=OPENAI_CHAT)
        return self.translator.from_chat(response, body)

    async def open_stream(self, body: dict[str, Any], *, protocol: WireProtocol,
                          headers: Mapping[str, str] | None = None
                          ) -> AsyncIterator[dict[str, Any]]:
        chat = OPENAI_CHAT.forwarded(await asyncio.to_thread(self.translator.to_chat, body),
                                     str(body.get("model") or ""))
        chunks = await self.inner.open_stream(chat, protocol=OPENAI_CHAT)
        return self.translator.stream_from_chat(chunks, body)

    async def aclose(self) -> None:
        return None  # the inner upstream belongs to the router


def serving(upstream: Upstream, protocol: WireProtocol,
            translators: Mapping[str, Translator]) -> Upstream:
    """`upstream` itself when it speaks `protocol`, else a translation through chat."""
    if protocol.name in upstream.spoken:
        return upstream
    translator = translators.get(protocol.name)
    if translator is None or OPENAI_CHAT.name not in upstream.spoken:
        raise BadRequest(f"backend '{upstream.name}' cannot serve {protocol.name} requests "
                         f"and no translation exists; route this model to a backend that "
                         f"speaks {protocol.name}", code="protocol_not_supported")
    return Translated(upstream, translator)
