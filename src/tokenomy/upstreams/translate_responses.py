"""OpenAI Responses served by a chat-only backend, through litellm's adapters.

The local model, chat-only OpenAI-compatible servers (a backend with
`protocols: [openai.chat]`) and litellm providers speak chat completions; a
`/v1/responses` request routed to one is translated with litellm's
`LiteLLMCompletionResponsesConfig` (request -> chat, chat answer -> Responses
answer) and `LiteLLMCompletionStreamingIterator` (a chat stream -> the
Responses event sequence: `response.created`, `response.in_progress`,
`response.output_item.added`, `response.content_part.added`,
`response.output_text.delta`, ..., `response.output_item.done`,
`response.completed` or `response.incomplete`).

What a translation keeps and loses is in the README ("/v1/responses against a
chat backend"). Stored state cannot be translated: a chat backend keeps no
responses, so `previous_response_id`, `conversation`, `prompt` (a stored
prompt template) and `background` are refused with a 400 instead of being
silently dropped.

litellm is imported on the first translated request only (`import_litellm`):
native requests never load it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from tokenomy.assets import import_litellm
from tokenomy.errors import BadRequest, TokenomyError, UpstreamError
from tokenomy.transcript import OPENAI_CHAT, only_fields

# Responses fields that need the provider's stored state (or its job queue).
STATEFUL_FIELDS = ("previous_response_id", "conversation", "prompt", "background")

_NOT_PARAMS = ("model", "input", "stream")


def _config() -> Any:
    litellm = import_litellm()
    litellm.suppress_debug_info = True  # no "Provider List" banners on our stdout
    from litellm.responses.litellm_completion_transformation.transformation import (
        LiteLLMCompletionResponsesConfig,
    )

    return LiteLLMCompletionResponsesConfig


def _params(body: dict[str, Any]) -> dict[str, Any]:
    """The request's optional parameters, as litellm's transformation takes them."""
    return {key: value for key, value in body.items() if key not in _NOT_PARAMS}


def _response_id(chat_id: Any) -> str:
    ident = str(chat_id or "")
    return ident if ident.startswith("resp_") else "resp_" + ident.removeprefix("chatcmpl-")


def _with_usage_details(response: dict[str, Any]) -> None:
    """The API always reports both details objects; litellm leaves them null when the
    chat backend reported no cache or reasoning figures."""
    usage = response.get("usage")
    if isinstance(usage, dict):
        if not isinstance(usage.get("input_tokens_details"), dict):
            usage["input_tokens_details"] = {"cached_tokens": 0}
        if not isinstance(usage.get("output_tokens_details"), dict):
            usage["output_tokens_details"] = {"reasoning_tokens": 0}


class _ChatStream:
    """A chat stream as litellm's streaming iterator reads it (a CustomStreamWrapper's
    `__anext__` and `logging_obj`); each chunk becomes litellm's ModelResponseStream."""

    def __init__(self, chunks: AsyncIterator[dict[str, Any]]):
        from litellm.types.utils import ModelResponseStream

        self._chunks = chunks
        self._model = ModelResponseStream
        self.logging_obj = None  # litellm's logging: tokenomy keeps its own ledger
        self.first_id: str | None = None

    def __aiter__(self) -> _ChatStream:
        return self

    async def __anext__(self) -> Any:
        chunk = await self._chunks.__anext__()
        if self.first_id is None and chunk.get("id"):
            self.first_id = str(chunk["id"])
        return self._model(**chunk)


class ResponsesTranslator:
    protocol = "openai.responses"

    def to_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        for field in STATEFUL_FIELDS:
            if body.get(field):
                raise BadRequest(
                    f"'{field}' needs a backend that speaks the Responses API; this model's "
                    f"backend speaks chat completions only and keeps no stored responses "
                    f"(send the whole conversation as input items instead)",
                    param=field, code="unsupported_parameter")
        chat = _config().transform_responses_api_request_to_chat_completion_request(
            model=str(body.get("model") or ""), input=body.get("input") or [],
            responses_api_request=_params(body), custom_llm_provider="openai",
            stream=bool(body.get("stream")))
        # Only chat's own fields (litellm adds its routing fields, e.g. custom_llm_provider).
        chat = dict(only_fields(chat, OPENAI_CHAT.request_fields))
        # Hosted tools (file search, computer use, MCP, ...) run at OpenAI; a chat backend
        # would refuse their types. Function tools (and custom tools, as functions) stay.
        tools = [tool for tool in chat.get("tools") or () if tool.get("type") == "function"]
        if tools:
            chat["tools"] = tools
        else:
            for field in ("tools", "tool_choice", "parallel_tool_calls"):
                chat.pop(field, None)
        for message in chat.get("messages") or ():
            for call in message.get("tool_calls") or ():
                if isinstance(call, dict):
                    call.pop("index", None)  # a stream delta's field, not a message's
        return chat

    def from_chat(self, response: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        answer = _config().transform_chat_completion_response_to_responses_api_response(
            request_input=request.get("input") or [], responses_api_request=_params(request),
            chat_completion_response=response)
        out: dict[str, Any] = answer.model_dump()
        out["id"] = _response_id(response.get("id"))
        _with_usage_details(out)
        return out

    async def stream_from_chat(self, chunks: AsyncIterator[dict[str, Any]],
                               request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        _config()  # litellm imported and configured
        from litellm.responses.litellm_completion_transformation.streaming_iterator import (
            LiteLLMCompletionStreamingIterator,
        )

        source = _ChatStream(chunks)
        params: Any = {**_params(request), "stream": True}  # litellm's TypedDict
        events = LiteLLMCompletionStreamingIterator(
            model=str(request.get("model") or ""),
            litellm_custom_stream_wrapper=source,  # type: ignore[arg-type]  # duck-typed
            request_input=request.get("input") or [], responses_api_request=params,
            custom_llm_provider="openai")
        sequence = 0
        try:
            async for event in events:
                data = event.model_dump()
                # One response id and one numbering for the whole stream (litellm numbers
                # some events and encodes its routing into the id).
                data["sequence_number"] = sequence
                sequence += 1
                if isinstance(data.get("response"), dict):
                    data["response"]["id"] = _response_id(source.first_id)
                    _with_usage_details(data["response"])
                yield data
        except TokenomyError:
            raise
        except Exception as exc:  # litellm's own failure: a clean upstream error event
            raise UpstreamError(f"translating the chat stream failed: {type(exc).__name__}: "
                                f"{exc}") from exc
        finally:
            if isinstance(chunks, AsyncGenerator):
                await chunks.aclose()


RESPONSES_TRANSLATOR = ResponsesTranslator()
