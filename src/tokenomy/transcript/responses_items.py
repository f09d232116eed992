"""OpenAI Responses `input` items: their checks, their parts and their token count.

Items are read as parts in order:

- `instructions` -> SYSTEM (turn -1); `input` as a plain string -> USER_TEXT;
- `message` items (or items with only a `role`): user -> USER_TEXT, assistant ->
  ASSISTANT_TEXT, system/developer -> SYSTEM; each `input_text`/`output_text`
  content part is a part of its own, images, files and audio are OPAQUE;
- `function_call` / `custom_tool_call` -> TOOL_CALL (its `arguments` / `input`);
- `function_call_output` / `custom_tool_call_output` / `local_shell_call_output`
  -> TOOL_RESULT, carrying the name and arguments of the call it answers (found
  by `call_id`), so the tool-output compressors know which command printed it;
- `reasoning` -> THINKING for each summary/content text, read-only, and an
  OPAQUE part for `encrypted_content`: the reasoning item is the provider's own
  record (it reads the encrypted blob or the stored item, not the summary), so
  no stage edits any of it and it reaches the backend byte for byte;
- every other item type (web search, computer use, MCP, item references, types
  that do not exist yet) -> OPAQUE, never read or edited.

Turns: the items of one assistant turn (a reasoning item, a message, several
parallel function calls) share the turn number of the first, so "the last
assistant turn" (agent compression's live zone) holds all of them.
"""

from __future__ import annotations

import json
from typing import Any

from tokenomy.tokenizers import count_messages, count_text
from tokenomy.transcript.checks import bad
from tokenomy.transcript.media import Media, split_data_url
from tokenomy.transcript.parts import Part, PartKind

MESSAGE_ROLES = frozenset({"user", "assistant", "system", "developer"})
TEXT_CONTENT = frozenset({"input_text", "output_text", "text"})
CALL_ITEMS = {"function_call": "arguments", "custom_tool_call": "input"}
OUTPUT_ITEMS = frozenset({"function_call_output", "custom_tool_call_output",
                          "local_shell_call_output"})

_ROLE = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_KIND = {"user": PartKind.USER_TEXT, "assistant": PartKind.ASSISTANT_TEXT,
         "system": PartKind.SYSTEM}

# Estimates for what is not text (budget reservations; the provider's usage settles).
# Images, files and audio are priced by transcript.media from `media_items` instead.
BYTES_PER_TOKEN = 4  # inline data (encrypted reasoning): ~4 characters a token
MEDIA_PIECES = frozenset({"input_image", "input_file", "input_audio"})


def item_type(item: dict[str, Any]) -> str:
    kind = item.get("type")
    return kind if isinstance(kind, str) else "message"


def item_role(item: dict[str, Any], kind: str) -> str:
    """The transcript role of an item: message items by their role, calls are the
    assistant's, their outputs the tool's."""
    if kind == "message":
        return _ROLE.get(str(item.get("role")), "user")
    if kind in OUTPUT_ITEMS or kind.endswith("_output"):
        return "tool"
    if kind == "reasoning" or kind.endswith("_call"):
        return "assistant"
    return "user"


# -- checks ------------------------------------------------------------------------------

def _require_str(item: dict[str, Any], field: str, where: str) -> None:
    if not isinstance(item.get(field), str):
        raise bad(f"{where}.{field} must be a string", f"{where}.{field}")


def _check_content(content: Any, where: str, *, required: bool) -> None:
    if content is None and not required:
        return
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise bad(f"{where} must be a string or an array of content parts", where)
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise bad(f"{where}[{j}] must be an object with a 'type'", f"{where}[{j}]")
        if part["type"] in TEXT_CONTENT and not isinstance(part.get("text"), str):
            raise bad(f"{where}[{j}].text must be a string", f"{where}[{j}].text")


def check_item(index: int, item: Any) -> None:
    """Refuse an input item the API would refuse, naming the field (unknown types pass)."""
    where = f"input[{index}]"
    if not isinstance(item, dict):
        raise bad(f"{where} must be an object", where)
    if "type" in item and not isinstance(item["type"], str):
        raise bad(f"{where}.type must be a string", f"{where}.type")
    kind = item_type(item)
    if kind == "message":
        role = item.get("role")
        if role not in MESSAGE_ROLES:
            raise bad(f"{where}.role must be one of {sorted(MESSAGE_ROLES)}, got {role!r}",
                      f"{where}.role")
        if item.get("content") is None:
            raise bad(f"{where}.content is required for a message", f"{where}.content")
        _check_content(item["content"], f"{where}.content", required=True)
    elif kind in CALL_ITEMS:
        for field in ("call_id", "name", CALL_ITEMS[kind]):
            _require_str(item, field, where)
    elif kind in OUTPUT_ITEMS:
        _require_str(item, "call_id", where)
        _check_content(item.get("output"), f"{where}.output", required=True)
    elif kind == "reasoning":
        for field in ("summary", "content"):
            value = item.get(field)
            if value is not None and not isinstance(value, list):
                raise bad(f"{where}.{field} must be an array", f"{where}.{field}")
        encrypted = item.get("encrypted_content")
        if encrypted is not None and not isinstance(encrypted, str):
            raise bad(f"{where}.encrypted_content must be a string",
                      f"{where}.encrypted_content")


