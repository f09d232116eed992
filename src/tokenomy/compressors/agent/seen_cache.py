"""The `seen` index of each conversation, kept in process and grown as its history grows.

Building the index of lines already sent reads the whole history; an agent loop
adds a turn or two per request, so the index of the last request is extended
instead. A conversation's name (team, system prompt, task) may be shared by
sessions whose histories differ (a retried task, parallel attempts at one
task), so each name keeps the indexes of a few histories: interleaved sessions
each extend their own instead of rebuilding from the start on every request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from tokenomy.compressors.agent.zone import command_of
from tokenomy.compressors.tool_outputs import SeenLines
from tokenomy.transcript import Part, PartKind

HISTORIES_PER_NAME = 4

# (texts indexed, fingerprint of those texts, index)
_Entry = tuple[int, int, SeenLines]


def readable(part: Part, text: str) -> str:
    """A part's text as the model reads it: a tool call's command, not its JSON (where a
    heredoc is one line with escaped newlines, and no line of it could be found again)."""
    if part.kind is PartKind.TOOL_CALL:
        return command_of(part.tool_name, text) or text
    return text


class SeenCache:
    def __init__(self, size: int = 256):
        self._entries: OrderedDict[str, list[_Entry]] = OrderedDict()  # name -> histories
        self._size = size
        self._lock = threading.Lock()

    def index(self, conversation: str, texts: list[str], parts: list[Part]) -> SeenLines:
        """The index of `texts` (a conversation's parts before the live zone, as sent).

        An index is reused only when this request's history starts with exactly the
        texts it was built from: one holding a line the model was never sent would let
        the compressor fold that line away as "shown before". Only texts new since are
        read (a tool call's JSON decoded, see `readable`). The index taken is removed
        while it grows, so two requests never extend the same one.
        """
        with self._lock:
            candidates = self._entries.pop(conversation, [])
        chosen: _Entry | None = None
        for entry in sorted(candidates, key=lambda e: -e[0]):
            if entry[0] <= len(texts) and entry[1] == hash(tuple(texts[:entry[0]])):
                chosen = entry
                break
        count, seen = (chosen[0], chosen[2]) if chosen is not None else (0, SeenLines())
        for part, text in zip(parts[count:], texts[count:], strict=True):
            seen.add(readable(part, text))
        kept = [e for e in candidates if e is not chosen]
        with self._lock:
            # Histories another request of this name stored meanwhile stay too.
            others = self._entries.pop(conversation, [])
            histories = [*others, *kept, (len(texts), hash(tuple(texts)), seen)]
            self._entries[conversation] = histories[-HISTORIES_PER_NAME:]
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return seen

    def forget(self, conversation: str) -> None:
        """Drop a conversation's indexes (one holds a form that was not sent)."""
        with self._lock:
            self._entries.pop(conversation, None)
