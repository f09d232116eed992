"""What every SDK call does around the engine: put the step into the body, charge usage back.

One request body in, one `CallTicket` (see `context.py`) out; then the usage
of the answer, whole or streamed, is settled onto the open steps. The
in-process client, the proxy client and the LangChain transports share this.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator, Mapping
from typing import Any

from tokenomy.call import Chunk
from tokenomy.sdk.context import CallTicket, open_call
from tokenomy.transcript.openai_chat import client_wants_usage, without_usage

ORIGINAL_HEADER = "x-tokenomy-prompt-tokens-original"
SENT_HEADER = "x-tokenomy-prompt-tokens-sent"


def attach_step(body: dict[str, Any]) -> tuple[dict[str, Any], CallTicket, bool]:
    """Merge the current step into the body's `tokenomy` field; always ask for stream usage.

    Returns the new body, the ticket to settle, and whether the caller itself
    asked for the usage chunk (if not, it is hidden again on the way back).
    """
    body = dict(body)
    explicit = body.pop("tokenomy", None)
    ticket = open_call(explicit if isinstance(explicit, dict) else None)
    if ticket.options:
        body["tokenomy"] = ticket.options
    wants_usage = client_wants_usage(body)
    if body.get("stream"):
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return body, ticket, wants_usage


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def settle(ticket: CallTicket, usage: Mapping[str, Any] | None,
           original: Any = None, sent: Any = None) -> None:
    """Charge one finished call: prompt tokens sent (the backend's count) plus completion."""
    usage = usage or {}
    sent_tokens = _int(usage.get("prompt_tokens"))
    if sent_tokens is None:
        sent_tokens = _int(sent)
    ticket.settle(original=_int(original) if original is not None else sent_tokens,
                  sent=sent_tokens, completion=_int(usage.get("completion_tokens")))


class StreamTap:
    """Watch a chunk stream for usage, hide the usage-only chunk unless asked, settle at the end."""

    def __init__(self, ticket: CallTicket, wants_usage: bool,
                 original: Any = None, sent: Any = None) -> None:
        self.ticket = ticket
        self.wants_usage = wants_usage
        self.original = original
        self.sent = sent
        self.usage: Mapping[str, Any] | None = None
        self._settled = False

    def see(self, chunk: Chunk) -> Chunk | None:
        """The chunk to pass on, or None to drop it."""
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        return chunk if self.wants_usage else without_usage(chunk)

    def end(self) -> None:
        if not self._settled:
            self._settled = True
            settle(self.ticket, self.usage, self.original, self.sent)

    def iterate(self, chunks: Generator[Chunk, None, None]) -> Iterator[Chunk]:
        try:
            for chunk in chunks:
                out = self.see(chunk)
                if out is not None:
                    yield out
        finally:
            try:
                chunks.close()
            finally:
                self.end()

    async def aiterate(self, chunks: AsyncGenerator[Chunk, None]) -> AsyncIterator[Chunk]:
        try:
            async for chunk in chunks:
                out = self.see(chunk)
                if out is not None:
                    yield out
        finally:
            try:
                await chunks.aclose()
            finally:
                self.end()
