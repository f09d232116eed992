"""Agent-loop compression on real coding-agent traces: live zone only, stable forever after.

The traces (data/agent_traces.dev.jsonl.gz) are replayed call by call, the way a
proxy receives them: each request repeats the whole history as the agent holds
it, uncompressed. What leaves the proxy must be prefix-stable (every request
starts with exactly what the previous one sent), keep what the agent used next,
and be smaller.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tokenomy.call import Call, Result
from tokenomy.compressors.memo import Memo
from tokenomy.compressors.stage import CompressStage
from tokenomy.config import Settings
from tokenomy.pipeline import Pipeline
from tokenomy.testing.processes import Server, echo_config, run_proxy, start_proxy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from agent_traces import load_runs, recall_checks, written_checks

PG = "postgresql://postgres@127.0.0.1:5432/test"


class Recorder:
    def __init__(self) -> None:
        self.sent: list[list[dict[str, Any]]] = []

    async def __call__(self, call: Call) -> Result:
        self.sent.append(call.body["messages"])
        return Result(response={})


async def _replay(run: Any, stage: CompressStage) -> tuple[Recorder, list[Call]]:
    recorder = Recorder()
    pipeline = Pipeline([stage], recorder)
    calls = []
    for k in range(len(run.calls)):
        call = Call(body=run.request(k))
        await pipeline.run(call)
        calls.append(call)
    return recorder, calls


def _stable(sent: list[list[dict[str, Any]]]) -> int:
    """How many requests did not start with exactly what the previous one sent."""
    return sum(1 for k in range(1, len(sent)) if sent[k][:len(sent[k - 1])] != sent[k - 1])


@pytest.fixture(scope="module")
def runs() -> list[Any]:
    return load_runs(limit=4)


async def test_replayed_trace_is_prefix_stable_smaller_and_keeps_what_the_agent_used(
        runs: list[Any]) -> None:
    stage = CompressStage(Settings(), memo=Memo())
    checks: list[bool] = []
    original = sent_total = 0
    for run in runs:
        recorder, calls = await _replay(run, stage)
        assert _stable(recorder.sent) == 0
        sent = dict(enumerate(recorder.sent))
        checks += list(recall_checks(run, sent))
        original += sum(c.prompt_tokens_original for c in calls)
        sent_total += sum(c.prompt_tokens_sent for c in calls)
        # Never a message that grew, never the system prompt or the task.
        for call, messages in zip(calls, recorder.sent, strict=True):
            for before, after in zip(call.messages, messages, strict=True):
                assert len(str(after.get("content") or "")) <= len(str(before.get("content")
                                                                        or "")) + 64
            assert messages[:2] == run.messages[:2]
    assert sent_total < original * 0.97
    assert sum(checks) / len(checks) >= 0.98


async def test_only_the_live_zone_is_compressed_and_elisions_say_how_to_recover(
        runs: list[Any]) -> None:
    run = runs[0]
    stage = CompressStage(Settings(), memo=Memo())
    recorder, _ = await _replay(run, stage)
    changed_at: dict[str, int] = {}  # tool_call_id -> first call where it was changed
    for k, messages in enumerate(recorder.sent):
        newest = run.calls[k - 1]["request_messages"] if k else 0
        for index, (orig, sent) in enumerate(zip(run.request(k)["messages"], messages,
                                                 strict=True)):
            if orig == sent:
                continue
            key = orig.get("tool_call_id") or f"assistant-{index}"
            # A part changes first in the request where it is new, never later.
            if key not in changed_at:
                assert index >= newest - 1, (k, index)
                changed_at[key] = k
    assert changed_at, "nothing was compressed"
    markers = [m["content"] for messages in recorder.sent[-1:] for m in messages
               if m.get("role") == "tool" and "omitted" in str(m.get("content"))]
    assert markers and any("sed -n" in text or "cat " in text for text in markers)


async def test_a_team_can_turn_it_off_and_cache_marked_parts_are_never_touched(
        runs: list[Any]) -> None:
    run = runs[0]
    off = Settings(teams={"quiet": {"compression": {"agent": {"enabled": False}}}})
    stage = CompressStage(off, memo=Memo())
    recorder = Recorder()
    pipeline = Pipeline([stage], recorder)
    for k in range(len(run.calls)):
        call = Call(body=run.request(k))
        call.identity.team = "quiet"
        await pipeline.run(call)
        assert recorder.sent[-1] == run.request(k)["messages"]
    # A tool result the client marked for caching stays byte-identical.
    last = run.request(len(run.calls) - 1)
    marked = [dict(m) for m in last["messages"]]
    for message in marked:
        if message.get("role") == "tool":
            message["content"] = [{"type": "text", "text": message["content"],
                                   "cache_control": {"type": "ephemeral"}}]
    recorder = Recorder()
    await Pipeline([CompressStage(Settings(), memo=Memo())], recorder).run(
        Call(body={**last, "messages": marked}))
    sent = recorder.sent[-1]
    live = max(i for i, m in enumerate(marked) if m.get("role") == "assistant")
    # Only the live assistant turn's text may change (its step announcement goes).
    assert [m for i, m in enumerate(sent) if i != live] == \
        [m for i, m in enumerate(marked) if i != live]
    assert sent[live]["tool_calls"] == marked[live]["tool_calls"]


async def test_a_team_can_keep_the_files_its_agent_writes(runs: list[Any]) -> None:
    # `written = "repeats"`: what the agent reuses of a file it wrote stays in its turn;
    # the default outline gives some of it up (benchmarks: about half) for the saving.
    run = runs[0]
    settings = Settings(teams={"keeps": {"compression": {"agent": {"written": "repeats"}}}})
    kept: dict[str, list[bool]] = {}
    for team in ("default", "keeps"):
        stage = CompressStage(settings, memo=Memo())
        recorder = Recorder()
        pipeline = Pipeline([stage], recorder)
        for k in range(len(run.calls)):
            call = Call(body=run.request(k))
            call.identity.team = team
            await pipeline.run(call)
        assert _stable(recorder.sent) == 0
        sent = dict(enumerate(recorder.sent))
        kept[team] = [ok for _, ok in written_checks(run, sent)]
    assert kept["keeps"] and all(kept["keeps"])
    assert len(kept["default"]) == len(kept["keeps"]) and not all(kept["default"])


def _replay_through(proxies: list[Server], upstream: Server, run: Any,
                    restart: Any) -> list[list[dict[str, Any]]]:
    sent = []
    for k in range(len(run.calls)):
        if k == len(run.calls) // 2:
            restart()
        proxy = proxies[k % len(proxies)]
        reply = httpx.post(proxy.v1 + "/chat/completions",
                           json={**run.request(k), "model": "echo"}, timeout=60)
        assert reply.status_code == 200, reply.text
        sent.append(httpx.get(upstream.url + "/_last").json()["messages"])
    return sent


@pytest.mark.postgres
def test_two_replicas_and_a_restart_send_identical_prefixes(
        upstream: Server, tmp_path: Path, runs: list[Any]) -> None:
    # Two proxies share one PostgreSQL ledger (and so the memo); calls alternate between
    # them and one restarts half way: the upstream still sees one stable conversation.
    schema = "tk_agent_" + uuid.uuid4().hex[:8]
    config = echo_config(upstream.v1, ledger={"url": f"{PG}?schema={schema}"})
    run = runs[1]
    first = start_proxy(config, folder=tmp_path / "a")
    second = start_proxy(config, folder=tmp_path / "b")
    proxies = [first, second]

    def restart() -> None:
        proxies[1].process.terminate()
        proxies[1].process.wait(10)
        proxies[1] = start_proxy(config, folder=tmp_path / "b2")

    try:
        sent = _replay_through(proxies, upstream, run, restart)
    finally:
        for proxy in proxies:
            proxy.process.terminate()
            proxy.process.wait(10)
    assert _stable(sent) == 0
    assert sent[-1] != run.request(len(run.calls) - 1)["messages"]  # it did compress
    # ... and the same as one proxy alone would have sent.
    with run_proxy(echo_config(upstream.v1, ledger={"enabled": False}),
                   folder=tmp_path / "single") as single:
        alone = _replay_through([single], upstream, run, lambda: None)
    assert alone == sent


async def test_a_memo_that_cannot_record_means_no_compression_not_a_cache_break(
        runs: list[Any], tmp_path: Path) -> None:
    # Replicas find a compressed form again only through the database. When it cannot
    # be recorded, the part goes as the client sent it, so every replica agrees.
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{tmp_path / 'memo.db'}")
    memo = Memo(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE tk_compress_memo"))
    run = runs[0]
    recorder, _ = await _replay(run, CompressStage(Settings(), memo=memo))
    assert _stable(recorder.sent) == 0
    for k, messages in enumerate(recorder.sent):
        assert messages == run.request(k)["messages"]
