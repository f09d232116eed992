"""`Transcript`: the parts of one native body, and the one way to edit them.

An edit replaces the string at a part's path. Containers on the way are copied
once (copy-on-write), so lists and dicts the caller still holds never change,
and everything a stage did not touch keeps its identity, key order and bytes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

from tokenomy.transcript.parts import Part, Path

Parser = Callable[[dict[str, Any]], list[Part]]


class Transcript:
    def __init__(self, body: dict[str, Any], parse: Parser):
        self.body = body
        self._parse = parse
        self._parts: list[Part] | None = None
        self._index: dict[Path | None, int] | None = None  # path -> position in `_parts`
        self._owned: set[int] = {id(body)}  # containers this transcript copied (safe to mutate)

    @property
    def parts(self) -> list[Part]:
        if self._parts is None:
            self._parts = self._parse(self.body)
        return self._parts

    def __iter__(self) -> Iterator[Part]:
        return iter(self.parts)

    def __len__(self) -> int:
        return len(self.parts)

    def write(self, part: Part, text: str) -> Part:
        """Put `text` where `part` was read from; returns the part as it now reads."""
        if part.path is None:
            raise ValueError(f"a {part.kind} part cannot be edited")
        value: Any = text
        if part.json_value:
            value = json.loads(text)
            if type(value) is not type(json.loads(part.text)):
                raise ValueError(f"an edit of {part.path} must keep its JSON type")
        self._set(part.path, value)
        updated = part._replace(text=text)
        if self._parts is not None:
            if self._index is None:
                self._index = {p.path: i for i, p in enumerate(self._parts)}
            position = self._index.get(part.path)
            if position is not None:
                self._parts[position] = updated
        return updated

    def _set(self, path: Path, value: Any) -> None:
        node: Any = self.body
        for key in path[:-1]:
            child = node[key]
            if id(child) not in self._owned:
                child = copy.copy(child)
                node[key] = child
                self._owned.add(id(child))
            node = child
        node[path[-1]] = value
