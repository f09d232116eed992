"""The agent replay's figures in process, in seconds: the fast loop for agent compression work.

`agent_replay.py` runs every system through real processes over HTTP (minutes).
This runs tokenomy's agent compressor (`AgentCompressor`, the code the proxy's
compress stage runs, with an in-process memo) on every call's request of the
traces, exactly as the proxy would see them, and scores what it would send the
same way the replay does: tokens (o200k), the simulated provider caches and
dollars under the three price profiles (`cache_sim.py`), runs costlier than
passthrough, reference recall and the written-file checks (`agent_traces.py`),
and the compressor's own time per call. Dev (runs 0-14) and held-out (runs
15-22) are reported apart: tune on dev, check on held-out.

Also printed: where the saving came from, in cost-weighted tokens (a token
saved in a message is saved in every later call of its run), per technique and
per kind of tool output, and with --missed the reference items recall missed.

    python benchmarks/agent_offline.py                     # all 23 runs
    python benchmarks/agent_offline.py --part dev --missed
    python benchmarks/agent_offline.py --set min_tokens=200 --set seen=false
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_traces import DATA, HOLDOUT_FROM, Run, checks, load_runs
from cache_sim import PROFILES, CallCost, Renderer, dollars, simulate_run
from harness import percentile

from tokenomy.compressors.agent.loop import AgentCompressor
from tokenomy.compressors.memo import Memo
from tokenomy.compressors.settings import AgentSettings
from tokenomy.transcript import OPENAI_CHAT, Transcript

MODEL = "deepseek-chat"  # the traces' upstream model: the compressor counts in its tokens


@dataclass
class RunFigures:
    run: str
    base: list[CallCost]
    mine: list[CallCost]
    recall: list[bool]
    ms: list[float]
    written: list[tuple[str, bool]] = field(default_factory=list)
    text: list[bool] = field(default_factory=list)
    saved: dict[str, float] = field(default_factory=dict)  # technique/kind -> weighted tokens
    missed: list[str] = field(default_factory=list)


def replay(run: Run, settings: AgentSettings, renderer: Renderer) -> RunFigures:
    memo = Memo()
    compressor = AgentCompressor.from_settings(memo, settings)
    base_rendered, mine_rendered, outputs, ms = [], [], [], []
    sent: dict[int, list[dict[str, Any]]] = {}
    for k, call in enumerate(run.calls):
        body = run.request(k)
        transcript = Transcript(copy.copy(body), OPENAI_CHAT.parts)
        started = time.perf_counter()
        changes, _ = compressor.run(transcript.parts, team="default", model=MODEL)
        for part, text in changes:
            transcript.write(part, text)
        ms.append((time.perf_counter() - started) * 1000)
        sent[k] = transcript.body["messages"]
        base_rendered.append(renderer.request(body["messages"], body["tools"]))
        mine_rendered.append(renderer.request(sent[k], body["tools"]))
        outputs.append(int(call["completion_tokens"]))
    found = checks(run, sent)
    figures = RunFigures(run.id, simulate_run(renderer, base_rendered, outputs),
                         simulate_run(renderer, mine_rendered, outputs),
                         found.recall, ms, found.written, found.text)
    figures.saved = saved_by_kind(run, sent, renderer)
    return figures


def saved_by_kind(run: Run, sent: dict[int, list[dict[str, Any]]],
                  renderer: Renderer) -> dict[str, float]:
    """Tokens saved per message kind, each weighted by the calls that carry the message."""
    last = len(run.calls) - 1
    final = sent[last]
    carried = [sum(1 for c in run.calls if c["request_messages"] > i)
               for i in range(len(final))]
    out: dict[str, float] = defaultdict(float)
    for i, (before, after) in enumerate(zip(run.messages, final, strict=False)):
        if before is after:
            continue
        saved = renderer.tokens(renderer.message(before)) - renderer.tokens(
            renderer.message(after))
        kind = "tool outputs" if before.get("role") == "tool" else (
            "assistant turns" if before.get("role") == "assistant" else before.get("role", "?"))
        out[kind] += saved * carried[i]
    return dict(out)


def report(name: str, figures: list[RunFigures], show_missed: bool) -> None:
    if not figures:
        return
    base = [c for f in figures for c in f.base]
    mine = [c for f in figures for c in f.mine]
    recall = [x for f in figures for x in f.recall]
    ms = sorted(x for f in figures for x in f.ms)
    print(f"\n== {name}: {len(figures)} runs, {len(base)} calls ==")
    base_tokens = sum(c.prompt for c in base)
    print(f"tokens sent: {sum(c.prompt for c in mine):,} of {base_tokens:,} "
          f"({sum(c.prompt for c in mine) / base_tokens:.1%})")
    ratios = []
    for profile in PROFILES:
        theirs, ours = dollars(profile, base), dollars(profile, mine)
        costlier = sum(1 for f in figures if dollars(profile, f.mine) > dollars(profile, f.base)
                       + 1e-12)
        ratios.append(f"{profile.name} {ours / theirs:.3f} ({costlier} runs costlier)")
    print("cost vs passthrough: " + "; ".join(ratios))
    hits = sum(recall)
    print(f"reference recall: {hits / max(1, len(recall)):.4f} ({hits}/{len(recall)})")
    written = [x for f in figures for x in f.written]
    print("written files, what the agent reused of them kept: " + "; ".join(
        f"{use}s {sum(ok for u, ok in written if u == use)}/"
        f"{sum(1 for u, _ in written if u == use)}" for use in ("reference", "rewrite")))
    text = [x for f in figures for x in f.text]
    print(f"agent text, what the agent reused of it kept: {sum(text)}/{len(text)}")
    print(f"compressor ms per call: p50 {percentile(ms, 50):.2f} p95 {percentile(ms, 95):.2f} "
          f"max {ms[-1]:.1f}")
    saved: dict[str, float] = defaultdict(float)
    for f in figures:
        for kind, value in f.saved.items():
            saved[kind] += value
    print("cost-weighted tokens saved, share of passthrough's prompt tokens: " + ", ".join(
        f"{kind} {value / base_tokens:.1%}" for kind, value in sorted(saved.items())))
    if show_missed:
        for f in figures:
            for line in f.missed:
                print("  missed: " + line)


def missed_items(run: Run, sent_recall: list[bool]) -> list[str]:
    labels = [(ref.message, k, item) for ref in run.references()
              for k, items in ref.items_by_call.items() for item in sorted(items)]
    out = []
    for ok, (message, k, item) in zip(sent_recall, labels, strict=False):
        if not ok:
            command = (run.tool_command(message) or "")[:70].replace("\n", " ")
            out.append(f"{run.id.rsplit('/', 1)[-1][:28]} msg {message} call {k}: {item!r}  "
                       f"<- {command}")
    return out


def parse_settings(pairs: list[str]) -> AgentSettings:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        values[key] = {"true": True, "false": False}.get(value.lower(), value)
    return AgentSettings.model_validate(values)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("dev", "held-out", "all"), default="all")
    parser.add_argument("--runs", type=int, nargs="*", default=None,
                        help="only these run indexes (0-22)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an [compression.agent] setting, e.g. min_tokens=200")
    parser.add_argument("--missed", action="store_true", help="list missed reference items")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    settings = parse_settings(args.set)
    runs = load_runs(args.data)
    chosen = [i for i in range(len(runs))
              if (args.runs is None or i in args.runs)
              and (args.part == "all" or (args.part == "dev") == (i < HOLDOUT_FROM))]
    renderer = Renderer()
    started = time.perf_counter()
    dev, held = [], []
    for i in chosen:
        figures = replay(runs[i], settings, renderer)
        figures.missed = missed_items(runs[i], figures.recall) if args.missed else []
        (dev if i < HOLDOUT_FROM else held).append(figures)
    print(f"agent compression offline: settings {settings.model_dump()}; "
          f"{time.perf_counter() - started:.0f} s")
    report("dev (runs 0-14)", dev, args.missed)
    report("held-out (runs 15-22)", held, args.missed)
    if dev and held:
        report("all", dev + held, False)


if __name__ == "__main__":
    main()
