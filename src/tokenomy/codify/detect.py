"""Finding JSON values pasted as text inside a prompt, and choosing their codified form."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from tokenomy.codify.openapi import is_openapi, render_openapi
from tokenomy.codify.shapes import is_schema, is_tool_list
from tokenomy.codify.typed import render_schema, render_tools
from tokenomy.compressors.json_compact import compact, minify

_DECODER = json.JSONDecoder()
# A JSON value starts a line, follows a fence, or follows `: ` / `= ` on a line.
_START = re.compile(r"(?:^|\n)[ \t]*([{\[])|(?:[:=][ \t]*)([{\[])")
_FENCE = re.compile(r"```(json|JSON|jsonc)?[ \t]*\n")
MIN_CHARS = 40

Kind = Literal["schema", "tools", "openapi", "data"]


@dataclass
class Block:
    start: int
    end: int
    value: Any
    kind: Kind


def classify(value: Any) -> Kind:
    if is_tool_list(value):
        return "tools"
    if isinstance(value, dict) and len(value) == 1:
        inner = next(iter(value.values()))
        if next(iter(value)) in ("tools", "functions") and is_tool_list(inner):
            return "tools"
    if is_openapi(value):
        return "openapi"
    if is_schema(value):
        return "schema"
    return "data"


def find_blocks(text: str) -> list[Block]:
    """JSON objects/arrays of at least MIN_CHARS inside `text`, in order."""
    blocks: list[Block] = []
    pos = 0
    while True:
        match = _START.search(text, pos)
        if not match:
            return blocks
        start = match.start(1) if match.group(1) else match.start(2)
        try:
            value, end = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            pos = start + 1
            continue
        if isinstance(value, dict | list) and end - start >= MIN_CHARS:
            blocks.append(Block(start, end, value, classify(value)))
            pos = end
        else:
            pos = start + 1


def codified(block: Block, tables: bool = True) -> str:
    """The compact text for a block: typed definitions for schemas and tools,
    minified JSON (or, with `tables`, TOON tables) for data."""
    value = block.value
    if block.kind == "tools":
        tools = value if isinstance(value, list) else next(iter(value.values()))
        return render_tools(tools)
    if block.kind == "schema":
        return render_schema(value)
    if block.kind == "openapi":
        return render_openapi(value)
    return compact(value) if tables else minify(value)


def relabel_fence(text: str, start: int, label: str) -> str:
    """If the value at `start` sits right after a ```json fence line, relabel it ```label."""
    fence_at = text.rfind("```", 0, start)
    if fence_at < 0:
        return text
    match = _FENCE.match(text, fence_at)
    if not match or text[match.end():start].strip():
        return text
    return text[:fence_at] + f"```{label}\n" + text[match.end():]