# -- parts -------------------------------------------------------------------------------

def calls_by_id(items: list[Any]) -> dict[Any, tuple[str | None, str | None]]:
    """call_id -> (tool name, its arguments as text) for every call item in `items`."""
    found: dict[Any, tuple[str | None, str | None]] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind in CALL_ITEMS:
            found[item.get("call_id")] = (item.get("name"), item.get(CALL_ITEMS[kind]))
        elif kind == "local_shell_call":
            found[item.get("call_id")] = ("local_shell", _compact(item.get("action")))
    return found


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _text_parts(content: list[Any], turn: int, role: str, kind: PartKind,
                path: tuple[str | int, ...], **extra: Any) -> list[Part]:
    out = []
    for j, piece in enumerate(content):
        if isinstance(piece, dict) and piece.get("type") in TEXT_CONTENT \
                and isinstance(piece.get("text"), str):
            out.append(Part(turn, role, kind, piece["text"], (*path, j, "text"), **extra))
        else:
            out.append(Part(turn, role, PartKind.OPAQUE, "", None))
    return out


def _reasoning_parts(item: dict[str, Any], turn: int) -> list[Part]:
    out = []
    for field in ("summary", "content"):
        for piece in item.get(field) or ():
            if isinstance(piece, dict) and isinstance(piece.get("text"), str) and piece["text"]:
                out.append(Part(turn, "assistant", PartKind.THINKING, piece["text"], None))
    if item.get("encrypted_content") or not out:
        out.append(Part(turn, "assistant", PartKind.OPAQUE, "", None))
    return out


def item_parts(item: Any, i: int, turn: int, calls: dict[Any, tuple[str | None, str | None]]
               ) -> list[Part]:
    if not isinstance(item, dict):
        return []
    kind = item_type(item)
    role = item_role(item, kind)
    if kind == "message":
        text_kind = _KIND[_ROLE.get(str(item.get("role")), "user")]
        content = item.get("content")
        if isinstance(content, str):
            return [Part(turn, role, text_kind, content, ("input", i, "content"))]
        if isinstance(content, list):
            return _text_parts(content, turn, role, text_kind, ("input", i, "content"))
        return []
    if kind in CALL_ITEMS:
        value = item.get(CALL_ITEMS[kind])
        path = ("input", i, CALL_ITEMS[kind]) if isinstance(value, str) else None
        return [Part(turn, role, PartKind.TOOL_CALL, str(value or ""), path,
                     tool_call_id=item.get("call_id"), tool_name=item.get("name"))]
    if kind == "local_shell_call":  # the command is read (relevance), never edited
        return [Part(turn, role, PartKind.TOOL_CALL, _compact(item.get("action")), None,
                     tool_call_id=item.get("call_id"), tool_name="local_shell")]
    if kind in OUTPUT_ITEMS:
        call_id = item.get("call_id")
        name, arguments = calls.get(call_id, (None, None))
        extra: dict[str, Any] = {"tool_call_id": call_id, "tool_name": name,
                                 "tool_input": arguments}
        output = item.get("output")
        if isinstance(output, str):
            return [Part(turn, role, PartKind.TOOL_RESULT, output, ("input", i, "output"),
                         tool_call_id=call_id, tool_name=name, tool_input=arguments)]
        if isinstance(output, list):
            return _text_parts(output, turn, role, PartKind.TOOL_RESULT, ("input", i, "output"),
                               **extra)
        return []
    if kind == "reasoning":
        return _reasoning_parts(item, turn)
    return [Part(turn, role, PartKind.OPAQUE, "", None)]


def input_parts(body: dict[str, Any]) -> list[Part]:
    out: list[Part] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        out.append(Part(-1, "system", PartKind.SYSTEM, instructions, ("instructions",)))
    items = body.get("input")
    if isinstance(items, str):
        out.append(Part(0, "user", PartKind.USER_TEXT, items, ("input",)))
        return out
    if not isinstance(items, list):
        return out
    calls = calls_by_id(items)
    turn, previous = -1, None
    for i, item in enumerate(items):
        role = item_role(item, item_type(item)) if isinstance(item, dict) else "user"
        if role != "assistant" or previous != "assistant":
            turn = i
        previous = role
        out.extend(item_parts(item, i, turn, calls))
    return out


