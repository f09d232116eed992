"""Terminal control sequences in a command's output: colors, cursor moves, hyperlinks.

A tool that thinks it writes to a terminal (or is told to: `--color=always`,
`FORCE_COLOR`, `git -c color.ui=always`, jest, cargo, npm) wraps words in ANSI
escape sequences (`\\x1b[31mFAILED\\x1b[0m`). To a model they are noise that costs
several tokens each and splits the words it reads. They go from outputs of any
size, before anything else reads the output (kind detection, errors, query items
see the plain text), and one note says so: the command prints them again.
"""

from __future__ import annotations

import re

from tokenomy.compressors.tool_outputs.marker import Locator, counted
from tokenomy.compressors.tool_outputs.result import Elision

# CSI (`ESC [ params final`: colors, cursor, erase), OSC (`ESC ] ... BEL|ST`: titles,
# hyperlinks) and the two-byte escapes (`ESC =`, `ESC M`). An OSC without its end is
# only its two bytes (the text after it stays). Each class stops at the next ESC, so
# hostile input costs linear time.
_CODES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_=>]")
WHAT = "terminal escape codes"


def strip_codes(text: str) -> tuple[str, int]:
    """`text` without escape sequences, and how many of its lines held one."""
    if "\x1b" not in text:
        return text, 0
    lines = text.split("\n")
    changed = 0
    for i, line in enumerate(lines):
        if "\x1b" in line:
            plain = _CODES.sub("", line)
            if plain != line:
                lines[i] = plain
                changed += 1
    return "\n".join(lines), changed


def note(lines: int, locator: Locator, *, body_lines: int) -> tuple[str, Elision]:
    """The note a body ends with once its codes went, and its elision."""
    recover = locator.shell.text.strip() or None
    how = "re-run to see them" if recover else "not recoverable"
    return (f"[{WHAT} omitted from {counted(lines, 'lines')}; {how}]",
            Elision(first_line=1, last_line=max(body_lines, 1), lines=0,
                    what=f"{WHAT} ({counted(lines, 'lines')})", recover=recover))
