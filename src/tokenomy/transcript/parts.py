"""The protocol-neutral view of a prompt: ordered parts, each pointing into the native body.

A `Part` is one piece of the prompt as a stage thinks of it (a system prompt,
a user's text, a tool call, a tool result, ...) with the path of the string it
was read from. Stages read parts and edit them through `Transcript.write`,
which changes that one string in the native body and nothing else.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

Path = tuple[str | int, ...]


class PartKind(StrEnum):
    SYSTEM = "system"
    USER_TEXT = "user_text"
    DOCUMENT = "document"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    ASSISTANT_TEXT = "assistant_text"
    THINKING = "thinking"
    OPAQUE = "opaque"  # images, audio, files, server tools, redacted thinking: never read


# Roles are normalised across protocols: a tool result is role "tool" even where the
# wire format carries it inside a user turn (Anthropic) or as an input item (Responses).
ROLES = ("system", "user", "assistant", "tool")


class Part(NamedTuple):
    """Immutable (a tuple: cheap to build for every message of a long agent history)."""

    turn: int  # index of the message / input item; -1 for a top-level system field
    role: str  # one of ROLES
    kind: PartKind
    text: str  # what a stage reads ("" for opaque parts)
    path: Path | None  # where `text` lives in the native body; None: not editable
    cache_mark: bool = False  # the client put a cache breakpoint on this part
    tool_call_id: str | None = None
    tool_name: str | None = None  # TOOL_CALL: the tool; TOOL_RESULT: the tool that ran
    tool_input: str | None = None  # TOOL_CALL: its arguments; TOOL_RESULT: the call's arguments
    # The body holds `text` decoded: a JSON value (Anthropic's tool_use `input` object);
    # an edit must be JSON of the same type, and is written back decoded.
    json_value: bool = False

    @property
    def editable(self) -> bool:
        return self.path is not None
