"""Routing benchmark: how many requests can a cheap reasoning mode take at no real loss?

Data: data/routing_labels.dev.jsonl (RouteLLM's GSM8K and MMLU labels: did a weak
model, Mixtral-8x7B, and a strong one, GPT-4, answer correctly). A request routed
cheap is correct iff weak_correct, otherwise iff strong_correct.

Split: seeded 80/20, stratified by benchmark, grouped by prompt text (MMLU has
duplicate prompts; both copies land on one side). The difficulty model is trained
on the 80% only and evaluated on the 20%, for --seeds different splits (the first
shown in full, all summarised as mean [min, max]): 20% of GSM8K is only ~80
prompts, so one split's GSM8K figure swings widely. The script also reports
5-fold cross-validation (each prompt scored by a model that never saw it),
repeated over --cv-seeds fold assignments: it uses every prompt for evaluation
and, averaged, is the steadiest figure.

Routers compared: ours with text features only (tokenomy, the CPU default, well
under 1 ms a prompt), ours with the MiniLM embedding head on math word problems
(tokenomy+emb, the default where scoring has a GPU; one MiniLM pass per new
prompt), a random router (expected curve over 500 seeds), and a length-only
heuristic (shorter prompts go cheap).
Metrics, per benchmark and overall:
  - cost-quality curve: accuracy at 0, 20, ..., 100% of requests sent cheap
  - cheap@95: the largest share sent cheap with accuracy >= 95% of strong-only
  - APGR (RouteLLM): area under the performance-gap-recovered curve,
    PGR = (acc - weak_acc) / (strong_acc - weak_acc), over the share sent strong.

Run: python benchmarks/routing.py [--data FILE] [--seed N] [--seeds S] [--folds K] [--cv-seeds C]
     [--train FILE: train on FILE and evaluate on all of --data, no split]
"""

from __future__ import annotations

import argparse
import random
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from tokenomy.planners.difficulty import MATH_GATE, DifficultyModel
from tokenomy.planners.features import dense_features
from tokenomy.planners.training import LabelledPrompt, train
from tokenomy.scoring.embeddings import EmbeddingCache, embed_texts

ROOT = Path(__file__).resolve().parents[1]


class Row(LabelledPrompt):
    id: str
    benchmark: str


def load(path: Path) -> list[Row]:
    return [Row.model_validate_json(line) for line in path.read_text().splitlines() if line]


def grouped_folds(rows: list[Row], k: int, seed: int) -> list[int]:
    """A fold number per row: stratified by benchmark, duplicates of a prompt together."""
    groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, row in enumerate(rows):
        groups[row.benchmark][row.prompt].append(index)
    fold = [0] * len(rows)
    rng = random.Random(seed)
    for bench in sorted(groups):
        prompts = sorted(groups[bench])
        rng.shuffle(prompts)
        for position, prompt in enumerate(prompts):
            for index in groups[bench][prompt]:
                fold[index] = position % k
    return fold


