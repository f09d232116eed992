"""One wire protocol: how its bodies are checked, read as parts, counted and forwarded.

Each protocol (OpenAI chat, Anthropic Messages, OpenAI Responses) is one
`WireProtocol` object. Nothing outside the adapters knows a protocol's field
names: stages go through the transcript, upstreams through these methods.

`request_fields` is the allowlist of what a backend of this protocol may
receive from a caller. Everything else in a request body (a caller's
`base_url`, `api_key`, `extra_headers`, litellm control fields, ...) is dropped
before any upstream sees it: destination and credentials come from the
config alone. `forward_headers` is the same rule for client headers (e.g.
`anthropic-version`, `anthropic-beta`): only those reach a backend.

The wire-format half (`path`, `error_body`, `event_name`, `stream_error`,
`done_marker`, `chunk_failure`, `chunk_finishes`) is what the server writes
and what an upstream's stream is checked against, so one endpoint class and
one stream reader serve every protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from tokenomy.errors import TokenomyError
from tokenomy.transcript.media import Media
from tokenomy.transcript.parts import Part
from tokenomy.usage import Usage


@runtime_checkable
class WireProtocol(Protocol):
    name: str  # "openai.chat" | "anthropic.messages" | "openai.responses"
    path: str  # the proxy's route for it, e.g. "/v1/chat/completions"
    request_fields: frozenset[str]
    forward_headers: frozenset[str]  # client headers (lower-case) a backend may receive
    done_marker: str | None  # the data of the stream's last event ("[DONE]"), or None

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

    def with_usage(self, response: dict[str, Any], usage: Usage) -> dict[str, Any]:
        """`response` reporting `usage` in the protocol's own shape (a consensus run
        reports what all its calls consumed)."""
        ...

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

    def reasoning_fields(self, knobs: dict[str, Any]) -> dict[str, Any]:
        """The planner's knobs, named as OpenAI chat and Anthropic name them
        (`reasoning_effort`, `thinking`, `output_config`, `max_tokens`,
        `chat_template_kwargs`, `extra_body`), as this protocol's request fields."""
        ...

    # -- the wire format ---------------------------------------------------------------

    def error_body(self, error: TokenomyError) -> dict[str, Any]:
        """A JSON error response in this protocol's shape (the status is `error.status`)."""
        ...

    def event_name(self, chunk: dict[str, Any]) -> str | None:
        """The SSE `event:` name a chunk is sent under (None: a bare `data:` event)."""
        ...

    def stream_error(self, error: TokenomyError) -> dict[str, Any]:
        """The chunk that reports a failure after a stream has started."""
        ...

    def chunk_failure(self, chunk: dict[str, Any]) -> str | None:
        """The message of a backend's mid-stream error chunk, None for any other chunk."""
        ...

    def chunk_finishes(self, chunk: dict[str, Any]) -> bool:
        """Whether this chunk says the answer is complete (a stream that ends without one
        was cut short)."""
        ...


@runtime_checkable
class Deterministic(Protocol):
    """An optional capability of a protocol: whether a body asks for the same answer
    every time (temperature 0). The exact response cache answers such requests when a
    team enables it; a protocol without this capability is cached only on request."""

    def deterministic(self, body: dict[str, Any]) -> bool: ...


def positive_int(value: Any) -> int | None:
    """An output cap as the client gave it: a positive integer (not a bool), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def append_to_last_user(items: list[Any], text: str, *, block: str,
                        is_user: Callable[[Any], bool]) -> str | None:
    """Add `text` at the end of the last user turn in `items` (in place), as one more
    `block` content block or after its string content; the text added, None when there
    is no user turn. The end, so the cached prefix before it stays byte-identical."""
    for i in range(len(items) - 1, -1, -1):
        item = items[i]
        if not is_user(item):
            continue
        content = item.get("content")
        if isinstance(content, list):
            # After any tool results (they must come first) and the client's breakpoint.
            items[i] = {**item, "content": [*content, {"type": block, "text": text}]}
            return "\n" + text
        items[i] = {**item, "content": f"{content or ''}\n\n{text}"}
        return "\n\n" + text
    return None


def append_to_messages(body: dict[str, Any], text: str) -> str:
    """`append_user_text` for the protocols whose turns are `messages` with a `role`
    (chat completions, Anthropic Messages): at the end of the last user turn, or as a
    new user message when there is none."""
    messages = list(body.get("messages") or [])
    added = append_to_last_user(messages, text, block="text", is_user=_is_user_message)
    if added is None:
        messages.append({"role": "user", "content": text})
        added = text
    body["messages"] = messages
    return added


def _is_user_message(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") == "user"


def only_fields(body: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    """`body` without the keys a protocol does not define (order kept, nothing copied deep)."""
    if all(key in allowed for key in body):
        return body
    return {key: value for key, value in body.items() if key in allowed}
