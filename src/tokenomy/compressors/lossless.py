"""Lossless structured compression: no model, meaning fully reversible.

- whitespace and boilerplate normalisation (code fences and indentation kept),
- JSON minification (the output is still valid JSON),
- uniform arrays of objects as a compact table, only when that is smaller in
  the target model's tokens: `{"columns": [...], "rows": [[...], ...]}` keeps
  the JSON valid (default); TOON-like or CSV text is available for a whole
  document that is one array,
- repeated paragraphs replaced by a short back-reference.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from typing import Any, Literal

from tokenomy.compressors.base import CompressionResult, make_result
from tokenomy.compressors.json_compact import is_uniform, table_keys, to_table
from tokenomy.tokenizers import count_text

TableFormat = Literal["json", "toon", "csv", "off"]

_FENCE = re.compile(r"^(```|~~~)([^\n]*)\n(.*?)^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_RULE = re.compile(r"^[ \t]*([-=_*#~])\1{3,}[ \t]*$", re.MULTILINE)


class LosslessCompressor:
    name = "lossless"

    def __init__(self, *, table_format: TableFormat = "json", dedup_min_tokens: int = 40):
        self.table_format = table_format
        self.dedup_min_tokens = dedup_min_tokens

    def compress(
        self, text: str, *, query: str | None = None, target_tokens: int = 0, model: str
    ) -> CompressionResult:
        """Everything lossless that helps; `target_tokens` is not enforced (nothing is dropped)."""
        started = time.perf_counter()
        techniques: list[str] = []
        out = text
        as_json = minify_json(out, model=model, table_format=self.table_format)
        if as_json is not None:
            out = as_json
            techniques.append("json")
        else:
            normal = normalize_text(out)
            if normal != out:
                techniques.append("whitespace")
            out = minify_embedded_json(normal, model=model)
            if out != normal:
                techniques.append("json")
            deduped = dedup_paragraphs(out, model=model, min_tokens=self.dedup_min_tokens)
            if deduped != out:
                techniques.append("dedup")
            out = deduped
        return make_result(text, out, model=model, method=self.name, started=started,
                           detail={"techniques": techniques})


def normalize_text(text: str) -> str:
    """Collapse runs of blanks, blank lines and rules; code fences are left untouched."""
    text = _ZERO_WIDTH.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    parts: list[str] = []
    pos = 0
    for fence in _FENCE.finditer(text):
        parts.append(_normalize_prose(text[pos : fence.start()]))
        parts.append(fence.group(0))
        pos = fence.end()
    parts.append(_normalize_prose(text[pos:]))
    return "".join(parts).strip("\n")


def _normalize_prose(text: str) -> str:
    text = _HTML_COMMENT.sub("", text)
    text = _RULE.sub(lambda m: m.group(1) * 3, text)
    lines = []
    for line in text.split("\n"):
        # Leading indentation carries structure (lists, YAML); inner runs do not.
        body = line.lstrip(" \t")
        indent = line[: len(line) - len(body)]
        lines.append(indent + re.sub(r"[ \t]{2,}", " ", body).rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


# -- JSON --


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _is_uniform_table(value: Any) -> bool:
    """Worth a table: three rows or more that share their columns (json_compact's rule)."""
    return isinstance(value, list) and is_uniform(value, min_rows=3) and all(
        not isinstance(v, dict | list) for row in value for v in row.values())


def _json_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Still JSON: the columns once, then one array per row (a missing key is null)."""
    keys = table_keys(rows, min_rows=1) or list(rows[0])
    return {"columns": keys, "rows": [[row.get(k) for k in keys] for row in rows]}


def _tables_in(value: Any, model: str) -> Any:
    """Replace uniform arrays of objects by columns+rows where that saves tokens."""
    if isinstance(value, dict):
        return {k: _tables_in(v, model) for k, v in value.items()}
    if isinstance(value, list):
        if _is_uniform_table(value):
            table = _json_table(value)
            if count_text(_dumps(table), model) < count_text(_dumps(value), model):
                return table
            return value
        return [_tables_in(v, model) for v in value]
    return value


def toon(rows: list[dict[str, Any]]) -> str:
    """TOON tabular form (`[N]{a,b}:` then one row per line), json_compact's writer."""
    return to_table(rows)


def csv_table(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    keys = table_keys(rows, min_rows=1) or list(rows[0])
    writer.writerow(keys)
    for row in rows:
        writer.writerow(["" if row.get(k) is None else row[k] for k in keys])
    return buf.getvalue().rstrip("\n")


def minify_json(text: str, *, model: str, table_format: TableFormat = "json") -> str | None:
    """The whole text as compact JSON (or a table), or None when it is not JSON."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        return _minify_value(json.loads(stripped), model=model, table_format=table_format)
    except ValueError:
        return None
    except RecursionError:  # nested deeper than Python recurses: leave it as it is
        return None


def _minify_value(value: Any, *, model: str, table_format: TableFormat) -> str:
    best = _dumps(value)
    if table_format == "off":
        return best
    if table_format in ("toon", "csv") and _is_uniform_table(value):
        table = toon(value) if table_format == "toon" else csv_table(value)
        if count_text(table, model) < count_text(best, model):
            return table
        return best
    tabled = _dumps(_tables_in(value, model))
    return tabled if tabled != best else best


def minify_embedded_json(text: str, *, model: str) -> str:
    """Minify JSON found in ```json fences and in blocks that start a line with { or [."""

    def fence(m: re.Match[str]) -> str:
        if m.group(2).strip().lower() not in ("json", ""):
            return m.group(0)
        small = minify_json(m.group(3), model=model)
        return m.group(0) if small is None else f"{m.group(1)}{m.group(2)}\n{small}\n{m.group(1)}"

    text = _FENCE.sub(fence, text)
    decoder = json.JSONDecoder()
    out: list[str] = []
    pos = 0
    for m in re.finditer(r"(?m)^[ \t]*[\[{]", text):
        start = m.end() - 1
        if start < pos or _inside_fence(text, start):
            continue
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            continue
        if not isinstance(value, dict | list):
            continue
        try:
            small = _dumps(_tables_in(value, model))
        except RecursionError:
            continue
        if len(small) < end - start:
            out.append(text[pos:start])
            out.append(small)
            pos = end
    out.append(text[pos:])
    return "".join(out)


def _inside_fence(text: str, index: int) -> bool:
    return any(f.start() <= index < f.end() for f in _FENCE.finditer(text))


# -- repeated paragraphs --


def dedup_paragraphs(text: str, *, model: str, min_tokens: int = 40) -> str:
    """A paragraph seen before (same text after whitespace folding) becomes a back-reference."""
    pieces = re.split(r"(\n[ \t]*\n)", text)
    seen: dict[str, str] = {}
    changed = False
    for i in range(0, len(pieces), 2):
        para = pieces[i]
        key = " ".join(para.split())
        if not key:
            continue
        if key in seen:
            pieces[i] = seen[key]
            changed = True
        elif count_text(para, model) >= min_tokens:
            words = " ".join(key.split()[:6])
            seen[key] = f'[repeated: same text as the passage above that begins "{words}"]'
    return "".join(pieces) if changed else text
