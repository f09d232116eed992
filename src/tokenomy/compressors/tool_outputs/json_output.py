"""JSON outputs: the project's lossless compactor first, then long arrays sampled.

`tokenomy.compressors.lossless.minify_json` minifies and turns uniform arrays of
objects into column tables (still valid JSON). An array longer than `LONG_ARRAY`
then keeps its first and last items, every item that names a query item or looks
like an error, and the numeric extremes (the outliers); the rest is replaced,
inside the array, by one string that says how many items went and how to print
them (`jq`). The result is always valid JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tokenomy.compressors.lossless import minify_json
from tokenomy.compressors.tool_outputs.query import QueryItems
from tokenomy.compressors.tool_outputs.result import Elision

LONG_ARRAY = 20
HEAD_ITEMS = 5
TAIL_ITEMS = 2
_ERRORISH = re.compile(r"error|fail|exception|invalid|denied|timeout|warning", re.IGNORECASE)


def parse_json(text: str) -> Any | None:
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{" or stripped[-1] not in "]}":
        return None
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):
        return None


def compact_json(text: str, value: Any, query: QueryItems, *, model: str,
                 recover: str | None) -> tuple[str, list[Elision]]:
    """Minified (tables where smaller), or with long arrays sampled when any are."""
    small = minify_json(text, model=model) or text
    elisions: list[Elision] = []
    sampled = _sample(value, query, recover, elisions, path="")
    if not elisions:
        return small, []
    return json.dumps(sampled, ensure_ascii=False, separators=(",", ":")), elisions


def _sample(value: Any, query: QueryItems, recover: str | None, elisions: list[Elision],
            path: str) -> Any:
    if isinstance(value, dict):
        return {k: _sample(v, query, recover, elisions, f"{path}.{k}") for k, v in value.items()}
    if not isinstance(value, list):
        return value
    items = [_sample(v, query, recover, elisions, f"{path}[{i}]") for i, v in enumerate(value)]
    if len(items) <= LONG_ARRAY:
        return items
    keep = set(range(HEAD_ITEMS)) | set(range(len(items) - TAIL_ITEMS, len(items)))
    numeric = [i for i, v in enumerate(value) if isinstance(v, int | float)
               and not isinstance(v, bool)]
    if numeric:
        keep.add(min(numeric, key=lambda i: value[i]))
        keep.add(max(numeric, key=lambda i: value[i]))
    for i, v in enumerate(value):
        dumped = json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else str(v)
        if query.hit(dumped) or (isinstance(v, dict) and _ERRORISH.search(dumped)):
            keep.add(i)
    out: list[Any] = []
    i = 0
    where = path or "."
    while i < len(items):
        if i in keep:
            out.append(items[i])
            i += 1
            continue
        j = i
        while j < len(items) and j not in keep:
            j += 1
        how = f": {recover} | jq '{where}[{i}:{j}]'" if recover else ""
        out.append(f"[... {j - i} items omitted{how}]")
        elisions.append(Elision(first_line=1, last_line=1, lines=0,
                                what=f"{j - i} items of {where}",
                                recover=f"{recover} | jq '{where}[{i}:{j}]'" if recover else None))
        i = j
    return out
