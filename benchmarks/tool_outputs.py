"""Tool-output compressors on real coding-agent traces: cut, reference recall, speed, cost.

For every tool output in `data/agent_traces.dev.jsonl.gz` (see `agent_traces.py`):
`command` is `Run.tool_command`, `query` is the task (first user message) plus the
assistant message that made the tool call (its text and its tool call). Each output
is compressed once, when it is new, and that form is reused in every later request
(prefix-stable), exactly what the proxy's live zone does. Reported:

- tokens before/after (upstream model's tokenizer), overall and per kind;
- reference recall (`agent_traces.recall_checks`): the identifiers, paths and numbers
  of an output that the agent used in its next three turns, still in the output as
  sent; plus the missed items, for diagnosis;
- time per output (p50/p95/max, all outputs and those at or over the floor);
- the cost effect: the share of all prompt tokens (every call's request, tiktoken
  o200k) removed, and the input cost with provider prefix caching (a cached token at
  a tenth of an uncached one; output tokens are the same on both sides and left out).

Runs 0-14 are the development part, 15-22 a held-out check: both are reported.

Run:  python benchmarks/tool_outputs.py [--min-tokens 100 300] [--seen both] [--missed]
      [--repeats 3]  (time each output as the fastest of 3 runs, on a shared machine)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_traces import HOLDOUT_FROM, Run, content_text, load_runs, message_text, recall_checks

from tokenomy.compressors.agent.zone import command_of
from tokenomy.compressors.tool_outputs import SeenLines, compress_tool_output
from tokenomy.tokenizers import count_messages

MODEL = "deepseek-chat"  # the traces' upstream model: its tokens are what the cut is in
COST_MODEL = "gpt-4o"  # o200k, for the share of prompt tokens
CACHED_PRICE = 0.1  # a cached input token costs a tenth of an uncached one


@dataclass
class Stats:
    before: int = 0
    after: int = 0
    outputs: int = 0
    changed: int = 0
    kinds: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0]))
    ms_all: list[float] = field(default_factory=list)
    ms_big: list[float] = field(default_factory=list)
    checks: int = 0
    hits: int = 0
    missed: list[str] = field(default_factory=list)
    prompt_before: int = 0
    prompt_after: int = 0
    cost_before: float = 0.0
    cost_after: float = 0.0


def tool_call_message(run: Run, tool_index: int) -> dict[str, Any] | None:
    call_id = run.messages[tool_index].get("tool_call_id")
    for message in reversed(run.messages[:tool_index]):
        if any(c.get("id") == call_id for c in message.get("tool_calls") or ()):
            return message
    return None


def readable(message: dict[str, Any]) -> str:
    """A message as the model reads it: its text and its tool calls' commands (decoded,
    not JSON, where a heredoc is one line)."""
    calls = [command_of((c.get("function") or {}).get("name"),
                        (c.get("function") or {}).get("arguments")) or ""
             for c in message.get("tool_calls") or ()]
    return "\n".join([content_text(message), *calls])


def task_of(run: Run) -> str:
    return next(content_text(m) for m in run.messages if m.get("role") == "user")


def compress_run(run: Run, min_tokens: int, stats: Stats, *, use_seen: bool,
                 repeats: int = 1) -> dict[int, str]:
    """Each tool output's compressed form (compressed once, when it is new).

    With `use_seen`, the lines of every earlier message as sent (earlier outputs in
    their compressed form, the agent's own tool calls) are passed as `seen`.
    """
    task = task_of(run)
    compressed: dict[int, str] = {}
    seen = SeenLines() if use_seen else None
    for i, message in enumerate(run.messages):
        if message.get("role") != "tool":
            if seen is not None:
                seen.add(readable(message))
            continue
        caller = tool_call_message(run, i)
        query = task + "\n" + (message_text(caller) if caller else "")
        tool_name = next((str((c.get("function") or {}).get("name"))
                          for c in (caller or {}).get("tool_calls") or ()
                          if c.get("id") == message.get("tool_call_id")), None)
        output = content_text(message)
        ms = float("inf")
        for _ in range(repeats):  # the fastest of several runs: the CPU cost without
            started = time.perf_counter()  # other jobs' interference on a shared machine
            result = compress_tool_output(output, command=run.tool_command(i),
                                          tool_name=tool_name, query=query, model=MODEL,
                                          min_tokens=min_tokens, seen=seen)
            ms = min(ms, (time.perf_counter() - started) * 1000)
        compressed[i] = result.text
        if seen is not None:
            seen.add(result.text)
        stats.outputs += 1
        stats.before += result.tokens_before
        stats.after += result.tokens_after
        stats.changed += result.text != output
        row = stats.kinds[result.kind]
        row[0] += 1
        row[1] += result.text != output
        row[2] += result.tokens_before
        row[3] += result.tokens_after
        stats.ms_all.append(ms)
        if result.tokens_before >= min_tokens:
            stats.ms_big.append(ms)
    return compressed


def sent_requests(run: Run, compressed: dict[int, str]) -> dict[int, list[dict[str, Any]]]:
    sent: dict[int, list[dict[str, Any]]] = {}
    for k in range(len(run.calls)):
        messages = run.request(k)["messages"]
        sent[k] = [dict(m, content=compressed[i]) if i in compressed else m
                   for i, m in enumerate(messages)]
    return sent


def recall(run: Run, sent: dict[int, list[dict[str, Any]]], stats: Stats) -> None:
    checks = list(recall_checks(run, sent))
    # The same (output, call, item) order recall_checks walks, to name the misses.
    labels = [(ref.message, k, item) for ref in run.references()
              for k, items in ref.items_by_call.items() if k in sent for item in sorted(items)]
    assert len(labels) == len(checks)
    stats.checks += len(checks)
    stats.hits += sum(checks)
    for ok, (message, k, item) in zip(checks, labels, strict=True):
        if not ok:
            command = (run.tool_command(message) or "")[:70].replace("\n", " ")
            stats.missed.append(f"{run.id[:28]} msg {message} call {k}: {item!r}  <- {command}")


def prompt_cost(run: Run, compressed: dict[int, str], stats: Stats) -> None:
    """Prompt tokens (o200k) of every call, as sent, and their cost with prefix caching."""
    def per_message(messages: list[dict[str, Any]]) -> list[int]:
        return [count_messages([m], COST_MODEL) - 3 for m in messages]  # less the reply primer

    original = per_message(run.messages)
    changed = [count_messages([dict(m, content=compressed[i])], COST_MODEL) - 3
               if i in compressed else original[i] for i, m in enumerate(run.messages)]
    fixed = count_messages([], COST_MODEL, run.tools)  # tools + reply primer
    for counts, before in ((original, True), (changed, False)):
        previous = 0
        for call in run.calls:
            n = call["request_messages"]
            total = fixed + sum(counts[:n])
            # The previous request is a prefix of this one: cached, except its reply primer.
            cached = min(previous, total)
            cost = cached * CACHED_PRICE + (total - cached)
            if before:
                stats.prompt_before += total
                stats.cost_before += cost
            else:
                stats.prompt_after += total
                stats.cost_after += cost
            previous = total - 3


def pct(a: float, b: float) -> str:
    return f"{100 * (1 - a / b):.1f}%" if b else "-"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def report(name: str, stats: Stats, min_tokens: int, show_missed: bool) -> None:
    r = stats.hits / stats.checks if stats.checks else 1.0
    print(f"\n== {name}: min_tokens={min_tokens} ==")
    print(f"tool outputs: {stats.outputs} ({stats.changed} changed); tokens {stats.before} -> "
          f"{stats.after} ({pct(stats.after, stats.before)} cut)")
    print(f"reference recall: {r:.4f} ({stats.hits}/{stats.checks}; "
          f"{stats.checks - stats.hits} missed)")
    print(f"prompt tokens over all calls (o200k): {stats.prompt_before} -> {stats.prompt_after} "
          f"({pct(stats.prompt_after, stats.prompt_before)} removed)")
    print(f"input cost with prefix caching: {stats.cost_after / stats.cost_before:.3f} of "
          f"passthrough ({pct(stats.cost_after, stats.cost_before)} saved)")
    print(f"ms per output: all p50 {percentile(stats.ms_all, .5):.2f} p95 "
          f"{percentile(stats.ms_all, .95):.2f} max {max(stats.ms_all):.2f}; at/over floor p50 "
          f"{percentile(stats.ms_big, .5):.2f} p95 {percentile(stats.ms_big, .95):.2f} max "
          f"{max(stats.ms_big or [0]):.2f}")
    print(f"{'kind':<8} {'outputs':>7} {'changed':>7} {'before':>8} {'after':>8} {'cut':>6}")
    for kind, (count, changed, before, after) in sorted(stats.kinds.items()):
        print(f"{kind:<8} {count:>7} {changed:>7} {before:>8} {after:>8} {pct(after, before):>6}")
    if show_missed and stats.missed:
        print("missed reference items:")
        for line in stats.missed:
            print("  " + line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--min-tokens", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--missed", action="store_true", help="list the missed reference items")
    parser.add_argument("--runs", type=int, default=None, help="only the first N runs")
    parser.add_argument("--seen", choices=("off", "on", "both"), default="both",
                        help="pass the conversation's earlier lines as `seen`")
    parser.add_argument("--repeats", type=int, default=1,
                        help="time each output as the fastest of N runs")
    args = parser.parse_args()
    runs = load_runs(limit=args.runs)
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.seen]
    for use_seen in modes:
        for min_tokens in args.min_tokens:
            parts = {"dev (runs 0-14)": Stats(), "held-out (runs 15-22)": Stats(),
                     "all": Stats()}
            for index, run in enumerate(runs):
                part = "dev (runs 0-14)" if index < HOLDOUT_FROM else "held-out (runs 15-22)"
                local = Stats()
                compressed = compress_run(run, min_tokens, local, use_seen=use_seen,
                                          repeats=args.repeats)
                recall(run, sent_requests(run, compressed), local)
                prompt_cost(run, compressed, local)
                for target in (parts[part], parts["all"]):
                    merge(target, local)
            for name, stats in parts.items():
                report(f"{name}, seen={'on' if use_seen else 'off'}", stats, min_tokens,
                       args.missed and name != "all")


def merge(target: Stats, local: Stats) -> None:
    for name in ("before", "after", "outputs", "changed", "checks", "hits", "prompt_before",
                 "prompt_after", "cost_before", "cost_after"):
        setattr(target, name, getattr(target, name) + getattr(local, name))
    for kind, row in local.kinds.items():
        target.kinds[kind] = [a + b for a, b in zip(target.kinds[kind], row, strict=True)]
    target.ms_all += local.ms_all
    target.ms_big += local.ms_big
    target.missed += local.missed


if __name__ == "__main__":
    main()
