"""Lossless compression: valid JSON, tables only when smaller, whitespace, dedup."""

from __future__ import annotations

import csv
import io
import json

from tokenomy.compressors.lossless import (
    LosslessCompressor,
    dedup_paragraphs,
    minify_json,
    normalize_text,
)
from tokenomy.tokenizers import count_text

MODEL = "gpt-4o"

ROWS = [
    {"id": i, "name": f"user{i}", "team": ["search", "ads", "infra"][i % 3], "active": i % 2 == 0,
     "score": round(i * 1.5, 1)}
    for i in range(25)
]


def _expand(value):
    """Undo the columns/rows table form: the lossless promise is reversibility."""
    if isinstance(value, dict):
        if set(value) == {"columns", "rows"}:
            return [dict(zip(value["columns"], row, strict=True)) for row in value["rows"]]
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def test_pretty_json_is_minified_and_still_valid():
    doc = {"query": "latency", "results": ROWS, "meta": {"took_ms": 12, "note": "ünïcode ✓"}}
    text = json.dumps(doc, indent=4)
    result = LosslessCompressor().compress(text, model=MODEL)
    parsed = json.loads(result.text)
    assert _expand(parsed) == doc
    assert result.compressed_tokens < result.original_tokens / 2
    assert "ünïcode ✓" in result.text  # no \u escapes that cost tokens


def test_uniform_array_becomes_table_only_when_smaller():
    small = [{"a": 1}, {"a": 2}, {"a": 3}]
    # Too few columns to win: left as a plain array, unless the table is smaller.
    out = json.loads(minify_json(json.dumps(small), model=MODEL))
    assert _expand(out) == small
    if isinstance(out, dict):
        assert count_text(json.dumps(out, separators=(",", ":")), MODEL) < count_text(
            json.dumps(small, separators=(",", ":")), MODEL)
    big = json.loads(minify_json(json.dumps(ROWS), model=MODEL))
    assert set(big) == {"columns", "rows"} and _expand(big) == ROWS


def test_mixed_arrays_are_not_tabled():
    mixed = [{"a": 1}, {"b": 2}, {"a": 3, "c": [1, 2]}]
    assert json.loads(minify_json(json.dumps(mixed, indent=2), model=MODEL)) == mixed


def test_toon_and_csv_tables_for_whole_arrays():
    toon = LosslessCompressor(table_format="toon").compress(json.dumps(ROWS, indent=2), model=MODEL)
    lines = toon.text.splitlines()
    assert lines[0] == "[25]{id,name,team,active,score}:"
    assert lines[1].strip() == "0,user0,search,true,0.0"
    as_csv = LosslessCompressor(table_format="csv").compress(json.dumps(ROWS), model=MODEL)
    parsed = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert parsed[3]["name"] == "user3" and len(parsed) == 25
    assert as_csv.compressed_tokens < count_text(json.dumps(ROWS), MODEL)


def test_invalid_json_is_left_as_text():
    text = '{"a": 1, "b": }  and   more'
    assert minify_json(text, model=MODEL) is None
    result = LosslessCompressor().compress(text, model=MODEL)
    assert result.text == '{"a": 1, "b": } and more'


def test_embedded_json_in_prose_and_fences():
    text = (
        "Here is the tool output:\n\n```json\n" + json.dumps(ROWS[:5], indent=2) + "\n```\n\n"
        "And inline:\n" + json.dumps({"ok": True, "items": [1, 2, 3]}, indent=2) + "\nDone."
    )
    result = LosslessCompressor().compress(text, model=MODEL)
    assert result.compressed_tokens < result.original_tokens
    fenced = result.text.split("```json\n", 1)[1].split("\n```", 1)[0]
    assert _expand(json.loads(fenced)) == ROWS[:5]
    assert '{"ok":true,"items":[1,2,3]}' in result.text
    assert result.text.endswith("Done.")


def test_whitespace_normalised_but_code_fences_and_indentation_kept():
    code = "```python\ndef f(x):\n    return  x   +  1\n```"
    text = ("Title\u200b   here  \n\n\n\n- item   one\n    - nested   item\n\n"
            + code + "\n\n<!-- x -->End")
    out = normalize_text(text)
    assert "Title here" in out
    assert "\n\n\n" not in out
    assert "    - nested item" in out
    assert code in out  # untouched, inner spaces included
    assert "<!--" not in out


def test_repeated_paragraphs_become_back_references():
    para = ("The quarterly report shows revenue grew in every region, with the strongest "
            "growth in the northern markets where new stores opened during the spring.")
    text = f"{para}\n\nSomething else entirely.\n\n{para}"
    out = dedup_paragraphs(text, model=MODEL, min_tokens=20)
    assert out.count(para) == 1
    assert "[repeated:" in out and out.startswith(para)


def test_empty_input():
    result = LosslessCompressor().compress("", model=MODEL)
    assert result.text == "" and result.original_tokens == 0 and result.ratio == 1.0
