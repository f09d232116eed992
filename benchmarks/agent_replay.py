"""Replay real coding-agent traces through tokenomy and its peers, side by side, in one run.

Every system replays the same runs (data/agent_traces.dev.jsonl.gz, 23 runs,
1,843 calls), call by call, against the same recording loopback upstream
(benchmarks/replay_upstream.py). Before each call the harness scripts the
upstream with the assistant message the trace recorded, so the answers never
depend on what a system sent; the upstream records exactly the body it
received, and every figure is computed on those bodies:

- tokens sent: prompt tokens the upstream received (o200k_base via
  tokenomy.tokenizers, OpenAI's per-message rule), and % of passthrough;
- cache hit: a simulated DeepSeek prefix cache (common prefix with the previous
  call of the run, 64-token blocks; benchmarks/cache_sim.py), validated on
  passthrough against the provider's recorded cached_tokens (Pearson r per call);
- $ ratio to passthrough under three price profiles (deepseek-chat, an
  Anthropic-style explicit cache with a breakpoint at the end of every request,
  GPT-5-style automatic caching from 1,024 tokens in 128-token steps), output
  tokens = the recorded completions, and how many runs cost more than passthrough;
- recall: benchmarks/agent_traces.py's reference recall on what was sent;
- written kept: its written-file checks (what the agent reused, in its next three
  turns, of a file it wrote with a heredoc: still in its turn as sent?);
- text kept: its text checks (names, paths and numbers the agent's own text brought
  in and the agent used in its next three turns: still in its turn as sent?);
- added ms: per call, the client-observed latency through the system minus
  that of the same request sent straight to the upstream (sent right before or
  after it, alternating), p50 and p95, on this CPU.

Systems (benchmarks/replay_systems.py): passthrough (tokenomy serve, compression
and codify off: it forwards the requests unchanged), truncate (tool outputs over
1,000 tokens cut head/tail, client-side), recompress6 (last 6 tool outputs cut
to 25%, older ones full: cache-hostile on purpose), tokenomy (tokenomy serve
with --tokenomy-config, default `compression.enabled: true`; no session header
is sent), headroom (Headroom's proxy in .venv-headroom, one session header per
conversation).

    python benchmarks/agent_replay.py                       # all systems, all 23 runs
    python benchmarks/agent_replay.py --runs 2 --systems passthrough truncate --per-run
    python benchmarks/agent_replay.py --systems tokenomy --tokenomy-config agent.yaml

Writes benchmarks/results/agent_replay.json and .txt (the printed table);
--out changes the stem.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_traces import DATA, HOLDOUT_FROM, Run, checks, load_runs
from cache_sim import PROFILES, Renderer, simulate_run
from replay_protocols import PROTOCOLS, WireProtocol
from replay_report import (
    RunResult,
    SystemResult,
    per_run_rows,
    render,
    render_split,
    split_rows,
    summarize,
)
from replay_systems import SYSTEMS, Context, Target, Unavailable

from tokenomy.testing.processes import _stop, free_port, wait_http

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
MODEL = "deepseek-chat"


class Upstream:
    """The recording upstream in its own process, and the harness's side of its protocol."""

    def __init__(self, stack: ExitStack, client: httpx.Client):
        port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "replay_upstream.py"), "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        stack.callback(_stop, self.process)
        self.url = f"http://127.0.0.1:{port}"
        wait_http(self.url + "/healthz", self.process)
        self.client = client

    def script(self, message: dict[str, Any], completion_tokens: int) -> None:
        self.client.post(self.url + "/_script", content=orjson.dumps(
            {"message": message, "completion_tokens": completion_tokens})).raise_for_status()

    def last(self) -> tuple[dict[str, Any] | None, int]:
        response = self.client.get(self.url + "/_last")
        return orjson.loads(response.content), int(response.headers["x-received-count"])


def _same_answer(got: dict[str, Any], want: dict[str, Any]) -> bool:
    """The client got the recorded message: same text, same tool calls (arguments as JSON)."""
    def calls(message: dict[str, Any]) -> list[tuple[str, Any]]:
        out = []
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            try:
                arguments = json.loads(function.get("arguments") or "")
            except ValueError:
                arguments = function.get("arguments")
            out.append((function.get("name") or "", arguments))
        return out

    return (got.get("content") or None) == (want.get("content") or None) and calls(got) == calls(
        want)


