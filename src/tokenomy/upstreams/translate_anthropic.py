"""Anthropic Messages served by a chat backend (the local model, chat-only servers, litellm).

litellm's adapters do the translation (`LiteLLMAnthropicMessagesAdapter` for
requests and whole answers, `AnthropicStreamWrapper` for streams); this module
only feeds them and cleans what they hand back. litellm is imported on the
first translated request, never on the native path.

What the translation loses (README, "Anthropic Messages"):
- thinking blocks of earlier turns are not sent (no chat API carries Anthropic
  signatures), and redacted thinking, server tool blocks and documents other
  than text have no chat form;
- `cache_control` breakpoints, `top_k`, `service_tier`, `container`,
  `context_management` and other Anthropic-only fields are dropped;
  `thinking` / `output_config.effort` become `reasoning_effort`;
- the answer's ids are the chat backend's, a stream's `message_start` reports
  zero input tokens (chat streams report usage only at the end, where
  `message_delta` carries it), and a chat refusal becomes `stop_reason: refusal`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Any

import orjson

from tokenomy.assets import import_litellm
from tokenomy.errors import BadRequest, TokenomyError, UpstreamError
from tokenomy.stream import close_source
from tokenomy.transcript import ANTHROPIC_MESSAGES, OPENAI_CHAT
from tokenomy.transcript.protocol import only_fields

# Assistant-message fields litellm adds that no chat API takes back.
_THINKING_FIELDS = ("thinking_blocks", "reasoning_content")


@lru_cache(maxsize=1)
def _litellm() -> Any:
    """litellm's adapter pieces (imported once, off the native path)."""
    import_litellm()
    from litellm.llms.anthropic.pass_through.adapters.streaming_iterator import (
        AnthropicStreamWrapper,
    )
    from litellm.llms.anthropic.pass_through.adapters.transformation import (
        LiteLLMAnthropicMessagesAdapter,
        create_tool_name_mapping,
    )
    from litellm.types.utils import ModelResponse, ModelResponseStream

    class Parts:
        adapter = LiteLLMAnthropicMessagesAdapter()
        wrapper = AnthropicStreamWrapper
        names = staticmethod(create_tool_name_mapping)
        response = ModelResponse
        chunk = ModelResponseStream

    return Parts


def _plain(value: Any) -> Any:
    """litellm's TypedDicts may hold pydantic objects: plain JSON values, copied."""
    def default(obj: Any) -> Any:
        dump = getattr(obj, "model_dump", None)
        if dump is None:
            raise TypeError(f"cannot encode {type(obj).__name__}")
        return dump(exclude_none=True)

    return orjson.loads(orjson.dumps(value, default=default))


def _tool_names(request: dict[str, Any]) -> dict[str, str]:
    tools = [t for t in request.get("tools") or () if isinstance(t, dict)]
    return dict(_litellm().names(tools)) if tools else {}


class AnthropicToChat:
    """The `Translator` for `anthropic.messages` (see upstreams/translate.py)."""

    protocol = ANTHROPIC_MESSAGES.name

    def to_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        # A copy: litellm's translation may change the containers it is given.
        try:
            chat, _ = _litellm().adapter.translate_anthropic_to_openai(_plain(body))
        except Exception as exc:  # a shape litellm cannot translate: the caller's to fix
            raise BadRequest(f"this request cannot be translated for a chat backend: "
                             f"{type(exc).__name__}: {exc}",
                             code="untranslatable_request") from exc
        chat = dict(chat)
        for message in chat.get("messages") or ():
            if isinstance(message, dict) and message.get("role") == "assistant":
                for field in _THINKING_FIELDS:
                    message.pop(field, None)
        effort = (body.get("output_config") or {}).get("effort")
        if isinstance(effort, str) and "reasoning_effort" not in chat and not body.get("thinking"):
            chat["reasoning_effort"] = effort
        return OPENAI_CHAT.forwarded(_plain(only_fields(chat, OPENAI_CHAT.request_fields)),
                                     str(body.get("model") or ""))

    def from_chat(self, response: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        parts = _litellm()
        try:
            answer = parts.adapter.translate_openai_response_to_anthropic(
                parts.response(**response), _tool_names(request))
        except Exception as exc:
            raise UpstreamError(f"the chat backend's answer cannot be translated: "
                                f"{type(exc).__name__}") from exc
        return dict(_plain(answer))

    async def stream_from_chat(self, chunks: AsyncIterator[dict[str, Any]],
                               request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        parts = _litellm()

        async def typed() -> AsyncIterator[Any]:
            async for chunk in chunks:
                yield parts.chunk(**chunk)

        events = parts.wrapper(typed(), model=str(request.get("model") or ""),
                               tool_name_mapping=_tool_names(request))
        try:
            async for event in _translated(events):
                plain = _plain(event)
                yield plain
                if plain.get("type") == "message_start":
                    yield {"type": "ping"}  # where Anthropic sends it
        finally:
            # Closing this stream (a client gone) closes the chat backend's at once.
            await close_source(chunks)


async def _translated(events: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """litellm's stream events; its own failures become an upstream error (our errors,
    e.g. the chat backend breaking mid-stream, pass as they are)."""
    while True:
        try:
            event = await events.__anext__()
        except StopAsyncIteration:
            return
        except TokenomyError:
            raise
        except Exception as exc:
            raise UpstreamError(f"the chat backend's stream cannot be translated: "
                                f"{type(exc).__name__}") from exc
        yield event


ANTHROPIC_TO_CHAT = AnthropicToChat()
