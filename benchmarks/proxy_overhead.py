"""Added latency of `tokenomy serve` over calling the loopback test upstream directly.

Same load generator (its own process), same concurrency, same body; runs
alternate upstream-direct and through-proxy so that machine noise hits both
alike. For each repetition the added latency is p50(proxy) - p50(direct)
(likewise p99); the table shows the median over repetitions, and the spread
(min..max) so the noise is visible. No compression, no ledger.

    python benchmarks/proxy_overhead.py [--concurrency 1 8 32] [--requests 2000] [--reps 5]

Goals: p50 added < 2 ms (issue 2) and < 1 ms (issue 7).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import Load, drive, median, ms, table

from tokenomy.testing.processes import echo_config, run_proxy, run_upstream

# A real model name: the proxy counts its prompt with tiktoken, as it would in
# production (the test upstream answers any name; the proxy's default backend
# sends unknown names there unchanged).
MODEL = "gpt-4o-mini"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--modes", nargs="+", default=["json", "stream"],
                        choices=["json", "stream"])
    args = parser.parse_args()

    rows = []
    with run_upstream() as upstream, \
            run_proxy(echo_config(upstream.v1, ledger={"enabled": False})) as proxy:
        direct_url = upstream.v1 + "/chat/completions"
        proxy_url = proxy.v1 + "/chat/completions"
        for concurrency in args.concurrency:
            for mode in args.modes:
                stream = mode == "stream"
                runs: list[tuple[Load, Load]] = []
                for _ in range(args.reps):
                    direct = drive(direct_url, concurrency=concurrency, requests=args.requests,
                                   stream=stream, model=MODEL)
                    through = drive(proxy_url, concurrency=concurrency, requests=args.requests,
                                    stream=stream, model=MODEL, watch_pid=proxy.process.pid)
                    runs.append((direct, through))
                    errors = direct.errors + through.errors
                    if errors:
                        print(f"errors: {errors[:5]} ({len(errors)})", file=sys.stderr)
                add50 = [t.p50 - d.p50 for d, t in runs]
                add99 = [t.p99 - d.p99 for d, t in runs]
                cpu_per_req = [t.cpu_s / t.extra["counted_requests"] for _, t in runs]
                rows.append([
                    str(concurrency), mode,
                    ms(median([d.p50 for d, _ in runs])), ms(median([t.p50 for _, t in runs])),
                    ms(median(add50)), f"{ms(min(add50))}..{ms(max(add50))}",
                    ms(median(add99)),
                    f"{median([d.rps for d, _ in runs]):.0f}",
                    f"{median([t.rps for _, t in runs]):.0f}",
                    ms(median(cpu_per_req)),
                    str(sum(len(d.errors) + len(t.errors) for d, t in runs)),
                ])
                print(f"done c={concurrency} {mode}", file=sys.stderr, flush=True)
    print(f"proxy overhead: {args.reps} interleaved reps x {args.requests} requests each "
          f"(medians; spread = min..max over reps); times in ms")
    print(table(["conc", "mode", "direct p50", "proxy p50", "added p50", "added p50 spread",
                 "added p99", "direct rps", "proxy rps", "proxy cpu/req", "errors"], rows))


if __name__ == "__main__":
    main()