def _direct(client: httpx.Client, url: str, raw: bytes, headers: dict[str, str]) -> float:
    """Seconds for the request straight to the upstream (not recorded there)."""
    started = time.perf_counter()
    response = client.post(url, content=raw, headers=headers)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed


def _via(client: httpx.Client, target: Target, protocol: WireProtocol, chat: dict[str, Any],
         raw: bytes, headers: dict[str, str], stream: bool) -> tuple[float, httpx.Response]:
    """Seconds for the request through the system, a client-side rewrite included.

    A client-side system rewrites the chat form, then it goes out in the protocol.
    """
    started = time.perf_counter()
    payload = raw
    if target.transform:
        payload = orjson.dumps(protocol.from_chat(target.transform(chat), stream=stream))
    response = client.post(target.url, content=payload, headers=headers)
    return time.perf_counter() - started, response


def replay_run(run: Run, target: Target, upstream: Upstream, protocol: WireProtocol,
               renderer: Renderer, client: httpx.Client, stream: bool) -> RunResult:
    result = RunResult(run.id)
    rendered, sent, outputs, recorded, recorded_prompt = [], {}, [], [], []
    headers = target.headers(run)
    direct_headers = {**headers, "x-replay-direct": "1"}
    for k, call in enumerate(run.calls):
        chat = run.request(k)
        body = protocol.from_chat(chat, stream=stream)
        original = renderer.request(*protocol.to_chat(body))
        upstream.script(run.answer(k), int(call["completion_tokens"]))
        raw = orjson.dumps(body)

        if k % 2:  # alternate which goes first, so neither always finds warm caches
            t_via, response = _via(client, target, protocol, chat, raw, headers, stream)
            t_direct = _direct(client, upstream.url + protocol.path, raw, direct_headers)
        else:
            t_direct = _direct(client, upstream.url + protocol.path, raw, direct_headers)
            t_via, response = _via(client, target, protocol, chat, raw, headers, stream)
        if response.status_code != 200:
            result.errors.append(f"call {k}: {response.status_code} {response.text[:200]}")
            continue
        if not _same_answer(protocol.read_answer(response.content, stream), run.answer(k)):
            result.answers_changed += 1
        received, count = upstream.last()
        if received is None:
            result.errors.append(f"call {k}: the upstream received nothing")
            continue
        result.extra_upstream_calls += count - 1
        result.added_ms.append((t_via - t_direct) * 1000)
        messages, tools = protocol.to_chat(received)
        sent[k] = messages
        rendered.append(renderer.request(messages, tools))
        result.original_tokens += original.prompt_tokens
        outputs.append(int(call["completion_tokens"]))
        recorded.append(int(call["cached_tokens"]))
        recorded_prompt.append(int(call["prompt_tokens"]))
    result.calls = simulate_run(renderer, rendered, outputs)
    result.recorded_cached, result.recorded_prompt = recorded, recorded_prompt
    found = checks(run, sent)
    result.recall, result.text = found.recall, found.text
    result.written = [kept for _, kept in found.written]
    return result


def warm_up(target: Target, upstream: Upstream, protocol: WireProtocol, client: httpx.Client,
            stream: bool) -> None:
    """One synthetic agent turn (not from the traces) so first-use loading is not timed."""
    output = "\n".join(f"src/module_{i}.py:{i * 7}: value_{i} = compute_{i}(x, y)"
                       for i in range(300))
    call = {"id": "call_warm", "type": "function",
            "function": {"name": "bash", "arguments": '{"command": "grep -rn value src"}'}}
    warm = Run("warm-up", "warm-up", tools=[], calls=[{"request_messages": 4}], messages=[
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "Find where value_12 is computed."},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_warm", "content": output},
        {"role": "assistant", "content": "It is computed in src/module_12.py."}])
    upstream.script(warm.answer(0), 9)
    raw = orjson.dumps(protocol.from_chat(warm.request(0), stream=stream))
    for _ in range(2):
        _direct(client, upstream.url + protocol.path, raw,
                {**target.headers(warm), "x-replay-direct": "1"})
        _via(client, target, protocol, warm.request(0), raw, target.headers(warm), stream)


