"""tokenomy serve vs LiteLLM's proxy, side by side, in front of the same loopback upstream.

Both proxies run with no compression and no database (LiteLLM: no master key,
no DATABASE_URL; tokenomy: `ledger.enabled = false`), and the same load
generator (benchmarks/loadgen.py, its own process) drives each in turn, with
runs interleaved: upstream direct, tokenomy, LiteLLM, [tokenomy + ledger,
tokenomy + compression], repeated `--reps` times. Reported per row (medians
over reps): requests/s, p50/p99 added latency over the upstream alone (same
rep, same concurrency), CPU seconds per 1k requests and peak RSS of the
server's process tree (psutil), and the ratios LiteLLM/tokenomy.

LiteLLM's proxy is installed on first run into benchmarks/.litellm-venv
(`litellm[proxy]` at the version pinned in constraints.txt), never into the
project's environment.

    python benchmarks/vs_litellm.py [--concurrency 1 8 32] [--requests 1000] [--reps 3]
        [--extra ledger compress]

Goals (issue 7): >= 3x lower p50 added latency and >= 2x the throughput of
LiteLLM's proxy; p50 added < 1 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import Load, drive, median, ms, table

from tokenomy.testing.processes import (
    Server,
    _stop,
    echo_config,
    free_port,
    run_proxy,
    run_upstream,
    wait_http,
)

HERE = Path(__file__).parent
ROOT = HERE.parent
VENV = HERE / ".litellm-venv"
MODEL = "gpt-4o-mini"
DATA = ROOT / "data" / "qa_passages.dev.jsonl"


def litellm_version() -> str:
    text = (ROOT / "constraints.txt").read_text()
    found = re.search(r"^litellm==([\w.]+)", text, re.M)
    if not found:
        raise SystemExit("constraints.txt pins no litellm version")
    return found.group(1)


def ensure_litellm() -> Path:
    """LiteLLM's proxy in its own venv (created once); returns its `litellm` script."""
    script = VENV / "bin" / "litellm"
    if script.exists():
        return script
    version = litellm_version()
    print(f"installing litellm[proxy]=={version} into {VENV} (first run only)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "-q",
                    f"litellm[proxy]=={version}"], check=True)
    return script


