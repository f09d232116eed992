"""Compression benchmark: answer retention, reader accuracy, ratio and latency, side by side.

Multi-document QA prompts are built from `data/qa_passages.dev.jsonl`: each
question's gold passage among real distractor passages of the same set (10 and
20 documents in all), at a seeded random position. Each method compresses the
context to 2x, 4x and 10x (in the target model's tokens) and we report:

- retention: the share of prompts whose compressed context still contains a
  gold answer (case-insensitive);
- reader accuracy: SmolLM2-135M answering from the full and from the compressed
  context (greedy, short; correct when a gold answer occurs in the reply) — a
  relative signal, since the reader is small;
- achieved ratio (original / compressed tokens, mean) and compressor latency,
  p50 milliseconds per 1,000 original tokens ("warm": calls after the first on
  the same prompt, so the embedding cache holds its documents).

Run:  python benchmarks/compression.py --n 20 --out benchmarks/results/compression
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compression_methods import (
    EmbeddingsFilter,
    LongLLMLingua,
    Method,
    Ours,
    RandomSentences,
    Truncation,
    join_docs,
)

from tokenomy.scoring import pick_device
from tokenomy.tokenizers import count_text

DATA = Path(__file__).resolve().parents[1] / "data" / "qa_passages.dev.jsonl"
MODEL = "gpt-4o"  # budgets and ratios are in this target model's tokens
ALL_METHODS = ("ours-auto", "ours-extractive", "ours-extractive+tokens", "truncation",
               "random-sentences", "embeddings-filter", "longllmlingua")


@dataclass
class Prompt:
    id: str
    question: str
    answers: list[str]
    docs: list[str]
    gold_position: int

    @property
    def n_docs(self) -> int:
        return len(self.docs)


@dataclass
class Record:
    prompt: str
    n_docs: int
    method: str
    ratio: float
    original_tokens: int
    compressed_tokens: int
    retained: bool
    ms: float
    warm: bool
    reader_correct: bool | None = None
    reader_reply: str | None = None


@dataclass
class Run:
    device: str
    args: dict
    records: list[Record] = field(default_factory=list)
    full_reader: dict[str, bool] = field(default_factory=dict)  # prompt key -> correct


def contains_answer(text: str, answers: list[str]) -> bool:
    low = text.lower()
    return any(a.lower() in low for a in answers if a)


def build_prompts(items: list[dict], n: int, n_docs: int, seed: int) -> list[Prompt]:
    """The first `n` items, each with `n_docs - 1` distractors that hold none of its answers."""
    rng = random.Random(f"{seed}:{n_docs}")
    prompts = []
    for item in items[:n]:
        pool = [o["passage"] for o in items
                if o["id"] != item["id"] and not contains_answer(o["passage"], item["answers"])]
        docs = rng.sample(pool, n_docs - 1)
        position = rng.randrange(n_docs)
        docs.insert(position, item["passage"])
        prompts.append(Prompt(item["id"], item["question"], item["answers"], docs, position))
    return prompts


def make_methods(names: list[str], device: str, seed: int) -> dict[str, Method]:
    factories = {
        "ours-auto": lambda: Ours("auto", MODEL),
        "ours-extractive": lambda: Ours("extractive", MODEL),
        "ours-extractive+tokens": lambda: Ours("tokens", MODEL),
        "truncation": lambda: Truncation(MODEL),
        "random-sentences": lambda: RandomSentences(MODEL, seed),
        "embeddings-filter": lambda: EmbeddingsFilter(MODEL),
        "longllmlingua": lambda: LongLLMLingua(device),
    }
    return {name: factories[name]() for name in names}


def torch_threads(requested: int | None) -> int:
    """On an oversubscribed CPU (load above the core count), one torch thread is several
    times faster than two: OpenMP workers spin waiting for a descheduled sibling."""
    import torch

    if requested is None:
        busy = os.getloadavg()[0] > (os.cpu_count() or 1)
        requested = 1 if busy else torch.get_num_threads()
    torch.set_num_threads(requested)
    return requested


def run(args: argparse.Namespace, on_prompt: Callable[[Run], None] | None = None) -> Run:
    device = pick_device(args.device)
    args.threads = torch_threads(args.threads)
    args.load_before = round(os.getloadavg()[0], 1)
    items = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    methods = make_methods(args.methods, device, args.seed)
    reader = None
    if args.reader:
        from compression_reader import Reader

        reader = Reader(device)
    result = Run(device=device, args=vars(args))
    for n_docs in args.docs:
        prompts = build_prompts(items, args.n, n_docs, args.seed)
        for index, prompt in enumerate(prompts):
            context = join_docs(prompt.docs)
            original = count_text(context, MODEL)
            read = reader is not None and index < args.n_reader
            key = f"{prompt.id}@{n_docs}"
            if read:
                from compression_reader import judge

                result.full_reader[key] = judge(reader.answer(context, prompt.question),
                                                prompt.answers)
            for name, method in methods.items():
                for ratio_index, ratio in enumerate(args.ratios):
                    budget = max(1, int(original / ratio))
                    started = time.perf_counter()
                    text = method(prompt.docs, prompt.question, budget)
                    ms = (time.perf_counter() - started) * 1000
                    record = Record(key, n_docs, name, ratio, original, count_text(text, MODEL),
                                    contains_answer(text, prompt.answers), ms,
                                    warm=ratio_index > 0)
                    if read:
                        from compression_reader import judge

                        record.reader_reply = reader.answer(text, prompt.question)
                        record.reader_correct = judge(record.reader_reply, prompt.answers)
                    result.records.append(record)
            print(f"[{n_docs} docs] {index + 1}/{len(prompts)} {prompt.id} ({original} tokens)",
                  file=sys.stderr, flush=True)
            if on_prompt is not None:
                on_prompt(result)
    return result


def _pct(values: list[bool]) -> str:
    return f"{100 * sum(values) / len(values):.1f}%" if values else "-"


def summarise(run_: Run) -> list[dict]:
    groups: dict[tuple[int, str, float], list[Record]] = defaultdict(list)
    for r in run_.records:
        groups[(r.n_docs, r.method, r.ratio)].append(r)
    rows = []
    for (n_docs, method, ratio), recs in groups.items():
        per_1k = [r.ms / (r.original_tokens / 1000) for r in recs]
        warm = [r.ms / (r.original_tokens / 1000) for r in recs if r.warm]
        read = [r for r in recs if r.reader_correct is not None]
        rows.append({
            "docs": n_docs, "method": method, "ratio": ratio, "prompts": len(recs),
            "achieved": statistics.mean(r.original_tokens / max(1, r.compressed_tokens)
                                        for r in recs),
            "retention": sum(r.retained for r in recs) / len(recs),
            "reader": (sum(bool(r.reader_correct) for r in read) / len(read)) if read else None,
            "reader_full": (sum(run_.full_reader[r.prompt] for r in read) / len(read))
            if read else None,
            "reader_n": len(read),
            "p50_ms_per_1k": statistics.median(per_1k),
            "p50_warm_ms_per_1k": statistics.median(warm) if warm else None,
        })
    return rows


def markdown(rows: list[dict], run_: Run) -> str:
    lines = [
        f"device: {run_.device}; target model tokens: {MODEL}; "
        f"prompts per setting: {run_.args['n']}; reader prompts: "
        f"{run_.args['n_reader'] if run_.args['reader'] else 0}; torch threads "
        f"{run_.args['threads']}; CPU load average at start {run_.args['load_before']} "
        f"on {os.cpu_count()} cores",
        "",
        "| docs | ratio | method | achieved | retention | reader (compressed / full) "
        "| p50 ms/1k tok | p50 warm |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(rows, key=lambda r: (r["docs"], r["ratio"], ALL_METHODS.index(r["method"]))):
        reader = "-" if row["reader"] is None else (
            f"{100 * row['reader']:.0f}% / {100 * row['reader_full']:.0f}% (n={row['reader_n']})")
        warm = "-" if row["p50_warm_ms_per_1k"] is None else f"{row['p50_warm_ms_per_1k']:.1f}"
        lines.append(
            f"| {row['docs']} | {row['ratio']:g}x | {row['method']} | {row['achieved']:.2f}x "
            f"| {100 * row['retention']:.1f}% | {reader} | {row['p50_ms_per_1k']:.1f} | {warm} |"
        )
    return "\n".join(lines)


def goals(rows: list[dict], ours: str = "ours-auto") -> list[str]:
    """The issue's goals, checked on this run (for `ours`)."""
    out = []
    by = {(r["docs"], r["method"], r["ratio"]): r for r in rows}
    for (docs, method, ratio), row in sorted(by.items()):
        if method != ours:
            continue
        if ratio == 4:
            ok = row["retention"] >= 0.95
            out.append(f"{'PASS' if ok else 'MISS'} {docs} docs 4x retention "
                       f"{100 * row['retention']:.1f}% >= 95%")
            if row["reader"] is not None:
                ok = row["reader"] >= row["reader_full"]
                out.append(f"{'PASS' if ok else 'MISS'} {docs} docs 4x reader "
                           f"{100 * row['reader']:.0f}% >= full {100 * row['reader_full']:.0f}%")
        if ratio == 10:
            ok = row["retention"] >= 0.85
            out.append(f"{'PASS' if ok else 'MISS'} {docs} docs 10x retention "
                       f"{100 * row['retention']:.1f}% >= 85%")
        rivals = [r for (d, m, q), r in by.items() if d == docs and q == ratio
                  and not m.startswith("ours")]
        if rivals:
            best = max(rivals, key=lambda r: r["retention"])
            verdict = ("PASS" if row["retention"] > best["retention"] else
                       "TIE " if row["retention"] == best["retention"] else "MISS")
            out.append(f"{verdict} {docs} docs {ratio:g}x retention beats "
                       f"baselines ({100 * row['retention']:.1f}% vs {best['method']} "
                       f"{100 * best['retention']:.1f}%)")
    for row in rows:
        if row["method"] == "ours-extractive" and row["p50_warm_ms_per_1k"] is not None:
            ok = row["p50_warm_ms_per_1k"] < 50
            out.append(f"{'PASS' if ok else 'MISS'} extractive {row['docs']} docs "
                       f"{row['ratio']:g}x warm p50 {row['p50_warm_ms_per_1k']:.1f} ms/1k < 50")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=8, help="questions per document setting")
    parser.add_argument("--ratios", type=lambda s: [float(x) for x in s.split(",")],
                        default=[2.0, 4.0, 10.0])
    parser.add_argument("--docs", type=lambda s: [int(x) for x in s.split(",")],
                        default=[10, 20])
    parser.add_argument("--methods", type=lambda s: s.split(","), default=list(ALL_METHODS))
    parser.add_argument("--reader", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--n-reader", type=int, default=3,
                        help="prompts per document setting that the reader answers")
    parser.add_argument("--device", default=None, help="cpu, cuda (default: auto)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: all; 1 on an oversubscribed CPU)")
    parser.add_argument("--out", default=None, help="path prefix for .md and .json results")
    parser.add_argument("--merge", type=lambda s: s.split(","), default=None,
                        help="re-summarise saved .json runs (comma-separated) instead of running")
    args = parser.parse_args(argv)
    unknown = set(args.methods) - set(ALL_METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {', '.join(ALL_METHODS)}")
    return args


def merge(paths: list[str]) -> Run:
    """Several saved runs (their .json) as one, e.g. a fast-methods run and a model run."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    args = dict(runs[0]["args"])
    for key in ("n", "n_reader", "threads", "load_before"):
        args[key] = "/".join(str(r["args"].get(key)) for r in runs)
    merged = Run(device=runs[0]["device"], args=args)
    for saved in runs:
        merged.records += [Record(**r) for r in saved["records"]]
        merged.full_reader.update(saved["full_reader"])
    return merged


def write(run_: Run, out: Path, elapsed: float, partial: bool) -> tuple[str, list[str]]:
    rows = summarise(run_)
    table = markdown(rows, run_)
    checks = goals(rows)
    note = "\n\n(partial: the run was still going)" if partial else ""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(table + "\n\n" + "\n".join(checks) + note + "\n")
    out.with_suffix(".json").write_text(json.dumps({
        "device": run_.device, "args": run_.args, "rows": rows, "goals": checks,
        "wall_s": elapsed, "partial": partial, "full_reader": run_.full_reader,
        "records": [asdict(r) for r in run_.records],
    }, indent=1))
    return table, checks


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    out = Path(args.out) if args.out else None

    def checkpoint(run_: Run) -> None:
        if out is not None and run_.records:
            write(run_, out, time.perf_counter() - started, partial=True)

    run_ = merge(args.merge) if args.merge else run(args, checkpoint)
    elapsed = time.perf_counter() - started if not args.merge else sum(
        json.loads(Path(p).read_text())["wall_s"] for p in args.merge)
    if out is not None:
        table, checks = write(run_, out, elapsed, partial=False)
    else:
        rows = summarise(run_)
        table, checks = markdown(rows, run_), goals(rows)
    print(table)
    print()
    print("\n".join(checks))
    print(f"\nwall time {elapsed:.0f} s")


if __name__ == "__main__":
    main()
