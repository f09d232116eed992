"""Checking an OpenAI chat body before anything else sees it: clear 400s, not 500s."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from tokenomy.call import TokenomyOptions
from tokenomy.errors import BadRequest, PayloadTooLarge

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def _bad(message: str, param: str | None = None) -> BadRequest:
    return BadRequest(message, param=param)


def validate_body(body: Any, *, max_messages: int) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("you must provide a model parameter (a non-empty string)", "model")
    messages = body.get("messages")
    if messages is None:
        raise _bad("'messages' is a required property", "messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("'messages' must be a non-empty array of message objects", "messages")
    if len(messages) > max_messages:
        raise PayloadTooLarge(
            f"{len(messages)} messages exceed this proxy's limit of {max_messages}",
            param="messages", code="too_many_messages",
        )
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _bad(f"{where} must be an object", where)
        role = message.get("role")
        if role not in ROLES:
            raise _bad(f"{where}.role must be one of {sorted(ROLES)}, got {role!r}",
                       f"{where}.role")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _bad(f"{where}.content must be a string or an array of content parts",
                       f"{where}.content")
        if isinstance(content, list):
            for part in content:
                if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                    raise _bad(f"{where}.content parts must be objects with a 'type'",
                               f"{where}.content")
        if content is None and role in ("user", "system", "developer"):
            raise _bad(f"{where}.content is required for role {role!r}", f"{where}.content")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _bad("'stream' must be a boolean", "stream")
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise _bad(f"'{name}' must be a positive integer", name)
    for name, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not low <= value <= high):
            raise _bad(f"'{name}' must be a number between {low} and {high}", name)
    if "tools" in body and body["tools"] is not None and not isinstance(body["tools"], list):
        raise _bad("'tools' must be an array", "tools")
    if "stream_options" in body and body["stream_options"] is not None and not isinstance(
        body["stream_options"], dict
    ):
        raise _bad("'stream_options' must be an object", "stream_options")
    return body


def pop_options(body: dict[str, Any]) -> TokenomyOptions:
    """Take the `tokenomy` field out of the body: the backend never sees it."""
    raw = body.pop("tokenomy", None)
    if raw is None:
        return TokenomyOptions()
    if not isinstance(raw, dict):
        raise _bad("'tokenomy' must be an object", "tokenomy")
    try:
        return TokenomyOptions.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _bad(f"tokenomy.{where}: {first['msg']}", f"tokenomy.{where}") from exc