# -- main ---------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", nargs="+", choices=list(SYSTEMS), default=list(SYSTEMS),
                        help="systems to replay, in this order (default: all five)")
    parser.add_argument("--runs", type=int, default=None,
                        help="replay only the first N runs of the data file (default: all 23)")
    parser.add_argument("--protocol", choices=list(PROTOCOLS), default="chat",
                        help="wire protocol each trace request is converted to: chat (OpenAI "
                             "Chat Completions), messages (Anthropic Messages), responses "
                             "(OpenAI Responses); tokenomy serves all three, through a backend "
                             "of the protocol's own kind")
    parser.add_argument("--stream", action="store_true",
                        help="send every request with stream=true (the upstream answers SSE)")
    parser.add_argument("--tokenomy-config", type=Path, default=None,
                        help="YAML or TOML config for the tokenomy system (default: "
                             "{compression: {enabled: true}}); its backends are replaced by "
                             "the recording upstream")
    parser.add_argument("--headroom-venv", type=Path, default=None,
                        help="venv holding headroom-ai[proxy] (default: .venv-headroom in the "
                             "repo root, created with python -m venv + pip if missing)")
    parser.add_argument("--data", type=Path, default=DATA, help="trace file (default: the dev set)")
    parser.add_argument("--per-run", action="store_true", help="also print one row per run")
    parser.add_argument("--out", type=Path, default=RESULTS / "agent_replay",
                        help="stem of the .json and .txt written (default: "
                             "benchmarks/results/agent_replay)")
    return parser.parse_args(argv)


def replay_system(name: str, runs: list[Run], ctx: Context, upstream: Upstream,
                  protocol: WireProtocol, renderer: Renderer, client: httpx.Client,
                  stream: bool) -> SystemResult:
    result = SystemResult(name)
    started = time.perf_counter()
    with ExitStack() as stack:  # the system's processes stop before the next one starts
        try:
            target = SYSTEMS[name](stack, ctx)
        except Unavailable as exc:
            result.unavailable = str(exc)
            print(f"{name}: unavailable: {exc}", file=sys.stderr)
            return result
        result.notes = target.notes
        warm_up(target, upstream, protocol, client, stream)
        for index, run in enumerate(runs):
            result.runs.append(replay_run(run, target, upstream, protocol, renderer, client,
                                          stream))
            print(f"{name}: run {index + 1}/{len(runs)} done "
                  f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    result.seconds = time.perf_counter() - started
    return result


def cpu() -> str:
    """What the latency figures ran on."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs{f' ({model})' if model else ''}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    protocol = PROTOCOLS[args.protocol]
    runs = load_runs(args.data, limit=args.runs)
    renderer = Renderer()
    results: list[SystemResult] = []
    with ExitStack() as stack:
        client = stack.enter_context(httpx.Client(timeout=600))
        upstream = Upstream(stack, client)
        ctx = Context(upstream.url, protocol.name, protocol.path, args.tokenomy_config,
                      args.headroom_venv)
        for name in args.systems:
            results.append(replay_system(name, runs, ctx, upstream, protocol, renderer, client,
                                         args.stream))
    base = next((r for r in results if r.name == "passthrough"), None)
    summaries = [summarize(r, base) for r in results]
    per_run = [row for r in results for row in per_run_rows(r, base)]
    calls = sum(len(r.calls) for r in runs)
    header = (f"agent replay: {len(runs)} runs, {calls} calls, protocol {args.protocol}"
              f"{' (SSE)' if args.stream else ''}; tokens in o200k_base; cache = simulated "
              f"prefix cache; $ ratios and runs costlier are vs passthrough; latency on "
              f"{cpu()}")
    text = render(summaries, per_run if args.per_run else None, header)
    # Rules are developed on runs 0-14; 15-22 are the check on runs they were not made on.
    # All of them, to three decimals: the dev traces' own figure.
    parts = {"dev (runs 0-14)": {r.id for r in runs[:HOLDOUT_FROM]},
             "held-out (runs 15-22)": {r.id for r in runs[HOLDOUT_FROM:]},
             f"all (runs 0-{len(runs) - 1})": {r.id for r in runs}}
    split = split_rows(results, base, parts) if len(runs) > HOLDOUT_FROM else []
    if split:
        text += "\n\ndev and held-out runs apart, and all:\n" + render_split(split)
    print(text)
    report = {"header": header, "runs": len(runs), "calls": calls, "protocol": args.protocol,
              "stream": args.stream, "profiles": [p.__dict__ for p in PROFILES],
              "systems": summaries, "split": split, "per_run": per_run}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    args.out.with_suffix(".txt").write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
