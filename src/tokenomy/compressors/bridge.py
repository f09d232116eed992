"""The transcript as chat messages for the message-level compressors, and back.

`compress_messages` reasons about turns (the stable prefix, the question, the
documents, the history). Every protocol's transcript is shown to it as plain
chat messages, one per turn, whose content lists the turn's editable text
parts; its answer is mapped back to part edits, so the native body changes
only where a part's text did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tokenomy.transcript import Part, PartKind

TEXT_KINDS = frozenset({PartKind.SYSTEM, PartKind.USER_TEXT, PartKind.DOCUMENT,
                        PartKind.ASSISTANT_TEXT, PartKind.TOOL_RESULT})


@dataclass
class MessagesView:
    messages: list[dict[str, Any]]
    parts: dict[tuple[int, int], Part]  # (message, content index) -> part
    turns: dict[int, int]  # transcript turn -> message index

    def changes(self, new_messages: list[dict[str, Any]]) -> list[tuple[Part, str]]:
        out: list[tuple[Part, str]] = []
        for (m, j), part in self.parts.items():
            content = new_messages[m].get("content")
            text = content[j].get("text") if isinstance(content, list) else None
            if isinstance(text, str) and text != part.text:
                out.append((part, text))
        return out


def as_messages(parts: list[Part]) -> MessagesView:
    messages: list[dict[str, Any]] = []
    index: dict[tuple[int, int], Part] = {}
    turns: dict[int, int] = {}
    key: tuple[int, str] | None = None
    for part in parts:
        if (part.turn, part.role) != key:
            key = (part.turn, part.role)
            turns.setdefault(part.turn, len(messages))
            messages.append({"role": part.role, "content": []})
        if part.kind in TEXT_KINDS and part.editable:
            content = messages[-1]["content"]
            index[(len(messages) - 1, len(content))] = part
            content.append({"type": "text", "text": part.text})
    return MessagesView(messages, index, turns)
