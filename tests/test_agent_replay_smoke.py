"""The agent replay benchmark, end to end on one trace run: real proxy, real upstream, real sockets.

Checks the table's invariants, not speed: passthrough is the 100% baseline and
sends the agent's requests unchanged, its recall is complete, the simulated
prefix cache tracks the provider's recorded cached_tokens, and truncation never
sends more than the baseline. Also what the written-file checks count.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import agent_replay  # noqa: E402
from agent_traces import Run, load_runs, text_checks, written_checks  # noqa: E402
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
    assert passthrough["written"] == 1.0 and passthrough["written_checks"] > 0
    assert passthrough["text_checks"] == 0 or passthrough["text"] == 1.0
    assert passthrough["cache_r_vs_recorded"] > 0.9
    assert 0.9 < passthrough["cache_hit"] < 1.0
    assert truncate["prompt_tokens"] <= passthrough["prompt_tokens"]
    assert passthrough["added_ms_p50"] == passthrough["added_ms_p50"]  # measured, not NaN
    written = json.loads(out.with_suffix(".json").read_text())
    assert [s["system"] for s in written["systems"]] == ["passthrough", "truncate"]
    table = out.with_suffix(".txt").read_text()
    assert "passthrough" in table and "100.0%" in table and "per run:" in table


def _bash(call_id: str, command: str) -> dict[str, object]:
    return {"id": call_id, "type": "function",
            "function": {"name": "bash", "arguments": json.dumps({"command": command})}}


def test_written_checks_count_what_the_agent_reuses_of_its_own_file() -> None:
    script = ("cat > check_it.py << 'EOF'\nimport lib\nresult_value = lib.compute(0.125)\n"
              "print(result_value)\nEOF\npython check_it.py")
    messages = [
        {"role": "system", "content": "agent"},
        {"role": "user", "content": "Fix lib.compute."},
        {"role": "assistant", "content": "A script.", "tool_calls": [_bash("c1", script)]},
        {"role": "tool", "tool_call_id": "c1", "content": "14"},
        # Refers to a name of its file (`result_value`) in a command outside any file it
        # writes; `lib.compute` it had from the task, so that is no check.
        {"role": "assistant", "content": "Edit it.", "tool_calls": [
            _bash("c2", "sed -i 's/result_value/answer/' check_it.py")]},
        {"role": "tool", "tool_call_id": "c2", "content": ""},
        # Rewrites the script from the old one: reuses its number.
        {"role": "assistant", "content": "Again.", "tool_calls": [
            _bash("c3", "cat > check_it.py << 'EOF'\nanswer = lib.compute(0.125)\nEOF")]},
    ]
    run = Run("synthetic", "x", tools=[], messages=messages,
              calls=[{"request_messages": n} for n in (2, 4, 6)])
    as_sent = {k: messages[:run.calls[k]["request_messages"]] for k in range(3)}
    assert list(written_checks(run, as_sent)) == [("reference", True), ("rewrite", True)]
    # The turn as a compressor sent it at the next calls, without its body: not kept.
    outlined = dict(messages[2], tool_calls=[_bash("c1", "cat > check_it.py << 'EOF'\n"
                                                       "[... 3 lines omitted]\nEOF")])
    as_sent[1] = [*messages[:2], outlined, messages[3]]
    as_sent[2] = [*as_sent[1], *messages[4:6]]
    assert list(written_checks(run, as_sent)) == [("reference", False), ("rewrite", False)]


def test_text_checks_count_what_the_agent_reuses_of_its_own_words() -> None:
    messages = [
        {"role": "system", "content": "agent"},
        {"role": "user", "content": "Fix lib.compute."},
        # The text brings in a name (`retry_budget`) the agent uses in its next turn;
        # `lib.compute` it had from the task, so that is no check.
        {"role": "assistant", "content": "I will call it `retry_budget` in lib.compute.",
         "tool_calls": [_bash("c1", "grep -n compute lib.py")]},
        {"role": "tool", "tool_call_id": "c1", "content": "3:def compute(x):"},
        {"role": "assistant", "content": "Add it.", "tool_calls": [
            _bash("c2", "sed -i 's/x)/x, retry_budget=3)/' lib.py")]},
    ]
    run = Run("synthetic", "x", tools=[], messages=messages,
              calls=[{"request_messages": n} for n in (2, 4)])
    as_sent = {k: messages[:run.calls[k]["request_messages"]] for k in range(2)}
    assert list(text_checks(run, as_sent)) == [True]
    as_sent[1] = [*messages[:2], dict(messages[2], content="I will name it."), messages[3]]
    assert list(text_checks(run, as_sent)) == [False]
