"""Lines the model has already been sent in this conversation.

Coding agents re-read what they already have: the same function after an edit
elsewhere, the test file they just wrote with a heredoc, the patch they built, a test
run whose traceback has not changed. In the development traces about 30% of
tool-output tokens are lines already present, verbatim, earlier in the conversation.
A run of such lines can go with a marker that says they were shown before (and how to
print them again): the model still has them in its context, and a line that changed
is not in the index, so it stays.

The index must be built from the conversation *as sent* (compressed outputs in their
compressed form), so nothing refers to a line the model never saw. Keys ignore
surrounding whitespace but keep line-number prefixes (`cat -n`, `grep -n`): the number
is information of its own (the agent reads the next range from it), so `756: def f`
is new even when `def f` was shown before without it. The other way round holds no
news: once `756: def f` was shown, a plain `def f` was too, so a numbered line is
indexed under its text without the number as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Shorter lines (`)`, `else:`, `return None`) are everywhere: their repetition says
# nothing about whether a passage was seen.
MIN_CHARS = 16
# `cat -n`/`nl` ("  12<tab>"), Claude Code's Read ("  12→"), grep -n ("12:", "12-",
# "src/x.py:12:").
_NUMBER_PREFIX = re.compile(r"^\s*\d+(?:\t|→)|^(?:[\w./-]+:)?\d+[:-]")


def key(line: str) -> str:
    """The comparable form of a line ('' when too short to count)."""
    text = line.strip()
    return text if len(text) >= MIN_CHARS else ""


class SeenLines:
    """An index of the lines of texts already in the conversation."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._keys: set[str] = set()
        for text in texts:
            self.add(text)

    def add(self, text: str) -> None:
        for line in text.split("\n"):
            k = key(line)
            if k:
                self._keys.add(k)
                numbered = _NUMBER_PREFIX.match(line)
                if numbered:
                    bare = key(line[numbered.end():])
                    if bare:
                        self._keys.add(bare)

    def __contains__(self, line: object) -> bool:
        if not isinstance(line, str):
            return False
        k = key(line)
        return bool(k) and k in self._keys

    def __len__(self) -> int:
        return len(self._keys)