def curve(score: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> np.ndarray:
    """Accuracy when the k highest-scored requests go cheap, k = 0..n."""
    order = np.argsort(-score, kind="stable")
    gain = np.concatenate([[0], np.cumsum((weak.astype(int) - strong.astype(int))[order])])
    return (strong.sum() + gain) / len(weak)


def random_curve(weak: np.ndarray, strong: np.ndarray, seeds: int = 500) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.mean([curve(rng.random(len(weak)), weak, strong) for _ in range(seeds)], axis=0)


def cheap_at(acc: np.ndarray, strong_acc: float, share: float = 0.95) -> float:
    ok = np.nonzero(acc >= share * strong_acc - 1e-12)[0]
    return float(ok.max()) / (len(acc) - 1)


def apgr(acc: np.ndarray, weak_acc: float, strong_acc: float) -> float:
    pgr = (acc - weak_acc) / (strong_acc - weak_acc)
    # acc[k] has k of n cheap, so reversed it runs over the share sent strong, 0..1.
    return float(np.trapezoid(pgr[::-1], dx=1.0 / (len(acc) - 1)))


def at_share(acc: np.ndarray, share: float) -> float:
    return float(acc[round(share * (len(acc) - 1))])


def report(
    title: str, rows: list[Row], scores: dict[str, np.ndarray], quiet: bool = False
) -> dict[str, dict]:
    say = (lambda *_: None) if quiet else print
    say(f"\n## {title}")
    header = (
        f"{'subset':<7} {'n':>5} {'weak':>6} {'strong':>6}  {'router':<14} {'APGR':>6} "
        f"{'cheap@95':>8}  "
        + " ".join(f"{s:>5}" for s in ("0%", "20%", "40%", "60%", "80%", "100%"))
    )
    say(header)
    say("-" * len(header))
    out: dict[str, dict] = {}
    bench = np.asarray([r.benchmark for r in rows])
    weak_all = np.asarray([r.weak_correct for r in rows])
    strong_all = np.asarray([r.strong_correct for r in rows])
    for subset in ("gsm8k", "mmlu", "all"):
        mask = np.ones(len(rows), bool) if subset == "all" else bench == subset
        weak, strong = weak_all[mask], strong_all[mask]
        wa, sa = float(weak.mean()), float(strong.mean())
        for name, score in scores.items():
            if name == "random":
                acc = random_curve(weak, strong)
            else:
                acc = curve(score[mask], weak, strong)
            a, c = apgr(acc, wa, sa), cheap_at(acc, sa)
            out[f"{subset}/{name}"] = {"apgr": a, "cheap@95": c}
            points = " ".join(f"{at_share(acc, s):5.3f}" for s in (0, 0.2, 0.4, 0.6, 0.8, 1.0))
            say(
                f"{subset:<7} {int(mask.sum()):>5} {wa:6.3f} {sa:6.3f}  {name:<14} {a:6.3f} "
                f"{c:8.1%}  {points}"
            )
    say("(columns 0%..100%: accuracy with that share of requests sent to the cheap mode)")
    return out


def pre_embed(rows: list[Row]) -> None:
    """Embed the math word problems once; the shared cache serves every later fold."""
    math = [r.prompt for r in rows if dense_features(r.prompt)[MATH_GATE] >= 0.5]
    started = time.perf_counter()
    embed_texts(math)
    print(f"embedded {len(math)} math prompts with all-MiniLM-L6-v2 in "
          f"{time.perf_counter() - started:.1f} s")


def fit_and_score(train_rows: list[Row], test_rows: list[Row]) -> dict[str, np.ndarray]:
    """Scores of both of our routers (features only; with the embedding head) on test_rows."""
    model = train(train_rows, encode=embed_texts)
    features = DifficultyModel(model.artifact)
    return {
        "tokenomy": np.asarray([features.probability(r.prompt)[0] for r in test_rows]),
        "tokenomy+emb": np.asarray([model.probability(r.prompt)[0] for r in test_rows]),
    }


def routers(test_rows: list[Row], ours: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    length = np.asarray([-len(r.prompt) for r in test_rows], float)
    return {**ours, "length-only": length, "random": length}


def held_out(rows: list[Row], seed: int, quiet: bool) -> dict[str, dict]:
    """Train on a seeded 80% (fold 0 of 5 held out), evaluate on the other 20%."""
    fold = np.asarray(grouped_folds(rows, 5, seed))
    train_rows = [r for r, f in zip(rows, fold, strict=True) if f != 0]
    test_rows = [r for r, f in zip(rows, fold, strict=True) if f == 0]
    ours = fit_and_score(train_rows, test_rows)
    return report(
        f"held-out 20%, seed {seed} ({len(test_rows)} prompts; trained on the other 80%)",
        test_rows,
        routers(test_rows, ours),
        quiet=quiet,
    )


def timing(rows: list[Row]) -> None:
    """Per-prompt scoring cost of both routers on this machine (new prompts, no cache)."""
    model = train(rows, encode=embed_texts)
    features = DifficultyModel(model.artifact)
    sample = [r.prompt for r in rows[:300]]
    math = [p for p in sample if dense_features(p)[MATH_GATE] >= 0.5][:50] or sample[:50]
    started = time.perf_counter()
    for prompt in sample:
        features.score(prompt)
    feature_ms = (time.perf_counter() - started) * 1000 / len(sample)
    fresh = DifficultyModel(model.artifact, encode=EmbeddingCache().embed)  # an empty cache
    started = time.perf_counter()
    for prompt in math:
        fresh.score(prompt)
    head_ms = (time.perf_counter() - started) * 1000 / len(math)
    print(f"scoring cost on this CPU: features {feature_ms:.3f} ms per prompt; "
          f"with the embedding head {head_ms:.1f} ms per new math prompt")


def summary(results: list[dict[str, dict]], title: str) -> None:
    print(f"\n## {title}: mean [min, max]")
    print(f"{'subset/router':<22} {'APGR':>22} {'cheap@95':>26}")
    for key in results[0]:
        apgrs = [r[key]["apgr"] for r in results]
        cheap = [r[key]["cheap@95"] for r in results]
        print(
            f"{key:<22} {np.mean(apgrs):8.3f} [{min(apgrs):.3f}, {max(apgrs):.3f}] "
            f"{np.mean(cheap):10.1%} [{min(cheap):.1%}, {max(cheap):.1%}]"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "routing_labels.dev.jsonl")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=5, help="held-out splits to average")
    parser.add_argument("--cv-seeds", type=int, default=10,
                        help="fold assignments to repeat the cross-validation over")
    parser.add_argument("--train", type=Path, default=None,
                        help="train on this file and evaluate on all of --data instead")
    args = parser.parse_args()
    rows = load(args.data)
    print(f"# routing benchmark: {len(rows)} labelled prompts")
    if args.train:
        train_rows = load(args.train)
        pre_embed(train_rows + rows)
        ours = fit_and_score(train_rows, rows)
        report(f"trained on {args.train.name} ({len(train_rows)}), evaluated on "
               f"{args.data.name} ({len(rows)})", rows, routers(rows, ours))
        return
    pre_embed(rows)
    timing(rows)

    # 1. Held-out splits: the first seed's table in full, then all seeds summarised.
    results = [
        held_out(rows, seed, quiet=seed != args.seed)
        for seed in range(args.seed, args.seed + args.seeds)
    ]
    summary(results, f"held-out 20% over {len(results)} seeds")

    # 2. Cross-validation: every prompt scored by a model trained without it,
    #    repeated over --cv-seeds fold assignments (the first shown in full).
    cv = [cross_validate(rows, args.folds, seed, quiet=seed != args.seed)
          for seed in range(args.seed, args.seed + args.cv_seeds)]
    if len(cv) > 1:
        summary(cv, f"{args.folds}-fold cross-validation over {len(cv)} fold assignments")


def cross_validate(rows: list[Row], k: int, seed: int, quiet: bool) -> dict[str, dict]:
    folds = np.asarray(grouped_folds(rows, k, seed))
    oof = {"tokenomy": np.zeros(len(rows)), "tokenomy+emb": np.zeros(len(rows))}
    for fold in range(k):
        held = np.nonzero(folds == fold)[0]
        scores = fit_and_score([r for r, f in zip(rows, folds, strict=True) if f != fold],
                               [rows[i] for i in held])
        for name, values in scores.items():
            oof[name][held] = values
    return report(
        f"{k}-fold cross-validation, seed {seed} (all {len(rows)} prompts, out-of-fold scores)",
        rows,
        routers(rows, oof),
        quiet=quiet,
    )

if __name__ == "__main__":
    main()
