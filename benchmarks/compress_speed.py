"""Compressor latency per 1k tokens: cold caches, warm documents, fully warm.

Builds multi-document prompts from data/qa_passages.dev.jsonl (the gold passage
among real distractors) and times `ExtractiveCompressor`, `compress_messages`
and the lossless/code compressors. "warm docs" = the documents were seen
before (embedding cache hit) but the question is new, the common RAG case.

    python benchmarks/compress_speed.py [--n 20] [--docs 10] [--ratio 4] [--model gpt-4o]
"""

from __future__ import annotations

import argparse
import inspect
import json
import random
import statistics
import time
from pathlib import Path

from tokenomy.compressors.code import CodeCompressor
from tokenomy.compressors.extractive import ExtractiveCompressor
from tokenomy.compressors.lossless import LosslessCompressor
from tokenomy.compressors.messages import compress_messages
from tokenomy.scoring import load_embedder, pick_device
from tokenomy.scoring.embeddings import default_cache
from tokenomy.tokenizers import count_text

DATA = Path(__file__).resolve().parent.parent / "data" / "qa_passages.dev.jsonl"


def prompts(n: int, n_docs: int, seed: int = 0) -> list[tuple[str, dict, list[dict]]]:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    rng = random.Random(seed)
    out = []
    for item in rows[:n]:
        docs = rng.sample([r for r in rows if r["id"] != item["id"]], n_docs - 1)
        docs.insert(rng.randrange(n_docs), item)
        context = "\n\n".join(f"[{i + 1}] {d['passage']}" for i, d in enumerate(docs))
        out.append((context, item, docs))
    return out


def per_1k(ms: float, tokens: int) -> float:
    return ms / (tokens / 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--docs", type=int, default=10)
    parser.add_argument("--ratio", type=float, default=4.0)
    parser.add_argument("--model", default="gpt-4o")
    args = parser.parse_args()
    device = pick_device()
    load_embedder()
    extractive = ExtractiveCompressor()
    cases = prompts(args.n, args.docs)
    # A second question for every context: documents warm, question new.
    others = [c[1]["question"] for c in cases[1:]] + [cases[0][1]["question"]]
    rows: dict[str, list[float]] = {"extractive cold": [], "extractive warm docs": [],
                                    "extractive fully warm": [], "compress_messages warm": []}
    retained = 0
    tokens_total = 0
    for (context, item, _), other_q in zip(cases, others, strict=True):
        tokens = count_text(context, args.model)
        tokens_total += tokens
        budget = int(tokens / args.ratio)
        default_cache().clear()
        for label, query in (("extractive cold", item["question"]),
                             ("extractive warm docs", other_q),
                             ("extractive fully warm", other_q)):
            t0 = time.perf_counter()
            result = extractive.compress(context, query=query, target_tokens=budget,
                                         model=args.model)
            rows[label].append(per_1k((time.perf_counter() - t0) * 1000, tokens))
        result = extractive.compress(context, query=item["question"], target_tokens=budget,
                                     model=args.model)
        retained += any(a.lower() in result.text.lower() for a in item["answers"])
        messages = [{"role": "system", "content": "Answer from the passages."},
                    {"role": "user", "content": f"{context}\n\nQuestion: {item['question']}"}]
        t0 = time.perf_counter()
        compress_messages(messages, model=args.model, target_ratio=args.ratio)
        rows["compress_messages warm"].append(per_1k((time.perf_counter() - t0) * 1000, tokens))
    json_doc = json.dumps([{"id": i, "question": c[1]["question"], "source": c[1]["source"],
                            "answers": c[1]["answers"]} for i, c in enumerate(cases)], indent=2)
    t0 = time.perf_counter()
    lossless = LosslessCompressor().compress(json_doc, model=args.model)
    lossless_ms = per_1k((time.perf_counter() - t0) * 1000, lossless.original_tokens)
    import tokenomy.compressors.extractive as code_sample

    source = inspect.getsource(code_sample)
    t0 = time.perf_counter()
    code = CodeCompressor().compress(source, query="how are sentences selected under the budget",
                                     target_tokens=count_text(source, args.model) // 3,
                                     model=args.model)
    code_ms = per_1k((time.perf_counter() - t0) * 1000, code.original_tokens)

    print(f"device={device}  prompts={args.n} x {args.docs} docs  "
          f"mean {tokens_total / args.n:.0f} tokens  ratio {args.ratio}x  model {args.model}")
    print(f"answer retained by extractive: {retained}/{args.n}")
    print()
    print("| compressor | p50 ms / 1k tokens | p90 ms / 1k tokens |")
    print("|---|---:|---:|")
    for label, values in rows.items():
        values.sort()
        p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
        print(f"| {label} | {statistics.median(values):.1f} | {p90:.1f} |")
    print(f"| lossless (JSON {lossless.original_tokens} -> {lossless.compressed_tokens} tokens) "
          f"| {lossless_ms:.1f} | |")
    print(f"| code (python, {code.ratio:.1f}x) | {code_ms:.1f} | |")


if __name__ == "__main__":
    main()
