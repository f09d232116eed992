"""The agent replay's figures: per-system and per-run summaries, and the printed table.

Inputs are what `agent_replay.py` measured per call (the simulated cache per
call from `cache_sim.py`, recall checks, added latency); outputs are plain
dicts (written as JSON) and the text table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cache_sim import PROFILES, CallCost, deepseek_cached, dollars, pearson
from harness import percentile


@dataclass
class RunResult:
    run: str
    calls: list[CallCost] = field(default_factory=list)
    recorded_cached: list[int] = field(default_factory=list)  # the provider's, per call
    recorded_prompt: list[int] = field(default_factory=list)
    original_tokens: int = 0  # what the client sent, in the same count
    recall: list[bool] = field(default_factory=list)
    written: list[bool] = field(default_factory=list)  # agent_traces.written_checks, kept?
    text: list[bool] = field(default_factory=list)  # agent_traces.text_checks, kept?
    added_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    answers_changed: int = 0  # answers the client got back that differ from the recording
    extra_upstream_calls: int = 0  # upstream requests beyond one per client call


@dataclass
class SystemResult:
    name: str
    runs: list[RunResult] = field(default_factory=list)
    unavailable: str | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def summarize(result: SystemResult, base: SystemResult | None) -> dict[str, Any]:
    if result.unavailable:
        return {"system": result.name, "unavailable": result.unavailable}
    calls = [c for r in result.runs for c in r.calls]
    prompt = sum(c.prompt for c in calls)
    cached = sum(deepseek_cached(c.prefix) for c in calls)
    recall = [x for r in result.runs for x in r.recall]
    written = [x for r in result.runs for x in r.written]
    text = [x for r in result.runs for x in r.text]
    added = [x for r in result.runs for x in r.added_ms]
    original = sum(r.original_tokens for r in result.runs)
    out: dict[str, Any] = {
        "system": result.name, "runs": len(result.runs), "calls": len(calls),
        "errors": sum(len(r.errors) for r in result.runs),
        "answers_changed": sum(r.answers_changed for r in result.runs),
        "extra_upstream_calls": sum(r.extra_upstream_calls for r in result.runs),
        "prompt_tokens": prompt, "client_prompt_tokens": original,
        "cache_hit": cached / prompt if prompt else float("nan"),
        "recall": sum(recall) / len(recall) if recall else float("nan"),
        "recall_checks": len(recall),
        "written": sum(written) / len(written) if written else float("nan"),
        "written_checks": len(written),
        "text": sum(text) / len(text) if text else float("nan"),
        "text_checks": len(text),
        "added_ms_p50": percentile(sorted(added), 50),
        "added_ms_p95": percentile(sorted(added), 95),
        "seconds": round(result.seconds, 1), "notes": result.notes,
        "dollars": {p.name: sum(dollars(p, r.calls) for r in result.runs) for p in PROFILES},
        "recorded_cache_hit": sum(x for r in result.runs for x in r.recorded_cached)
        / max(1, sum(x for r in result.runs for x in r.recorded_prompt)),
        "cache_r_vs_recorded": pearson(
            [float(deepseek_cached(c.prefix)) for r in result.runs for c in r.calls],
            [float(x) for r in result.runs for x in r.recorded_cached]),
    }
    if base is not None and not base.unavailable:
        base_runs = {r.run: r for r in base.runs}
        base_prompt = sum(c.prompt for r in base.runs for c in r.calls)
        out["pct_of_passthrough"] = prompt / base_prompt if base_prompt else float("nan")
        out["cost_ratio"], out["runs_costlier"] = {}, {}
        for profile in PROFILES:
            mine = out["dollars"][profile.name]
            theirs = sum(dollars(profile, r.calls) for r in base.runs)
            out["cost_ratio"][profile.name] = mine / theirs if theirs else float("nan")
            out["runs_costlier"][profile.name] = sum(
                1 for r in result.runs if r.run in base_runs
                and dollars(profile, r.calls) > dollars(profile, base_runs[r.run].calls))
    return out


def split_rows(results: list[SystemResult], base: SystemResult | None,
               parts: dict[str, set[str]]) -> list[dict[str, Any]]:
    """Per system and part of the data (dev / held-out runs): cost ratios and recall."""
    rows = []
    for result in results:
        if result.unavailable:
            continue
        for part, runs in parts.items():
            mine = SystemResult(result.name, [r for r in result.runs if r.run in runs])
            theirs = SystemResult(base.name, [r for r in base.runs if r.run in runs]) \
                if base is not None and not base.unavailable else None
            summary = summarize(mine, theirs)
            rows.append({"system": result.name, "part": part, "runs": summary["runs"],
                         "recall": summary["recall"], "recall_checks": summary["recall_checks"],
                         "written": summary["written"],
                         "written_checks": summary["written_checks"],
                         "text": summary["text"], "text_checks": summary["text_checks"],
                         "pct_of_passthrough": summary.get("pct_of_passthrough"),
                         "cost_ratio": summary.get("cost_ratio"),
                         "runs_costlier": summary.get("runs_costlier")})
    return rows


def render_split(rows: list[dict[str, Any]]) -> str:
    profiles = "/".join(p.name for p in PROFILES)
    headers = ["system", "part", "runs", "% pass", f"$ ratio {profiles}", "runs costlier",
               "recall", "written kept", "text kept"]
    table = [[r["system"], r["part"], str(r["runs"]),
              _share(r["pct_of_passthrough"] if r["pct_of_passthrough"] is not None
                     else float("nan")),
              "/".join(_f(r["cost_ratio"][p.name], ".3f") for p in PROFILES)
              if r["cost_ratio"] else "n/a",
              "/".join(str(r["runs_costlier"][p.name]) for p in PROFILES)
              if r["runs_costlier"] else "n/a",
              f"{_share(r['recall'])} of {r['recall_checks']}",
              f"{_share(r['written'])} of {r['written_checks']}",
              f"{_share(r['text'])} of {r['text_checks']}"] for r in rows]
    widths = [max(len(h), *(len(x[i]) for x in table)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)) for x in table]
    return "\n".join(line.rstrip() for line in lines)


def per_run_rows(result: SystemResult, base: SystemResult | None) -> list[dict[str, Any]]:
    base_runs = {r.run: r for r in base.runs} if base and not base.unavailable else {}
    rows = []
    for r in result.runs:
        prompt = sum(c.prompt for c in r.calls)
        row: dict[str, Any] = {
            "system": result.name, "run": r.run.rsplit("/", 1)[-1], "calls": len(r.calls),
            "prompt_tokens": prompt,
            "cache_hit": sum(deepseek_cached(c.prefix) for c in r.calls) / prompt if prompt else 0,
            "recall": sum(r.recall) / len(r.recall) if r.recall else float("nan"),
            "errors": len(r.errors)}
        other = base_runs.get(r.run)
        if other is not None:
            row["pct_of_passthrough"] = prompt / max(1, sum(c.prompt for c in other.calls))
            row["cost_ratio"] = {p.name: dollars(p, r.calls) / dollars(p, other.calls)
                                 for p in PROFILES}
        rows.append(row)
    return rows


def _f(value: float, spec: str) -> str:
    return "n/a" if value != value else format(value, spec)


def _share(value: float) -> str:
    return "n/a" if value != value else f"{value * 100:.1f}%"


def render(summaries: list[dict[str, Any]], per_run: list[dict[str, Any]] | None,
           header: str) -> str:
    profiles = "/".join(p.name for p in PROFILES)
    headers = ["system", "tokens sent", "% pass", "cache hit", f"$ ratio {profiles}",
               "runs costlier", "recall", "written kept", "text kept", "added p50 ms",
               "added p95 ms", "errors"]
    rows = []
    for s in summaries:
        if "unavailable" in s:
            rows.append([s["system"], f"unavailable: {s['unavailable'][:70]}"] + [""] * 10)
            continue
        ratio = s.get("cost_ratio")
        rows.append([
            s["system"], f"{s['prompt_tokens']:,}",
            _share(s.get("pct_of_passthrough", float("nan"))),
            _share(s["cache_hit"]),
            "/".join(_f(ratio[p.name], ".2f") for p in PROFILES) if ratio else "n/a",
            "/".join(str(s["runs_costlier"][p.name]) for p in PROFILES) + f" of {s['runs']}"
            if ratio else "n/a",
            _share(s["recall"]), _share(s["written"]), _share(s["text"]),
            _f(s["added_ms_p50"], ".1f"), _f(s["added_ms_p95"], ".1f"),
            str(s["errors"] + s["answers_changed"])])
    measured = [r for r in rows if not r[1].startswith("unavailable")] or [headers]
    widths = [max(len(h), *(len(r[i]) for r in measured)) for i, h in enumerate(headers)]
    lines = [header, "",
             "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                       for i, (h, w) in enumerate(zip(headers, widths, strict=True))),
             "  ".join("-" * w for w in widths)]
    for row in rows:
        if row[1].startswith("unavailable"):
            lines.append(f"{row[0].ljust(widths[0])}  {row[1]}")
            continue
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    for s in summaries:
        if s["system"] == "passthrough" and "unavailable" not in s:
            lines.append("")
            lines.append(f"cache model check (passthrough): Pearson r per call, simulated vs "
                         f"recorded cached_tokens = {s['cache_r_vs_recorded']:.4f} over "
                         f"{s['calls']} calls; simulated hit rate {s['cache_hit']:.1%}, the "
                         f"provider reported {s['recorded_cache_hit']:.1%} of its own prompt "
                         f"tokens cached; passthrough sent {s['prompt_tokens']:,} tokens (the "
                         f"client sent {s['client_prompt_tokens']:,})")
    for s in summaries:
        if "unavailable" in s:
            continue
        flags = []
        if s["answers_changed"]:
            flags.append(f"{s['answers_changed']} answers reached the client changed")
        if s["extra_upstream_calls"]:
            flags.append(f"{s['extra_upstream_calls']} extra upstream requests")
        if s["errors"]:
            flags.append(f"{s['errors']} failed calls")
        note = "; ".join(s["notes"] + flags)
        lines.append(f"{s['system']}: {s['calls']} calls in {s['seconds']:.0f} s"
                     + (f"; {note}" if note else ""))
    if per_run:
        lines += ["", "per run:"]
        run_headers = ["system", "run", "calls", "tokens", "% pass", "cache hit",
                       f"$ ratio {profiles}", "recall"]
        run_rows = [[r["system"], r["run"], str(r["calls"]), f"{r['prompt_tokens']:,}",
                     _share(r.get("pct_of_passthrough", float("nan"))),
                     _share(r["cache_hit"]),
                     "/".join(_f(r["cost_ratio"][p.name], ".2f") for p in PROFILES)
                     if "cost_ratio" in r else "n/a",
                     _share(r["recall"])] for r in per_run]
        w = [max(len(h), *(len(x[i]) for x in run_rows)) for i, h in enumerate(run_headers)]
        lines.append("  ".join(h.ljust(n) for h, n in zip(run_headers, w, strict=True)))
        lines += ["  ".join(c.ljust(n) for c, n in zip(x, w, strict=True)) for x in run_rows]
    return "\n".join(lines)