@contextmanager
def run_litellm(upstream_v1: str, folder: Path) -> Iterator[Server]:
    """LiteLLM's proxy: one model to the upstream, no master key, no database, no access log."""
    port = free_port()
    config = folder / "litellm.json"
    config.write_text(json.dumps({"model_list": [{
        "model_name": MODEL,
        "litellm_params": {"model": f"openai/{MODEL}", "api_base": upstream_v1,
                           "api_key": "sk-bench"},
    }]}))
    log_config = folder / "log.json"
    log_config.write_text(json.dumps({
        "version": 1, "disable_existing_loggers": False,
        "handlers": {"default": {"class": "logging.StreamHandler"}},
        "loggers": {"uvicorn": {"level": "WARNING", "handlers": ["default"]},
                    "uvicorn.access": {"level": "WARNING", "handlers": ["default"],
                                       "propagate": False}},
    }))
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
           # no master key and no database, as the comparison asks; local loopback only
           "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true"}
    for name in ("DATABASE_URL", "LITELLM_MASTER_KEY", "PYTHONPATH"):
        env.pop(name, None)
    process = subprocess.Popen(
        [str(ensure_litellm()), "--config", str(config), "--port", str(port),
         "--host", "127.0.0.1", "--num_workers", "1", "--log_config", str(log_config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder, env=env,
    )
    server = Server(f"http://127.0.0.1:{port}", process, port)
    try:
        wait_http(server.url + "/health/liveliness", process, timeout=180)
        yield server
    finally:
        _stop(process)


def long_body(path: Path) -> Path:
    """A RAG-shaped request (~1.5k tokens of passages + a question) for the compression row."""
    items = [json.loads(line) for line in DATA.read_text().splitlines()[:8]]
    context = "\n\n".join(item["passage"] for item in items)
    body = {"messages": [
        {"role": "system", "content": "Answer from the context only."},
        {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {items[0]['question']}"},
    ], "max_tokens": 64}
    path.write_text(json.dumps(body))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["json", "stream"],
                        choices=["json", "stream"])
    parser.add_argument("--extra", nargs="*", default=["ledger", "compress"],
                        choices=["ledger", "compress"])
    args = parser.parse_args()
    ensure_litellm()
    folder = Path(tempfile.mkdtemp(prefix="tokenomy-vs-litellm-"))
    for sub in ("t", "l", "c"):
        (folder / sub).mkdir()
    no_db = {"enabled": False}
    with ExitStack() as stack:
        upstream = stack.enter_context(run_upstream())
        servers: dict[str, Server] = {
            "tokenomy": stack.enter_context(run_proxy(
                echo_config(upstream.v1, ledger=no_db), folder=folder / "t")),
            "litellm": stack.enter_context(run_litellm(upstream.v1, folder)),
        }
        bodies: dict[str, str | None] = {name: None for name in servers}
        if "ledger" in args.extra:
            servers["tokenomy+ledger"] = stack.enter_context(run_proxy(
                echo_config(upstream.v1, ledger={"url": f"sqlite:///{folder}/ledger.db"}),
                folder=folder / "l"))
            bodies["tokenomy+ledger"] = None
        if "compress" in args.extra:
            servers["tokenomy+compress"] = stack.enter_context(run_proxy(
                echo_config(upstream.v1, ledger=no_db, compression={
                    "enabled": True, "method": "extractive", "target_ratio": 2.0,
                    "min_tokens": 0}),
                folder=folder / "c"))
            bodies["tokenomy+compress"] = str(long_body(folder / "long.json"))
        direct_url = upstream.v1 + "/chat/completions"
        rows = []
        for concurrency in args.concurrency:
            for mode in args.modes:
                stream = mode == "stream"
                results: dict[str, list[tuple[Load, Load]]] = {name: [] for name in servers}
                for _ in range(args.reps):
                    direct_for: dict[str | None, Load] = {}
                    for name, server in servers.items():
                        body = bodies[name]
                        if body not in direct_for:  # the upstream alone, same body
                            direct_for[body] = drive(
                                direct_url, concurrency=concurrency, requests=args.requests,
                                stream=stream, model=MODEL, body_file=body)
                        load = drive(server.v1 + "/chat/completions", concurrency=concurrency,
                                     requests=args.requests, stream=stream, model=MODEL,
                                     watch_pid=server.process.pid, body_file=body)
                        results[name].append((direct_for[body], load))
                        if load.errors:
                            print(f"{name}: errors {load.errors[:3]} ({len(load.errors)})",
                                  file=sys.stderr)
                summary = {}
                for name, runs in results.items():
                    add50 = median([t.p50 - d.p50 for d, t in runs])
                    rps = median([t.rps for _, t in runs])
                    cpu_1k = median([t.cpu_s / t.extra["counted_requests"] * 1000
                                     for _, t in runs])
                    summary[name] = (add50, rps)
                    rows.append([
                        str(concurrency), mode, name, f"{rps:.0f}", ms(add50),
                        ms(median([t.p99 - d.p99 for d, t in runs])),
                        f"{cpu_1k:.2f}",
                        f"{max(t.peak_rss for _, t in runs) / 2**20:.0f}",
                        str(sum(len(t.errors) for _, t in runs)),
                    ])
                t50, trps = summary["tokenomy"]
                l50, lrps = summary["litellm"]
                rows.append([str(concurrency), mode, "ratio litellm/tokenomy",
                             f"x{trps / lrps:.2f} rps", f"x{l50 / t50:.1f} lower" if t50 > 0
                             else "n/a", "", "", "", ""])
                print(f"done c={concurrency} {mode}", file=sys.stderr, flush=True)
    print(f"tokenomy vs LiteLLM proxy {litellm_version()}: {args.reps} interleaved reps x "
          f"{args.requests} requests (medians); latency in ms, CPU s per 1k requests, "
          f"peak RSS MiB of the server tree")
    print(table(["conc", "mode", "server", "rps", "added p50", "added p99", "cpu s/1k",
                 "peak MiB", "errors"], rows))


if __name__ == "__main__":
    main()
