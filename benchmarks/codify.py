"""Token counts of codified forms on real schemas, tool lists, tool outputs and prompts.

    python benchmarks/codify.py [--models gpt-4o,gpt-4] [--json]

Rows (all files under data/codify/, sources in data/codify/README.md):
- schemas/*.json and tools/*.json: pretty JSON (indent=2, as people paste it)
  vs minified JSON vs the typed rendering (`render_schema` / `render_tools`);
  every rendering is parsed back and checked equal to the schema (`rt` column).
- openapi/*.json: OpenAPI documents vs `render_openapi` (one line per operation
  plus typed components; `rt` checks every component schema round-trips).
- outputs/*.json: pretty vs minified vs `compact` (TOON tables where uniform).
- prompts/*.txt: the system prompt vs its rule-based 5C contract (validated).

Savings are against pretty JSON (`save`) and against minified JSON (`vs_min`).
gpt-4o counts with o200k_base, gpt-4 with cl100k_base.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tokenomy.codify.contracts import rule_contract, validate
from tokenomy.codify.openapi import render_openapi
from tokenomy.codify.shapes import canonical
from tokenomy.codify.typed import render_schema, render_tools
from tokenomy.codify.typed_parse import parse_schema, parse_tools
from tokenomy.compressors.json_compact import compact, minify
from tokenomy.tokenizers import count_text

DATA = Path(__file__).resolve().parents[1] / "data" / "codify"


def _schema_row(path: Path) -> tuple[str, str, str, bool]:
    value = json.loads(path.read_text())
    if isinstance(value, list):
        text = render_tools(value)
        back = parse_tools(text)
        ok = [canonical(t["function"]["parameters"]) for t in back] == [
            canonical(t["function"]["parameters"]) for t in value]
    else:
        text = render_schema(value)
        ok = canonical(parse_schema(text)) == canonical(value)
    return json.dumps(value, indent=2), minify(value), text, ok


def rows(models: list[str]) -> list[dict]:
    out: list[dict] = []

    def add(group: str, name: str, pretty: str, mini: str | None, codified: str, ok: bool,
            ms: float) -> None:
        for model in models:
            before = count_text(pretty, model)
            small = count_text(mini, model) if mini is not None else None
            after = count_text(codified, model)
            out.append({"group": group, "name": name, "model": model, "original": before,
                        "minified": small, "codified": after, "save": 1 - after / before,
                        "vs_min": None if small is None else 1 - after / small, "rt": ok,
                        "ms": ms})

    for folder, group in (("schemas", "schema"), ("tools", "tools")):
        for path in sorted((DATA / folder).glob("*.json")):
            started = time.perf_counter()
            pretty, mini, text, ok = _schema_row(path)
            add(group, path.stem, pretty, mini, text, ok, (time.perf_counter() - started) * 1e3)
    for path in sorted((DATA / "openapi").glob("*.json")):
        spec = json.loads(path.read_text())
        started = time.perf_counter()
        text = render_openapi(spec)
        ms = (time.perf_counter() - started) * 1e3
        schemas = (spec.get("components") or {}).get("schemas") or {}
        ok = all(canonical(parse_schema(render_schema(s))) == canonical(s)
                 for s in schemas.values())
        add("openapi", path.stem, json.dumps(spec, indent=2), minify(spec), text, ok, ms)
    for path in sorted((DATA / "outputs").glob("*.json")):
        value = json.loads(path.read_text())
        started = time.perf_counter()
        text = compact(value)
        ms = (time.perf_counter() - started) * 1e3
        add("json", path.stem, json.dumps(value, indent=2), minify(value), text, True, ms)
    for path in sorted((DATA / "prompts").glob("*.txt")):
        prompt = path.read_text()
        started = time.perf_counter()
        contract = rule_contract(prompt)
        ms = (time.perf_counter() - started) * 1e3
        add("5C", path.stem, prompt, None, contract, not validate(prompt, contract), ms)
    return out


def table(results: list[dict]) -> str:
    head = (f"{'group':<8}{'name':<28}{'model':<8}{'original':>9}{'minified':>9}"
            f"{'codified':>9}{'save':>7}{'vs_min':>8}  rt  {'ms':>6}")
    lines = [head, "-" * len(head)]
    for r in results:
        mini = "-" if r["minified"] is None else str(r["minified"])
        vs_min = "-" if r["vs_min"] is None else f"{r['vs_min']:.0%}"
        lines.append(f"{r['group']:<8}{r['name'][:27]:<28}{r['model']:<8}{r['original']:>9}"
                     f"{mini:>9}{r['codified']:>9}{r['save']:>7.0%}{vs_min:>8}  "
                     f"{'ok' if r['rt'] else 'NO':<2}  {r['ms']:>6.1f}")
    lines.append("")
    for group in dict.fromkeys(r["group"] for r in results):
        for model in dict.fromkeys(r["model"] for r in results):
            sel = [r for r in results if r["group"] == group and r["model"] == model]
            before = sum(r["original"] for r in sel)
            after = sum(r["codified"] for r in sel)
            mins = [r["minified"] for r in sel if r["minified"] is not None]
            vs = f", {1 - after / sum(mins):.1%} vs minified" if len(mins) == len(sel) else ""
            lines.append(f"total {group:<8}{model:<8}{before:>7} -> {after:<7} "
                         f"{1 - after / before:.1%} fewer tokens{vs}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="gpt-4o,gpt-4",
                        help="comma-separated target models (tokenizers)")
    parser.add_argument("--json", action="store_true", help="print JSON rows")
    args = parser.parse_args()
    results = rows(args.models.split(","))
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0 if all(r["rt"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
