"""The one JSON compactor: minified JSON, uniform arrays as TOON-style tables.

Both the lossless compressor (tool outputs, documents) and the codify stage
(JSON pasted into prompts) write tables with these rules. The table form is
the tabular array of TOON (Token-Oriented Object Notation):

    [3]{id,name,price}:
    1,apple,0.5
    2,"pear, green",0.75

Cells are JSON literals; a string is written bare unless that would read as
something else (a number, true/false/null, or text with commas, quotes or
edge spaces), so the table parses back to the same array (`parse_table`).
An empty cell is a key the row leaves out (an empty string is written `""`).
"""

from __future__ import annotations

import json
import re
from typing import Any

_BARE_UNSAFE = re.compile(r'[,"\n\r\t{}\[\]]|^\s|\s$|^$')
_LITERAL = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?\Z|true\Z|false\Z|null\Z")
_DECODER = json.JSONDecoder()


def minify(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def table_keys(value: Any, min_rows: int = 2) -> list[str] | None:
    """The columns if `value` is a list of objects that fit one table, else None.

    Rows may leave out optional keys (an empty cell; an empty string is `""`),
    but each row must have most of the columns, and at least half of each
    row's values must be scalar: nested values are minified JSON cells, and a
    table of mostly nested cells saves nothing.
    """
    if not isinstance(value, list) or len(value) < min_rows:
        return None
    if not all(isinstance(row, dict) and row for row in value):
        return None
    keys = list(dict.fromkeys(k for row in value for k in row))
    for row in value:
        if len(row) < 0.6 * len(keys) or 2 * sum(_scalar(v) for v in row.values()) < len(row):
            return None
    return keys


def is_uniform(value: Any, min_rows: int = 2) -> bool:
    return table_keys(value, min_rows) is not None


def _cell(value: Any) -> str:
    if isinstance(value, str) and not _BARE_UNSAFE.search(value) and not _LITERAL.match(value):
        return value
    return minify(value)


def _key(key: str) -> str:
    return key if re.fullmatch(r"[\w.$-]+", key) else minify(key)


def to_table(rows: list[dict[str, Any]]) -> str:
    keys = table_keys(rows, min_rows=1) or list(rows[0])
    lines = [f"[{len(rows)}]{{{','.join(_key(k) for k in keys)}}}:"]
    lines += [",".join(_cell(row[k]) if k in row else "" for k in keys) for row in rows]
    return "\n".join(lines)


_MISSING = object()


def _split_cells(line: str) -> list[Any]:
    cells: list[Any] = []
    pos = 0
    while pos <= len(line):
        if line.startswith(('"', "[", "{"), pos) or _LITERAL.match(line[pos:].split(",", 1)[0]):
            value, pos = _DECODER.raw_decode(line, pos)
        else:
            end = line.find(",", pos)
            end = len(line) if end < 0 else end
            value, pos = (line[pos:end] if end > pos else _MISSING), end
        cells.append(value)
        pos += 1  # the comma
    return cells


def parse_table(text: str) -> list[dict[str, Any]]:
    """Read a table written by `to_table` back into the list of objects."""
    head, *rows = text.splitlines()
    match = re.fullmatch(r"\[(\d+)\]\{(.*)\}:", head)
    if not match:
        raise ValueError(f"not a table header: {head!r}")
    keys = [k if not k.startswith('"') else json.loads(k) for k in _split_keys(match.group(2))]
    out = [{k: v for k, v in zip(keys, _split_cells(row), strict=True) if v is not _MISSING}
           for row in rows]
    if len(out) != int(match.group(1)):
        raise ValueError("row count does not match the header")
    return out


def _split_keys(text: str) -> list[str]:
    keys, pos = [], 0
    while pos < len(text):
        if text[pos] == '"':
            _, end = _DECODER.raw_decode(text, pos)
            keys.append(text[pos:end])
            pos = end + 1
        else:
            end = text.find(",", pos)
            end = len(text) if end < 0 else end
            keys.append(text[pos:end])
            pos = end + 1
    return keys


def compact(value: Any) -> str:
    """The shortest faithful text for a JSON value: a table where it is uniform.

    A top-level object keeps its other keys as minified JSON, one per line,
    and writes each uniform array it holds as `key[N]{...}:` rows.
    """
    if is_uniform(value):
        return to_table(value)
    if isinstance(value, dict) and any(is_uniform(v) for v in value.values()):
        lines = []
        for key, sub in value.items():
            if is_uniform(sub):
                lines.append(_key(key) + to_table(sub))
            else:
                lines.append(f"{_key(key)}: {minify(sub)}")
        return "\n".join(lines)
    return minify(value)
