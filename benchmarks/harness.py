"""Shared pieces of the proxy benchmarks: drive a URL with the load generator, summarize.

The load generator runs as its own process (benchmarks/loadgen.py) so it never
shares an event loop or a GIL with the servers it measures.
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil

LOADGEN = Path(__file__).with_name("loadgen.py")


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass
class Load:
    """One load-generator run against one URL."""

    latencies: list[float]
    errors: list[str]
    wall: float
    rps: float
    cpu_s: float = 0.0  # CPU seconds the measured server tree used during the run
    peak_rss: int = 0  # bytes, the measured server tree
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def tree_cpu(pid: int) -> float:
    total = 0.0
    for proc in _tree(pid):
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def tree_rss(pid: int) -> int:
    total = 0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def drive(url: str, *, concurrency: int, requests: int, stream: bool, model: str,
          warmup: int = 100, watch_pid: int | None = None,
          body_file: str | None = None) -> Load:
    """Run the load generator once; optionally measure a server tree's CPU and RSS."""
    command = [sys.executable, str(LOADGEN), "--url", url, "--concurrency", str(concurrency),
               "--requests", str(requests), "--warmup", str(warmup), "--model", model]
    if stream:
        command.append("--stream")
    if body_file:
        command += ["--body-file", body_file]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cpu_before = tree_cpu(watch_pid) if watch_pid else 0.0
    peak = 0
    # Sample RSS while the run lasts (the warmup is included in the CPU figure,
    # so it is subtracted below from the request count's point of view).
    while process.poll() is None:
        if watch_pid:
            peak = max(peak, tree_rss(watch_pid))
        time.sleep(0.05)
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{err.decode()[-2000:]}")
    data = orjson.loads(out)
    load = Load(data["latencies"], data["errors"], data["wall"], data["rps"])
    if watch_pid:
        load.cpu_s = tree_cpu(watch_pid) - cpu_before
        load.peak_rss = max(peak, tree_rss(watch_pid))
        load.extra["counted_requests"] = requests + warmup
    return load


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)
