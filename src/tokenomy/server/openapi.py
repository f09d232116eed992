"""The request schemas the OpenAPI document advertises (the handlers read raw JSON).

The `tokenomy` options schema is built from the plugin registry, so a plugin's
compressor shows up as a valid `method` without editing this file.
"""

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

def options_schema(methods: list[str]) -> dict[str, Any]:
    """The `tokenomy` field (and `x-tokenomy-options` header) as JSON Schema."""
    return {
        "type": "object",
        "description": "Per-request tokenomy options; never forwarded to the backend.",
        "properties": {
            "compress": {"type": "object", "properties": {
                "enabled": {"type": "boolean"},
                "target_ratio": {"type": "number", "exclusiveMinimum": 1, "maximum": 100},
                "target_tokens": {"type": "integer", "minimum": 1},
                "method": {"type": "string", "enum": methods},
            }},
            "reasoning": {"type": "string"},
            "step": {"type": "string", "maxLength": 256},
            "team": {"type": "string", "maxLength": 128},
            "user": {"type": "string", "maxLength": 256},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }


def chat_request_schema(methods: list[str]) -> dict[str, Any]:
    schema = dict(_CHAT_REQUEST)
    schema["properties"] = {**_CHAT_REQUEST["properties"], "tokenomy": options_schema(methods)}
    return {
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": schema}}},
        "responses": ERROR_RESPONSES,
    }


def responses_request_schema(methods: list[str]) -> dict[str, Any]:
    schema = dict(_RESPONSES_REQUEST)
    schema["properties"] = {**_RESPONSES_REQUEST["properties"],
                            "tokenomy": options_schema(methods)}
    return {
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": schema}}},
        "responses": ERROR_RESPONSES,
    }


_INPUT_ITEM: dict[str, Any] = {
    "type": "object",
    "description": "An input item: a message (role + content), function_call, "
                   "function_call_output, reasoning, or any other Responses item type.",
    "properties": {
        "type": {"type": "string"},
        "role": {"type": "string", "enum": ["user", "assistant", "system", "developer"]},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": {
            "type": "object", "required": ["type"], "properties": {
                "type": {"type": "string"}, "text": {"type": "string"}}}}]},
        "call_id": {"type": "string"},
        "name": {"type": "string"},
        "arguments": {"type": "string"},
        "output": {"type": "string"},
    },
}

_RESPONSES_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["model"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "input": {"anyOf": [{"type": "string"}, {"type": "array", "items": _INPUT_ITEM}]},
        "instructions": {"type": "string"},
        "stream": {"type": "boolean"},
        "max_output_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "tools": {"type": "array", "items": {"type": "object", "required": ["type"]}},
        "tool_choice": {},
        "reasoning": {"type": "object"},
        "include": {"type": "array", "items": {"type": "string"}},
        "store": {"type": "boolean"},
        "previous_response_id": {"type": "string"},
        "prompt_cache_key": {"type": "string"},
        "text": {"type": "object"},
        "metadata": {"type": "object"},
    },
}


_CHAT_REQUEST: dict[str, Any] = {
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
    },
}

ERROR_RESPONSES: dict[str, Any] = {
        "400": {"description": "invalid request"},
        "404": {"description": "unknown model"},
        "413": {"description": "request too large"},
        "429": {"description": "budget exceeded or upstream rate limit"},
        "503": {"description": "ledger unavailable"},
        "502": {"description": "upstream failed"},
        "504": {"description": "upstream timed out"},
}
