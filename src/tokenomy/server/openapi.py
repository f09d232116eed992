"""The request schema the OpenAPI document advertises (the handler reads raw JSON)."""

from __future__ import annotations

from typing import Any

_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string",
                 "enum": ["system", "developer", "user", "assistant", "tool", "function"]},
        "content": {"anyOf": [
            {"type": "string"},
            {"type": "array", "items": {"type": "object", "required": ["type"],
                                        "properties": {"type": {"type": "string"},
                                                       "text": {"type": "string"}}}},
            {"type": "null"},
        ]},
        "name": {"type": "string"},
        "tool_call_id": {"type": "string"},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
    },
}

CHAT_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object",
                           "properties": {"include_usage": {"type": "boolean"}}},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "n": {"type": "integer", "minimum": 1},
        "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "tools": {"type": "array", "items": {"type": "object"}},
        "tool_choice": {},
        "response_format": {"type": "object"},
        "reasoning_effort": {"type": "string"},
        "tokenomy": {
            "type": "object",
            "description": "Per-request tokenomy options; never forwarded to the backend.",
            "properties": {
                "compress": {"type": "object", "properties": {
                    "target_ratio": {"type": "number", "exclusiveMinimum": 1, "maximum": 100},
                    "target_tokens": {"type": "integer", "minimum": 1},
                    "method": {"type": "string", "enum": ["auto", "lossless", "extractive",
                                                          "tokens", "code", "history"]},
                }},
                "reasoning": {"type": "string"},
                "step": {"type": "string"},
                "team": {"type": "string"},
            },
        },
    },
}

CHAT_REQUEST_SCHEMA: dict[str, Any] = {
    "requestBody": {"required": True,
                    "content": {"application/json": {"schema": CHAT_REQUEST}}},
    "responses": {
        "400": {"description": "invalid request"},
        "404": {"description": "unknown model"},
        "413": {"description": "request too large"},
        "429": {"description": "budget exceeded or upstream rate limit"},
        "502": {"description": "upstream failed"},
        "504": {"description": "upstream timed out"},
    },
}
