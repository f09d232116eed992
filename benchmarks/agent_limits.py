"""What bounds agent-loop compression on the traces: the bill's fixed part, and an oracle.

Three figures behind docs/agent.md ("What limits it"), on the runs chosen
(default: the development runs 0-14), priced like agent_replay.py:

- the share of passthrough's bill that is output tokens (no compression of the
  prompt touches it), cache reads and uncached input / cache writes;
- an oracle: every tool output keeps only the lines that hold what the agent
  used in its next three turns (agent_traces.py's reference items; one
  `[... N lines omitted]` marker per gap), so recall is 1.0 by construction:
  the most that compressing tool outputs alone can save;
- the same oracle applied `--defer` assistant turns late (when the agent's next
  steps are known), which rewrites an already-sent output and re-bills the
  prompt after it as uncached / written.

    python benchmarks/agent_limits.py                 # runs 0-14, deferral 0 1 2
    python benchmarks/agent_limits.py --part all --defer 0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_traces import HOLDOUT_FROM, Run, contains, content_text, load_runs, recall_checks
from cache_sim import (
    PROFILES,
    CallCost,
    Renderer,
    deepseek_cached,
    dollars,
    gpt5_cached,
    simulate_run,
)


def oracle_output(text: str, items: set[str]) -> str:
    """`text` with only the lines that hold one of `items` (and wrapper tags) kept."""
    out: list[str] = []
    gap = 0
    for line in text.split("\n"):
        if line.startswith("<") or any(contains(line, item) for item in items):
            if gap:
                out.append(f"[... {gap} lines omitted]")
                gap = 0
            out.append(line)
        else:
            gap += 1
    if gap:
        out.append(f"[... {gap} lines omitted]")
    return "\n".join(out)


def replay(run: Run, renderer: Renderer, defer: int | None) -> tuple[list[CallCost],
                                                                    list[CallCost], list[bool]]:
    """Passthrough's calls and the oracle's (None: no oracle, both passthrough)."""
    used = {ref.message: set().union(*ref.items_by_call.values()) for ref in run.references()}
    short = {i: oracle_output(content_text(m), used.get(i, set()))
             for i, m in enumerate(run.messages) if m.get("role") == "tool"}
    assistant = [i for i, m in enumerate(run.messages) if m.get("role") == "assistant"]
    base, mine, sent = [], [], {}
    for k, call in enumerate(run.calls):
        n = call["request_messages"]
        messages = run.messages[:n]
        out: list[dict[str, Any]] = []
        for i, message in enumerate(messages):
            if defer is not None and message.get("role") == "tool" \
                    and sum(1 for a in assistant if i < a < n) >= defer:
                message = {**message, "content": short[i]}
            out.append(message)
        sent[k] = out
        base.append(renderer.request(messages, run.tools))
        mine.append(renderer.request(out, run.tools))
    outputs = [int(c["completion_tokens"]) for c in run.calls]
    return (simulate_run(renderer, base, outputs), simulate_run(renderer, mine, outputs),
            list(recall_checks(run, sent)))


def bill_split(calls: list[CallCost]) -> list[str]:
    rows = []
    for profile in PROFILES:
        total = dollars(profile, calls)
        output = sum(c.output for c in calls) * profile.output / 1e6
        if profile.cache_write is not None:
            read = sum(c.read for c in calls) * profile.cached / 1e6
        else:
            rounded = deepseek_cached if profile.name == "deepseek" else gpt5_cached
            read = sum(rounded(c.prefix) for c in calls) * profile.cached / 1e6
        rows.append(f"{profile.name}: output {output / total:.1%}, cache reads "
                    f"{read / total:.1%}, uncached or written {1 - (output + read) / total:.1%}")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("dev", "held-out", "all"), default="dev")
    parser.add_argument("--defer", type=int, nargs="+", default=[0, 1, 2],
                        help="assistant turns after which an output takes its oracle form")
    args = parser.parse_args(argv)
    runs = load_runs()
    chosen = [r for i, r in enumerate(runs)
              if args.part == "all" or (args.part == "dev") == (i < HOLDOUT_FROM)]
    renderer = Renderer()
    base = [c for run in chosen for c in replay(run, renderer, None)[0]]
    print(f"{len(chosen)} runs ({args.part}), {len(base)} calls; passthrough's bill:")
    for row in bill_split(base):
        print("  " + row)
    for defer in args.defer:
        mine: list[CallCost] = []
        recall: list[bool] = []
        for run in chosen:
            _, calls, checks = replay(run, renderer, defer)
            mine += calls
            recall += checks
        ratios = "/".join(f"{dollars(p, mine) / dollars(p, base):.3f}" for p in PROFILES)
        tokens = sum(c.prompt for c in mine) / sum(c.prompt for c in base)
        print(f"oracle, {defer} turns late: tokens {tokens:.1%} of passthrough, $ ratio "
              f"{'/'.join(p.name for p in PROFILES)} {ratios}, "
              f"recall {sum(recall) / max(1, len(recall)):.3f}")


if __name__ == "__main__":
    main()
