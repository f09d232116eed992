"""JSON data compaction (minified / TOON tables) and finding JSON inside prompt text."""

from __future__ import annotations

import json
from pathlib import Path

from tokenomy.codify.detect import find_blocks
from tokenomy.compressors.json_compact import compact, is_uniform, minify, parse_table
from tokenomy.tokenizers import count_text

DATA = Path(__file__).resolve().parents[1] / "data" / "codify" / "outputs"


def test_table_round_trips_awkward_cells() -> None:
    rows = [
        {"id": 1, "name": "apple", "price": 0.5, "note": None, "ok": True},
        {"id": 2, "name": "pear, green", "price": 1e-05, "note": "12", "ok": False},
        {"id": 3, "name": ' "quoted" ', "price": -3, "note": "null", "ok": True},
        {"id": 4, "name": "", "price": 0, "note": "a|b\nc", "ok": False},
    ]
    text = compact(rows)
    assert text.splitlines()[0] == "[4]{id,name,price,note,ok}:"
    assert text.splitlines()[1] == "1,apple,0.5,null,true"
    assert parse_table(text) == rows


def test_nested_cells_stay_json() -> None:
    rows = [{"id": i, "tags": ["a", "b"], "name": f"n{i}"} for i in range(3)]
    assert is_uniform(rows)
    assert parse_table(compact(rows)) == rows


def test_non_uniform_data_is_only_minified() -> None:
    value = [{"a": 1}, {"b": 2}]
    assert compact(value) == minify(value) == '[{"a":1},{"b":2}]'


def test_real_tool_output_shrinks_by_more_than_half() -> None:
    rows = json.loads((DATA / "litellm_model_prices.json").read_text())
    pretty = count_text(json.dumps(rows, indent=2), "gpt-4o")
    table = compact(rows)
    assert parse_table(table) == rows
    assert count_text(table, "gpt-4o") < 0.5 * pretty


def test_find_blocks_in_prose_and_fences() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    text = (
        "Answer with JSON matching this schema:\n```json\n" + json.dumps(schema, indent=2)
        + "\n```\nData: " + json.dumps([{"a": 1, "b": 2}] * 5)
        + "\nAn aside {not json} and a short {\"a\": 1}."
    )
    blocks = find_blocks(text)
    assert [b.kind for b in blocks] == ["schema", "data"]
    assert blocks[0].value == schema
    assert text[blocks[1].start:blocks[1].end].startswith("[{")


async def test_fenced_table_is_no_longer_labelled_json() -> None:
    from tokenomy.call import Call, Result
    from tokenomy.codify.stage import CodifyStage
    from tokenomy.config import Settings
    from tokenomy.pipeline import Pipeline

    rows = json.loads((DATA / "litellm_model_prices.json").read_text())[:5]
    content = "Prices:\n```json\n" + json.dumps(rows, indent=2) + "\n```\nDone."
    seen: list[Call] = []

    async def terminal(call: Call) -> Result:
        seen.append(call)
        return Result(response={})

    call = Call(body={"model": "gpt-4o", "messages": [{"role": "tool", "content": content}]})
    await Pipeline([CodifyStage(Settings())], terminal).run(call)
    sent = seen[0].body["messages"][0]["content"]
    assert sent.startswith("Prices:\n```text\n[5]{model,") and sent.endswith("\n```\nDone.")
