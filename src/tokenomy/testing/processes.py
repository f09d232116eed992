"""Starting real servers on loopback for tests and benchmarks: the test upstream and the proxy."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes] | None = None,
              timeout: float = 60.0, log_path: Path | None = None) -> None:
    """Poll `url` until it answers; fail fast if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            if log_path is not None:
                output = log_path.read_text(errors="replace")
            else:
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise RuntimeError(f"server exited with {process.returncode}:\n{output[-3000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def _stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Server:
    url: str  # base URL without /v1
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path | None = None  # the proxy's stdout and stderr (its request log)

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def log_lines(self) -> list[str]:
        """What the process wrote so far, one entry per line."""
        if self.log_path is None or not self.log_path.exists():
            return []
        return self.log_path.read_text(errors="replace").splitlines()


@contextmanager
def run_upstream(port: int | None = None) -> Iterator[Server]:
    """The deterministic OpenAI-compatible test backend, in its own process."""
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tokenomy.testing.upstream", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", process, port)
    try:
        wait_http(server.url + "/_stats", process)
        yield server
    finally:
        _stop(process)


def write_config(config: dict[str, Any] | str | Path | None, folder: Path) -> Path | None:
    if config is None or isinstance(config, Path):
        return config
    path = folder / "tokenomy.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return path


def start_proxy(config: dict[str, Any] | str | Path | None = None, *, port: int | None = None,
                env: dict[str, str] | None = None, folder: Path | None = None,
                args: list[str] | None = None, ready: str = "/healthz") -> Server:
    """Start `tokenomy serve` as a real process; the caller stops it (see `run_proxy`).

    Its output goes to `folder/proxy.log` (`Server.log_lines()`), never to a pipe
    nobody reads: the request log would fill it and stall the proxy."""
    folder = folder or Path(tempfile.mkdtemp(prefix="tokenomy-proxy-"))
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    if config is None or isinstance(config, dict):
        # A test proxy keeps its ledger in its own folder, never in the user's one.
        config = dict(config or {})
        ledger = dict(config.get("ledger") or {})
        ledger.setdefault("url", f"sqlite:///{folder / 'ledger.db'}")
        config["ledger"] = ledger
    path = write_config(config, folder)
    command = [sys.executable, "-m", "tokenomy.cli", "serve", "--port", str(port)]
    if path is not None:
        command += ["--config", str(path)]
    command += args or []
    full_env = {**os.environ, **(env or {})}
    full_env.pop("TOKENOMY_CONFIG", None)
    log_path = folder / f"proxy-{port}.log"
    with log_path.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                   env=full_env)
    server = Server(f"http://127.0.0.1:{port}", process, port, log_path)
    try:
        wait_http(server.url + ready, process, log_path=log_path)
    except Exception:
        _stop(process)
        raise
    return server


@contextmanager
def run_proxy(config: dict[str, Any] | str | Path | None = None, **kwargs: Any) -> Iterator[Server]:
    server = start_proxy(config, **kwargs)
    try:
        yield server
    finally:
        _stop(server.process)


def echo_config(upstream_v1: str, **extra: Any) -> dict[str, Any]:
    """A config whose model `echo` goes to the test upstream (and `fault:*` names too)."""
    config: dict[str, Any] = {
        "backends": {"test": {"kind": "openai", "base_url": upstream_v1, "timeout": 5,
                              "max_retries": 2}},
        "models": {"echo": {"backend": "test", "model": "echo-model"}},
        "default_backend": "test",
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config
