"""One wire protocol: how its bodies are checked, read as parts, counted and forwarded.

Each protocol (OpenAI chat, Anthropic Messages, OpenAI Responses) is one
`WireProtocol` object. Nothing outside the adapters knows a protocol's field
names: stages go through the transcript, upstreams through these methods.

`request_fields` is the allowlist of what a backend of this protocol may
receive from a caller. Everything else in a request body (a caller's
`base_url`, `api_key`, `extra_headers`, litellm control fields, ...) is dropped
before any upstream sees it: destination and credentials come from the
config alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from tokenomy.transcript.media import Media
from tokenomy.transcript.parts import Part
from tokenomy.usage import Usage


@runtime_checkable
class WireProtocol(Protocol):
    name: str  # "openai.chat" | "anthropic.messages" | "openai.responses"
    request_fields: frozenset[str]

    def validate(self, body: Any, *, max_items: int) -> dict[str, Any]:
        """The body if it is a well-formed request; raises BadRequest/PayloadTooLarge."""
        ...

    def parts(self, body: dict[str, Any]) -> list[Part]: ...

    def count(self, body: dict[str, Any], model: str) -> int:
        """Prompt tokens of `body` as `model`'s provider bills them."""
        ...

    def max_output_tokens(self, body: dict[str, Any]) -> int | None:
        """The output cap per choice the body sets, None when it sets none."""
        ...

    def choices(self, body: dict[str, Any]) -> int:
        """Completions one upstream call of `body` returns (OpenAI chat's `n`; else 1)."""
        ...

    def media(self, body: dict[str, Any]) -> list[Media]:
        """The prompt's images, audio and files, for `transcript.media.media_tokens`."""
        ...

    def with_output_cap(self, body: dict[str, Any], tokens: int) -> dict[str, Any]:
        """A copy of `body` whose output is capped at `tokens` per choice (it set none), so a
        budget's estimate bounds what the backend can bill."""
        ...

    def is_stream(self, body: dict[str, Any]) -> bool: ...

    def forwarded(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        """The body a backend of this protocol receives: only the protocol's own fields,
        addressed to the backend's model name (and asking for stream usage if needed)."""
        ...

    def append_user_text(self, body: dict[str, Any], text: str) -> str:
        """Add `text` at the end of the last user turn (copying what it changes, so the
        prefix stays byte-identical); returns the text as it was added, separators
        included, for counting."""
        ...

    def response_usage(self, response: dict[str, Any]) -> Usage | None: ...

    def chunk_usage(self, chunk: dict[str, Any]) -> Usage | None: ...

    def response_text(self, response: dict[str, Any]) -> str:
        """The answer's text (to count output when a backend reports no usage)."""
        ...

    def chunk_text(self, chunk: dict[str, Any]) -> str: ...

    def hide_usage(self, body: dict[str, Any]) -> Callable[[dict[str, Any]], Any] | None:
        """A chunk transform that hides usage tokenomy asked for and the client did not."""
        ...

    def usage_chunk(self, body: dict[str, Any], usage: Usage,
                    last: dict[str, Any] | None) -> dict[str, Any] | None:
        """The chunk that reports `usage` at the end of a stream whose backend sent none,
        when the client asked for stream usage (None: it did not, or the protocol has no
        such chunk). `last` is the stream's last chunk (for its id and model)."""
        ...


def only_fields(body: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    """`body` without the keys a protocol does not define (order kept, nothing copied deep)."""
    if all(key in allowed for key in body):
        return body
    return {key: value for key, value in body.items() if key in allowed}
