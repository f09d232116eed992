"""Added latency of `tokenomy serve` over calling the loopback test upstream directly,
with the request log and /metrics off and on.

Same load generator (its own process), same concurrency, same body; runs
alternate upstream-direct, through a proxy with `[telemetry] request_log = false,
metrics = false`, and through one with both on (the default: one JSON line per
request at info level, written to a file, and the Prometheus counters), so that
machine noise hits all three alike. For each repetition the added latency is
p50(proxy) - p50(direct) (likewise p99), and telemetry's own cost is
p50(on) - p50(off); the table shows medians over repetitions and the spread
(min..max) so the noise is visible. No compression, no ledger.

    python benchmarks/proxy_overhead.py [--concurrency 1 8 32] [--requests 2000] [--reps 5]
                                        [--protocols chat messages responses] [--cpu-only]

Each protocol is measured against its own endpoint on the same upstream:
chat completions and OpenAI Responses (`openai` backend) and Anthropic Messages
(`anthropic` backend).

Goals: p50 added < 2 ms (issue 2) and < 1 ms (issue 7); logging and metrics on
cost < 0.1 ms p50 more than off (issue 15).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import orjson
from harness import Load, drive, median, ms, table
from loadgen import PROMPT

from tokenomy.testing.processes import Server, echo_config, run_proxy, run_upstream

# A real model name: the proxy counts its prompt with tiktoken, as it would in
# production (the test upstream answers any name; the proxy's default backend
# sends unknown names there unchanged).
MODEL = "gpt-4o-mini"
TELEMETRY_OFF = {"request_log": False, "metrics": False}


# Each protocol's endpoint, and the body the load generator sends there (its `model` and
# `stream` are set per run). Messages goes through an `anthropic` backend to the same
# upstream; its model alias names the same upstream model, so both count in o200k.
PROTOCOLS = {
    "chat": ("/v1/chat/completions", None, MODEL),
    "messages": ("/v1/messages", {"max_tokens": 64, "system": "You are a concise assistant.",
                                  "messages": [{"role": "user", "content": PROMPT}]},
                 "messages-" + MODEL),
    "responses": ("/v1/responses", {"max_output_tokens": 64,
                                    "instructions": "You are a concise assistant.",
                                    "input": [{"role": "user", "content": PROMPT}]},
                  MODEL),
}


def proxy_config(upstream: Server, telemetry: dict[str, Any] | None = None) -> dict[str, Any]:
    config = echo_config(upstream.v1, ledger={"enabled": False})
    config["backends"]["claude"] = {"kind": "anthropic", "base_url": upstream.url,
                                    "timeout": 5, "max_retries": 2}
    config["models"]["messages-" + MODEL] = {"backend": "claude", "model": MODEL}
    if telemetry is not None:
        config["telemetry"] = telemetry
    return config


def telemetry_cpu(requests: int = 20_000, reps: int = 5) -> list[list[str]]:
    """CPU µs one finished request costs the observer in this process (record, JSON log
    line written to a file, Prometheus series), by part: the figure the shared machine's
    noise hides in latencies. process_time counts only this process's CPU."""
    import logging.config
    import tempfile
    import time

    from tokenomy.call import Call, Event, Identity, Result, Usage
    from tokenomy.observe.logs import RequestLog, logging_config, server_process
    from tokenomy.observe.metrics import process_metrics
    from tokenomy.observe.observer import Observer

    config = logging_config("info", "json")
    config["handlers"]["stderr"] = {"class": "logging.FileHandler", "formatter": "tokenomy",
                                    "filename": tempfile.mktemp(suffix=".log")}
    logging.config.dictConfig(config)
    server_process()
    call = Call(body={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
                route="/v1/chat/completions", backend="test", upstream_model=MODEL,
                identity=Identity(team="research", key_name="notebook"))
    call.prompt_tokens_original = 31
    call.usage, call.cost_usd, call.upstream_ms = Usage.of(31, 12), 1.2e-5, 0.4
    call.events = [Event(stage="budget", ms=0.2)]
    result = Result(response={}, usage=call.usage)
    variants = {"record only": Observer([]), "+ request log": Observer([RequestLog()]),
                "+ metrics": Observer([process_metrics()]),
                "+ both": Observer([RequestLog(), process_metrics()])}
    costs: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(reps):
        for name, observer in variants.items():
            began = time.process_time()
            for _ in range(requests // reps):
                observer.finish(call, result, None)
            costs[name].append((time.process_time() - began) / (requests // reps) * 1e6)
    return [[name, f"{median(values):.1f}", f"{min(values):.1f}"]
            for name, values in costs.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--modes", nargs="+", default=["json", "stream"],
                        choices=["json", "stream"])
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS),
                        choices=list(PROTOCOLS))
    parser.add_argument("--cpu-only", action="store_true",
                        help="only the in-process telemetry CPU figure (no servers)")
    args = parser.parse_args()
    if args.cpu_only:
        print(table(["observer", "median", "min"], telemetry_cpu()))
        return

    rows = []
    folder = Path(tempfile.mkdtemp(prefix="proxy-overhead-"))
    with run_upstream() as upstream, \
            run_proxy(proxy_config(upstream, TELEMETRY_OFF)) as quiet, \
            run_proxy(proxy_config(upstream)) as observed:
        for protocol in args.protocols:
            path, body, alias = PROTOCOLS[protocol]
            body_file = None
            if body is not None:
                body_file = str(folder / f"{protocol}.json")
                Path(body_file).write_bytes(orjson.dumps(body))
            for concurrency in args.concurrency:
                for mode in args.modes:
                    stream = mode == "stream"
                    runs: list[tuple[Load, Load, Load]] = []
                    for _ in range(args.reps):
                        direct = drive(upstream.url + path, concurrency=concurrency,
                                       requests=args.requests, stream=stream, model=MODEL,
                                       body_file=body_file)
                        off = drive(quiet.url + path, concurrency=concurrency,
                                    requests=args.requests, stream=stream, model=alias,
                                    body_file=body_file, watch_pid=quiet.process.pid)
                        on = drive(observed.url + path, concurrency=concurrency,
                                   requests=args.requests, stream=stream, model=alias,
                                   body_file=body_file, watch_pid=observed.process.pid)
                        runs.append((direct, off, on))
                        errors = direct.errors + off.errors + on.errors
                        if errors:
                            print(f"errors: {errors[:5]} ({len(errors)})", file=sys.stderr)
                    add_off = [o.p50 - d.p50 for d, o, _ in runs]
                    add_on = [n.p50 - d.p50 for d, _, n in runs]
                    telemetry = [n.p50 - o.p50 for _, o, n in runs]
                    cpu_off = [o.cpu_s / o.extra["counted_requests"] for _, o, _ in runs]
                    cpu_on = [n.cpu_s / n.extra["counted_requests"] for _, _, n in runs]
                    rows.append([
                        protocol, str(concurrency), mode,
                        ms(median([d.p50 for d, _, _ in runs])),
                        ms(median(add_off)), ms(median(add_on)),
                        ms(median([n.p99 - d.p99 for d, _, n in runs])),
                        ms(median(telemetry)),
                        f"{ms(min(telemetry))}..{ms(max(telemetry))}",
                        ms(median(cpu_off)), ms(median(cpu_on)),
                        f"{median([n.rps for _, _, n in runs]):.0f}",
                        str(sum(len(d.errors) + len(o.errors) + len(n.errors)
                                for d, o, n in runs)),
                    ])
                    print(f"done {protocol} c={concurrency} {mode}", file=sys.stderr, flush=True)
        logged = sum(1 for line in observed.log_lines() if '"tokenomy.request"' in line)
    print(f"proxy overhead: {args.reps} interleaved reps x {args.requests} requests each "
          f"(medians; spread = min..max over reps); times in ms; telemetry on = request log "
          f"({logged} lines written) + /metrics")
    print(table(["protocol", "conc", "mode", "direct p50", "added p50 off", "added p50 on",
                 "added p99 on", "on - off p50", "on - off spread", "cpu/req off",
                 "cpu/req on", "rps on", "errors"], rows))
    print("\ntelemetry CPU per request, in process (µs; median and min of 5 reps):")
    print(table(["observer", "median", "min"], telemetry_cpu()))


if __name__ == "__main__":
    main()
