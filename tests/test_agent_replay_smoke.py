"""The agent replay benchmark, end to end on one trace run: real proxy, real upstream, real sockets.

Checks the table's invariants, not speed: passthrough is the 100% baseline and
sends the agent's requests unchanged, its recall is complete, the simulated
prefix cache tracks the provider's recorded cached_tokens, and truncation never
sends more than the baseline.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import agent_replay  # noqa: E402
from agent_traces import load_runs  # noqa: E402
from cache_sim import Renderer  # noqa: E402

from tokenomy.tokenizers import count_messages  # noqa: E402


def test_rendered_requests_bill_what_tokenomy_counts() -> None:
    run = load_runs(limit=1)[0]
    renderer = Renderer()
    for k in (0, len(run.calls) // 2, len(run.calls) - 1):
        body = run.request(k)
        rendered = renderer.request(body["messages"], body["tools"])
        assert rendered.prompt_tokens == count_messages(body["messages"], "gpt-4o", body["tools"])
        # A later call of the run starts with the whole message part of an earlier one.
        if k:
            earlier = renderer.request(run.request(0)["messages"], body["tools"])
            assert renderer.is_prefix(earlier, rendered)


def test_one_run_through_passthrough_and_truncate(tmp_path: Path) -> None:
    out = tmp_path / "replay"
    report = agent_replay.main(["--runs", "1", "--systems", "passthrough", "truncate",
                                "--per-run", "--out", str(out)])
    systems = {s["system"]: s for s in report["systems"]}
    passthrough, truncate = systems["passthrough"], systems["truncate"]
    for system in (passthrough, truncate):
        assert system["errors"] == 0 and system["answers_changed"] == 0
        assert system["extra_upstream_calls"] == 0
        assert system["calls"] == report["calls"]
    assert passthrough["pct_of_passthrough"] == 1.0
    assert passthrough["prompt_tokens"] == passthrough["client_prompt_tokens"]
    assert all(ratio == 1.0 for ratio in passthrough["cost_ratio"].values())
    assert passthrough["recall"] == 1.0 and passthrough["recall_checks"] > 0
    assert passthrough["cache_r_vs_recorded"] > 0.9
    assert 0.9 < passthrough["cache_hit"] < 1.0
    assert truncate["prompt_tokens"] <= passthrough["prompt_tokens"]
    assert passthrough["added_ms_p50"] == passthrough["added_ms_p50"]  # measured, not NaN
    written = json.loads(out.with_suffix(".json").read_text())
    assert [s["system"] for s in written["systems"]] == ["passthrough", "truncate"]
    table = out.with_suffix(".txt").read_text()
    assert "passthrough" in table and "100.0%" in table and "per run:" in table
