"""The elision marker and the command that brings the removed lines back.

A marker always says how many lines went, what they were, and the exact command
that prints them again: `[... 140 lines omitted: sed -n 41,180p src/x.py]` when the
file line numbers are certain, otherwise the tool call itself narrowed with
`| sed -n a,bp` (the output lines it printed), so nothing is hidden.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from tokenomy.compressors.tool_outputs.command import Shell
from tokenomy.compressors.tool_outputs.wrapper import Position

# Past this a command is a script (heredocs, long one-liners): naming the output
# lines is clearer than repeating the whole script inside a marker.
_MAX_COMMAND_CHARS = 160
# A marker stays in the prompt for the rest of the conversation; past this a command is
# named "the command" in it (the agent's tool call right above holds it; the elision
# record keeps the full command).
BRIEF_COMMAND_CHARS = 48
# A path made only of these needs no quoting (`~` stays as the agent wrote it).
_PLAIN_PATH = re.compile(r"[\w@%+=:,./~-]+")


def shell_word(path: str) -> str:
    """`path` as one shell word. A path can come from the output itself (grep's `path:12:`
    prefix) or from a file with a hostile name: a marker's command must read that file,
    never run what its name says (`x.py;curl ...|sh`)."""
    return path if _PLAIN_PATH.fullmatch(path) else shlex.quote(path)


@dataclass
class Locator:
    """How to print lines of one output body again."""

    shell: Shell
    position: Position = "whole"
    path: str | None = None  # the file whose line numbers the body's lines carry
    body_lines: int = 0

    def recover(self, first: int, last: int, numbers: tuple[int | None, int | None],
                path: str | None = None) -> str | None:
        """A command printing body lines first..last (0-based, inclusive) again.

        `numbers` are those lines' file line numbers and `path` their file, when known.
        """
        a, b = numbers
        path = path or self.path
        if path and a is not None and b is not None:
            return f"sed -n {a},{b}p {shell_word(path)}"
        command = self.shell.text.strip()
        if not command or len(command) > _MAX_COMMAND_CHARS or "\n" in command:
            return None
        if not self.shell.simple:
            command = f"({command})"
        if self.position == "tail":
            from_end = self.body_lines - first
            return f"{command} | tail -n {from_end} | head -n {last - first + 1}"
        return f"{command} | sed -n {first + 1},{last + 1}p"


def brief(recover: str | None, locator: Locator, named: str | None = None) -> str | None:
    """`recover` as a marker prints it: a long command is called "the command", and a
    file range of the file an earlier marker of the same output `named` omits the path."""
    if recover is not None and named and recover.endswith(f"p {named}") \
            and recover.startswith("sed -n "):
        return recover[: -len(named) - 1]
    command = locator.shell.text.strip()
    if recover is None or len(command) <= BRIEF_COMMAND_CHARS:
        return recover
    for prefix in (f"({command})", command):
        if recover.startswith(prefix):
            return "the command" + recover[len(prefix):]
    return recover


_LINES = re.compile(r"\blines\b")


def counted(count: int, what: str) -> str:
    """`3 comment lines`, `1 comment line`: every marker's count agrees with its noun."""
    return f"{count} {_LINES.sub('line', what, count=1) if count == 1 else what}"


def marker(count: int, what: str, recover: str | None, first: int, last: int,
           indent: str = "") -> str:
    if recover:
        return f"{indent}[... {counted(count, what)} omitted: {recover}]"
    return (f"{indent}[... {counted(count, what)} omitted (output lines {first + 1}-{last + 1}); "
            f"re-run the command to see them]")