# -- counting ----------------------------------------------------------------------------

def _inline_tokens(data: Any) -> int:
    return len(data) // BYTES_PER_TOKEN if isinstance(data, str) else 0


def opaque_tokens(piece: dict[str, Any]) -> int:
    """An estimate for one content part or item that is neither text nor media."""
    return 0


def piece_media(piece: Any) -> Media | None:
    """An `input_image`, `input_file` or `input_audio` content part as `Media`."""
    if not isinstance(piece, dict) or piece.get("type") not in MEDIA_PIECES:
        return None
    kind = piece["type"]
    if kind == "input_image":
        url = piece.get("image_url")
        detail = str(piece.get("detail") or "auto")
        inline = split_data_url(url) if isinstance(url, str) else None
        if inline is not None:
            return Media("image", data=inline[1], detail=detail, format=inline[0])
        return Media("image", url=url if isinstance(url, str) else None, detail=detail)
    if kind == "input_file":
        raw = piece.get("file_data")
        inline = split_data_url(raw) if isinstance(raw, str) else None
        data = inline[1] if inline is not None else (raw if isinstance(raw, str) else None)
        return Media("file", data=data, format=inline[0] if inline else None)
    audio = piece.get("input_audio")
    audio = audio if isinstance(audio, dict) else {}
    data = audio.get("data")
    return Media("audio", data=data if isinstance(data, str) else None,
                 format=str(audio.get("format") or "") or None)


def media_items(body: dict[str, Any]) -> list[Media]:
    """Every image, file and audio part of the input (message content and tool outputs)."""
    found: list[Media] = []
    items = body.get("input")
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        for field in ("content", "output"):
            pieces = item.get(field)
            for piece in pieces if isinstance(pieces, list) else ():
                media = piece_media(piece)
                if media is not None:
                    found.append(media)
    return found


def _content_text(content: Any) -> tuple[str, int]:
    """The text of a content string or list, and the estimate for its other parts."""
    if isinstance(content, str):
        return content, 0
    texts, extra = [], 0
    for piece in content if isinstance(content, list) else ():
        if not isinstance(piece, dict):
            continue
        if piece.get("type") in TEXT_CONTENT and isinstance(piece.get("text"), str):
            texts.append(piece["text"])
        else:
            extra += opaque_tokens(piece)
    return "\n".join(texts), extra


def _as_message(item: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """One item as the chat message it is billed like, and the estimate for the rest."""
    kind = item_type(item)
    if kind == "message":
        text, extra = _content_text(item.get("content"))
        return {"role": _ROLE.get(str(item.get("role")), "user"), "content": text}, extra
    if kind in CALL_ITEMS:
        call = {"function": {"name": str(item.get("name") or ""),
                             "arguments": str(item.get(CALL_ITEMS[kind]) or "")}}
        return {"role": "assistant", "tool_calls": [call]}, 0
    if kind in OUTPUT_ITEMS:
        text, extra = _content_text(item.get("output"))
        return {"role": "tool", "content": text}, extra
    if kind == "reasoning":
        texts = [str(p.get("text") or "") for field in ("summary", "content")
                 for p in item.get(field) or () if isinstance(p, dict)]
        return ({"role": "assistant", "content": "\n".join(texts)},
                _inline_tokens(item.get("encrypted_content")))
    if kind == "item_reference":
        return {"role": "user", "content": ""}, 0  # the stored item's size is unknown here
    # Another item type: its JSON, as an upper bound of what it costs.
    return {"role": "user", "content": _compact(item)}, 0


def _chat_tools(tools: Any) -> tuple[list[dict[str, Any]], str]:
    """Function tools in chat's shape (counted with OpenAI's rule), and the JSON of the
    others (custom tools with grammars, built-in tools), counted as text."""
    functions, others = [], []
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, dict):
            continue
        if tool.get("type") == "function":
            functions.append({"function": {"name": tool.get("name") or "",
                                           "description": tool.get("description") or "",
                                           "parameters": tool.get("parameters") or {}}})
        else:
            others.append(_compact(tool))
    return functions, "\n".join(others)


def count_input(body: dict[str, Any], model: str) -> int:
    """Prompt tokens of a Responses request: instructions, input items and tools."""
    messages: list[dict[str, Any]] = []
    extra = 0
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    items = body.get("input")
    if isinstance(items, str):
        messages.append({"role": "user", "content": items})
    elif isinstance(items, list):
        for item in items:
            if isinstance(item, dict):
                message, opaque = _as_message(item)
                messages.append(message)
                extra += opaque
    functions, others = _chat_tools(body.get("tools"))
    total = count_messages(messages, model, functions) + extra
    return total + (count_text(others, model) if others else 0)
