"""Anthropic Messages request checks: clear 400s that name the field, never 500s.

The checks stop at what tokenomy itself reads (roles, block types, the strings
it may edit, the fields a budget counts); anything else inside a block goes to
the backend as the client sent it, and the backend judges it.
"""

from __future__ import annotations

from typing import Any

from tokenomy.errors import PayloadTooLarge
from tokenomy.transcript.checks import (
    MAX_OUTPUT_TOKENS,
    bad,
    check_int,
    check_model,
    check_number,
    check_type,
    require_object,
)

ROLES = ("user", "assistant")


def check_request(body: Any, *, max_items: int, needs_max_tokens: bool = True) -> dict[str, Any]:
    """The body if it is a well-formed Messages request (or count_tokens request, which
    has no `max_tokens`); raises BadRequest / PayloadTooLarge."""
    body = require_object(body)
    check_model(body)
    if needs_max_tokens and body.get("max_tokens") is None:
        raise bad("max_tokens: Field required (the most tokens the answer may have)",
                  "max_tokens")
    check_int(body, "max_tokens", MAX_OUTPUT_TOKENS)
    messages = body.get("messages")
    if messages is None:
        raise bad("messages: Field required", "messages")
    if not isinstance(messages, list) or not messages:
        raise bad("messages: must be a non-empty array of message objects", "messages")
    if len(messages) > max_items:
        raise PayloadTooLarge(f"{len(messages)} messages exceed this proxy's limit of {max_items}",
                              param="messages", code="too_many_messages")
    for index, message in enumerate(messages):
        _check_message(index, message)
    _check_system(body.get("system"))
    check_type(body, "stream", bool, "a boolean")
    check_number(body, "temperature", 0, 1)
    check_number(body, "top_p", 0, 1)
    check_int(body, "top_k", 1_000_000, low=0)
    check_type(body, "metadata", dict, "an object")
    check_type(body, "thinking", dict, "an object")
    check_type(body, "tool_choice", dict, "an object")
    check_type(body, "output_config", dict, "an object")
    tools = body.get("tools")
    check_type(body, "tools", list, "an array")
    for index, tool in enumerate(tools or ()):
        if not isinstance(tool, dict):
            raise bad(f"tools.{index}: must be an object", f"tools.{index}")
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list)
                              or not all(isinstance(s, str) for s in stops)):
        raise bad("stop_sequences: must be an array of strings", "stop_sequences")
    return body


def _check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise bad("system: must be a string or an array of text blocks", "system")
    for index, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" \
                or not isinstance(block.get("text"), str):
            raise bad(f"system.{index}: must be a text block "
                      "({\"type\": \"text\", \"text\": \"...\"})", f"system.{index}")


def _check_message(index: int, message: Any) -> None:
    where = f"messages.{index}"
    if not isinstance(message, dict):
        raise bad(f"{where}: must be an object with 'role' and 'content'", where)
    role = message.get("role")
    if role not in ROLES:
        hint = " (a system prompt goes in the top-level 'system' field)" \
            if role == "system" else ""
        raise bad(f"{where}.role: must be 'user' or 'assistant', got {role!r}{hint}",
                  f"{where}.role")
    content = message.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise bad(f"{where}.content: must be a string or an array of content blocks",
                  f"{where}.content")
    for j, block in enumerate(content):
        _check_block(f"{where}.content.{j}", block)


def _check_block(where: str, block: Any) -> None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise bad(f"{where}: must be an object with a 'type'", where)
    kind = block["type"]
    if kind == "text" and not isinstance(block.get("text"), str):
        raise bad(f"{where}.text: must be a string", f"{where}.text")
    elif kind == "tool_use":
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            raise bad(f"{where}: a tool_use block needs string 'id' and 'name'", where)
        if not isinstance(block.get("input"), dict):
            raise bad(f"{where}.input: must be an object", f"{where}.input")
    elif kind == "tool_result":
        if not isinstance(block.get("tool_use_id"), str):
            raise bad(f"{where}.tool_use_id: must be a string", f"{where}.tool_use_id")
        inner = block.get("content")
        if inner is not None and not isinstance(inner, str | list):
            raise bad(f"{where}.content: must be a string or an array of content blocks",
                      f"{where}.content")
        for k, item in enumerate(inner if isinstance(inner, list) else ()):
            if not isinstance(item, dict) or not isinstance(item.get("type"), str):
                raise bad(f"{where}.content.{k}: must be an object with a 'type'",
                          f"{where}.content.{k}")
            if item["type"] == "text" and not isinstance(item.get("text"), str):
                raise bad(f"{where}.content.{k}.text: must be a string",
                          f"{where}.content.{k}.text")
    elif kind == "thinking" and not isinstance(block.get("thinking"), str):
        raise bad(f"{where}.thinking: must be a string", f"{where}.thinking")
