"""Automatic prompt-cache breakpoints for an Anthropic Messages request that has none.

Anthropic caches a prompt's prefix (tools, then system, then messages) up to
each block marked with `cache_control`, at most four per request; a later
request that reaches the same prefix reads it at a tenth of the input price
(writing costs 1.25x, or 2x for the 1-hour TTL). A client that marks its own
breakpoints (Claude Code does) knows its traffic: its marks are never moved
and none are added. For a request without any, `place_breakpoints` puts them
where an agent loop or a chat reuses its prefix:

1. the last tool definition (tools rarely change within a session),
2. the end of the system prompt (shared by every turn, and by sub-agents),
3. the end of the previous turn's prompt: the last user message before the
   last assistant answer, i.e. exactly where the previous request ended, so
   this request reads what that one wrote however many blocks were added
   since (the API looks back only 20 blocks from a breakpoint),
4. the end of this request, so the next turn reads it.

A block that cannot carry a mark (thinking, redacted thinking, an empty text)
is skipped for the nearest earlier one. Every change is copy-on-write: the
containers the client sent are never mutated.
"""

from __future__ import annotations

from typing import Any

MAX_BREAKPOINTS = 4  # the API's limit per request
_UNMARKABLE = frozenset({"thinking", "redacted_thinking"})


def has_breakpoint(body: dict[str, Any]) -> bool:
    """Whether the client marked any breakpoint (top-level `cache_control` included)."""
    if "cache_control" in body:
        return True
    if any(isinstance(t, dict) and "cache_control" in t for t in body.get("tools") or ()):
        return True
    system = body.get("system")
    if isinstance(system, list) and any(isinstance(b, dict) and "cache_control" in b
                                        for b in system):
        return True
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, dict):
                continue
            if "cache_control" in block:
                return True
            inner = block.get("content")
            if isinstance(inner, list) and any(isinstance(i, dict) and "cache_control" in i
                                               for i in inner):
                return True
    return False


def _markable(block: Any) -> bool:
    if not isinstance(block, dict) or block.get("type") in _UNMARKABLE:
        return False
    return not (block.get("type") == "text" and not block.get("text"))


def _mark_content(content: Any, mark: dict[str, Any]) -> tuple[list[Any], int] | None:
    """The content with its last markable block marked, and that block's index (None:
    nothing can be marked)."""
    if isinstance(content, str):
        return ([{"type": "text", "text": content, "cache_control": mark}], 0) if content \
            else None
    if not isinstance(content, list):
        return None
    for j in range(len(content) - 1, -1, -1):
        if _markable(content[j]):
            return [*content[:j], {**content[j], "cache_control": mark}, *content[j + 1:]], j
    return None


def _message_targets(messages: list[Any]) -> list[int]:
    """Indices of the messages to mark: the previous request's end, then this one's."""
    if not messages:
        return []
    final = len(messages) - 1
    answers = [i for i, m in enumerate(messages[:final])
               if isinstance(m, dict) and m.get("role") == "assistant"]
    targets = [final]
    if answers:
        previous = next((i for i in range(answers[-1] - 1, -1, -1)
                         if isinstance(messages[i], dict) and messages[i].get("role") == "user"),
                        None)
        if previous is not None:
            targets.insert(0, previous)
    return targets


def place_breakpoints(body: dict[str, Any], ttl: str = "5m"
                      ) -> tuple[dict[str, Any], list[str]] | None:
    """The fields of `body` to replace (new containers) and where marks went, or None
    when the client marked its own breakpoints or nothing can be marked."""
    if has_breakpoint(body):
        return None
    mark: dict[str, Any] = {"type": "ephemeral"}
    if ttl == "1h":
        mark["ttl"] = "1h"
    changes: dict[str, Any] = {}
    placed: list[str] = []
    tools = body.get("tools")
    if isinstance(tools, list) and tools and isinstance(tools[-1], dict):
        changes["tools"] = [*tools[:-1], {**tools[-1], "cache_control": mark}]
        placed.append(f"tools.{len(tools) - 1}")
    system = _mark_content(body.get("system"), mark)
    if system is not None:
        changes["system"] = system[0]
        placed.append(f"system.{system[1]}")
    messages = body.get("messages")
    if isinstance(messages, list):
        new = list(messages)
        for i in _message_targets(messages):
            if len(placed) >= MAX_BREAKPOINTS:
                break
            message = new[i]
            marked = _mark_content(message.get("content"), mark) \
                if isinstance(message, dict) else None
            if marked is not None:
                new[i] = {**message, "content": marked[0]}
                placed.append(f"messages.{i}.content.{marked[1]}")
                changes["messages"] = new
    return (changes, placed) if placed else None
