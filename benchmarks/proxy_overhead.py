"""Added latency of `tokenomy serve` over calling the loopback test upstream directly.

Same load generator (its own process), same concurrency, same body; runs
alternate upstream-direct and through-proxy so that machine noise hits both
alike. For each repetition the added latency is p50(proxy) - p50(direct)
(likewise p99); the table shows the median over repetitions, and the spread
(min..max) so the noise is visible. No compression, no ledger.

    python benchmarks/proxy_overhead.py [--concurrency 1 8 32] [--requests 2000] [--reps 5]
                                        [--protocols chat messages]

Each protocol is measured against its own endpoint on the same upstream:
chat completions (`openai` backend) and Anthropic Messages (`anthropic` backend).

Goals: p50 added < 2 ms (issue 2) and < 1 ms (issue 7).
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


# Each protocol's endpoint, and the body the load generator sends there (its `model` and
# `stream` are set per run). Messages goes through an `anthropic` backend to the same
# upstream; its model alias names the same upstream model, so both count in o200k.
PROTOCOLS = {
    "chat": ("/v1/chat/completions", None, MODEL),
    "messages": ("/v1/messages", {"max_tokens": 64, "system": "You are a concise assistant.",
                                  "messages": [{"role": "user", "content": PROMPT}]},
                 "messages-" + MODEL),
}


def proxy_config(upstream: Server) -> dict[str, Any]:
    config = echo_config(upstream.v1, ledger={"enabled": False})
    config["backends"]["claude"] = {"kind": "anthropic", "base_url": upstream.url,
                                    "timeout": 5, "max_retries": 2}
    config["models"]["messages-" + MODEL] = {"backend": "claude", "model": MODEL}
    return config


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
    args = parser.parse_args()

    rows = []
    folder = Path(tempfile.mkdtemp(prefix="proxy-overhead-"))
    with run_upstream() as upstream, run_proxy(proxy_config(upstream)) as proxy:
        for protocol in args.protocols:
            path, body, alias = PROTOCOLS[protocol]
            body_file = None
            if body is not None:
                body_file = str(folder / f"{protocol}.json")
                Path(body_file).write_bytes(orjson.dumps(body))
            for concurrency in args.concurrency:
                for mode in args.modes:
                    stream = mode == "stream"
                    runs: list[tuple[Load, Load]] = []
                    for _ in range(args.reps):
                        direct = drive(upstream.url + path, concurrency=concurrency,
                                       requests=args.requests, stream=stream, model=MODEL,
                                       body_file=body_file)
                        through = drive(proxy.url + path, concurrency=concurrency,
                                        requests=args.requests, stream=stream, model=alias,
                                        body_file=body_file, watch_pid=proxy.process.pid)
                        runs.append((direct, through))
                        errors = direct.errors + through.errors
                        if errors:
                            print(f"errors: {errors[:5]} ({len(errors)})", file=sys.stderr)
                    add50 = [t.p50 - d.p50 for d, t in runs]
                    add99 = [t.p99 - d.p99 for d, t in runs]
                    cpu_per_req = [t.cpu_s / t.extra["counted_requests"] for _, t in runs]
                    rows.append([
                        protocol, str(concurrency), mode,
                        ms(median([d.p50 for d, _ in runs])), ms(median([t.p50 for _, t in runs])),
                        ms(median(add50)), f"{ms(min(add50))}..{ms(max(add50))}",
                        ms(median(add99)),
                        f"{median([d.rps for d, _ in runs]):.0f}",
                        f"{median([t.rps for _, t in runs]):.0f}",
                        ms(median(cpu_per_req)),
                        str(sum(len(d.errors) + len(t.errors) for d, t in runs)),
                    ])
                    print(f"done {protocol} c={concurrency} {mode}", file=sys.stderr, flush=True)
    print(f"proxy overhead: {args.reps} interleaved reps x {args.requests} requests each "
          f"(medians; spread = min..max over reps); times in ms")
    print(table(["protocol", "conc", "mode", "direct p50", "proxy p50", "added p50",
                 "added p50 spread", "added p99", "direct rps", "proxy rps", "proxy cpu/req",
                 "errors"], rows))


if __name__ == "__main__":
    main()
