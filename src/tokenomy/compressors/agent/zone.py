"""Where an agent request's new content is, and which conversation it belongs to.

In an agent loop each request is the previous one plus the model's answer (an
assistant turn with tool calls) and the results of those calls. So what is new
is the *live zone*: the last assistant turn and the tool results after it.
Everything before it was in the previous request exactly as the client sends
it now, and must reach the backend as it did then. This needs no state and no
help from the client.

A conversation is named by what never changes in it: the team, the first
system prompt and the first user turn (the task). A memo entry is scoped to
that name and everything before its part (`AgentCompressor._keys`), so the same
file read in two sessions, even of the same task, may compress differently
without either seeing the other's form.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from tokenomy.compressors.memo import memo_key
from tokenomy.compressors.tool_outputs.marker import shell_word
from tokenomy.transcript import Part, PartKind

# What agent compression may change: tool results, the agent's tool calls (file-writing
# heredocs) and its text (passages it quoted from the conversation, and sentences that
# only announce its tool call).
AGENT_KINDS = frozenset({PartKind.TOOL_RESULT, PartKind.TOOL_CALL, PartKind.ASSISTANT_TEXT})


@dataclass(frozen=True)
class Zones:
    conversation: str
    live_from: int | None  # first turn of the live zone (the last assistant turn); None: none
    task: str

    def is_live(self, part: Part) -> bool:
        return self.live_from is not None and part.turn >= self.live_from


def agent_shaped(parts: list[Part]) -> bool:
    """Tool results in the history: an agent loop."""
    return any(p.kind is PartKind.TOOL_RESULT for p in parts)


def zones(parts: list[Part], team: str) -> Zones:
    system = next((p.text for p in parts if p.kind is PartKind.SYSTEM), "")
    task = next((p.text for p in parts if p.kind is PartKind.USER_TEXT), "")
    assistant_turns = [p.turn for p in parts if p.role == "assistant"]
    live_from = max(assistant_turns) if assistant_turns else None
    return Zones(memo_key("conversation", team, system, task), live_from, task)


# The text editor tool's sub-commands (`{"command": "view", "path": ...}`): not shell.
_EDITOR_COMMANDS = frozenset({"view", "create", "str_replace", "insert", "undo_edit"})
# Arguments of a file tool that size the read (`Read` offset/limit, `view` view_range).
RANGE_ARGUMENTS = ("offset", "limit", "view_range", "start_line", "end_line", "line_range")
_SHELLS = frozenset({"bash", "sh", "zsh", "dash"})


def command_of(tool_name: str | None, tool_input: str | None) -> str | None:
    """What a tool call ran, as a short command line (decoded JSON, not raw arguments).

    A shell tool's `command` is the command itself (Codex's `["bash", "-lc", "..."]`
    is its script); a file tool (`Read`, `view`) is rendered as its name, its path and
    the range arguments it was given (`Read src/x.py offset=100 limit=50`), the way
    the compressors name how to get an elided range back.
    """
    if not tool_input:
        return None
    try:
        arguments = json.loads(tool_input)
    except (ValueError, TypeError):
        return tool_input
    if not isinstance(arguments, dict):
        return tool_input
    command = arguments.get("command")
    if isinstance(command, str) and command in _EDITOR_COMMANDS \
            and isinstance(arguments.get("path"), str):
        return _file_tool(str(command), arguments["path"], arguments)
    for field in ("command", "cmd", "script"):
        value = arguments.get(field)
        if isinstance(value, str):
            return value
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            if len(value) == 3 and value[0].rsplit("/", 1)[-1] in _SHELLS \
                    and value[1].startswith("-") and value[1].endswith("c"):
                return value[2]  # bash -lc SCRIPT
            return shlex.join(value)  # an argv: each word as the program got it
    path = next((arguments[f] for f in ("file_path", "path", "filename", "pattern")
                 if isinstance(arguments.get(f), str)), None)
    if path is not None:
        return _file_tool(tool_name or "tool", path, arguments)
    return json.dumps(arguments, ensure_ascii=False, sort_keys=True)


def _file_tool(name: str, path: str, arguments: dict[str, object]) -> str:
    # Each word quoted when it needs it: this line is what a fallback marker repeats
    # (`(Read x.py) | sed -n 5,9p`), and a hostile path or argument must stay one word.
    sized = [shell_word(f"{key}={json.dumps(arguments[key], separators=(',', ':'))}")
             for key in RANGE_ARGUMENTS if arguments.get(key) is not None]
    return " ".join([shell_word(name), shell_word(path), *sized])
