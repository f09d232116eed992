"""The Anthropic Messages request schemas /openapi.json advertises (the handlers read raw
JSON and check it with the adapter; these say what a client may send)."""

from __future__ import annotations

from typing import Any

from tokenomy.server.openapi import ERROR_RESPONSES, options_schema

_BLOCK: dict[str, Any] = {"type": "object", "required": ["type"],
                          "properties": {"type": {"type": "string"},
                                         "text": {"type": "string"}}}
_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"type": "string", "enum": ["user", "assistant"]},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": _BLOCK}]},
    },
}
_COMMON: dict[str, Any] = {
    "model": {"type": "string", "minLength": 1},
    "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
    "system": {"anyOf": [{"type": "string"}, {"type": "array", "items": _BLOCK}]},
    "tools": {"type": "array", "items": {"type": "object"}},
    "tool_choice": {"type": "object"},
    "thinking": {"type": "object"},
    "output_config": {"type": "object"},
}
_MESSAGES: dict[str, Any] = {
    **_COMMON,
    "max_tokens": {"type": "integer", "minimum": 1},
    "stream": {"type": "boolean"},
    "temperature": {"type": "number", "minimum": 0, "maximum": 1},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "top_k": {"type": "integer", "minimum": 0},
    "stop_sequences": {"type": "array", "items": {"type": "string"}},
    "metadata": {"type": "object", "properties": {"user_id": {"type": "string"}}},
}
ANTHROPIC_ERRORS = {**ERROR_RESPONSES, "529": {"description": "upstream overloaded"}}


def messages_request_schema(methods: list[str], *, count: bool = False) -> dict[str, Any]:
    """`POST /v1/messages` (or, `count=True`, its count_tokens sibling)."""
    properties = dict(_COMMON if count else _MESSAGES)
    properties["tokenomy"] = options_schema(methods)
    schema = {"type": "object", "properties": properties,
              "required": ["model", "messages"] if count else ["model", "max_tokens", "messages"]}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "responses": ANTHROPIC_ERRORS}
