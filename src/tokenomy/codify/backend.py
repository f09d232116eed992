"""The one chat interface that contracts and ReWOO need: messages in, text and usage out.

Anything callable as `await backend(messages, **params) -> Reply` works: the
lead's Engine through `engine_backend`, or a plain async function in tests.
Usage the backend does not report is counted with the target model's tokenizer,
so token totals are always filled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from tokenomy.tokenizers import count_messages, count_text


@dataclass
class Reply:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatBackend(Protocol):
    async def __call__(self, messages: list[dict[str, Any]], **params: Any) -> Reply: ...


def counted(reply: Reply, messages: list[dict[str, Any]], model: str) -> Reply:
    """Fill usage the backend left out by counting in `model`'s tokens."""
    if not reply.prompt_tokens:
        reply.prompt_tokens = count_messages(messages, model)
    if not reply.completion_tokens:
        reply.completion_tokens = count_text(reply.text, model)
    return reply


def reply_from_response(response: dict[str, Any]) -> Reply:
    """An OpenAI chat.completion dict -> Reply."""
    choices = response.get("choices") or [{}]
    message = choices[0].get("message") or {}
    usage = response.get("usage") or {}
    return Reply(
        text=str(message.get("content") or ""),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
    )


def engine_backend(engine: Any, model: str, count_model: str | None = None,
                   team: str | None = None) -> ChatBackend:
    """Run chat calls through the tokenomy Engine (same stages as the proxy).

    `count_model` names the tokenizer for usage the backend does not report.
    """

    async def call(messages: list[dict[str, Any]], **params: Any) -> Reply:
        body: dict[str, Any] = {"model": model, "messages": messages, **params}
        if team:
            body["tokenomy"] = {"team": team}
        response = await _engine_chat(engine, body)
        return counted(reply_from_response(response), messages, count_model or model)

    return call


async def _engine_chat(engine: Any, body: dict[str, Any]) -> dict[str, Any]:
    """One non-streaming chat completion through `Engine.handle`."""
    _call, result = await engine.handle(body)
    if result.response is None:
        raise RuntimeError("the engine answered with a stream to a non-streaming call")
    return result.response
