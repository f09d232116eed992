"""The pieces benchmarks/hardening.py's attacks share: real servers on loopback.

The proxy under attack runs from whatever `tokenomy` is on PYTHONPATH (an older
checkout, or this one). Everything else (the loopback upstream with its faults,
the TCP relay, this kit) comes from this checkout's `src/`, whatever the proxy
is, so both runs face the same attacker. Nothing here imports the proxy's code:
the proxy is a process, its ledger a database read with plain SQL.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import Engine, create_engine, text

HERE = Path(__file__).resolve().parent
OWN_SRC = HERE.parent / "src"  # the attacker's tools: this checkout's upstream and relay
PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(src: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TOKENOMY_CONFIG"}
    if src is not None:
        env["PYTHONPATH"] = src
    # Each proxy gets its own TOKENOMY_HOME (ledger, caches); the prepared models stay
    # where `tokenomy assets install` put them.
    home = Path(os.environ.get("TOKENOMY_HOME") or Path.home() / ".cache" / "tokenomy")
    env.setdefault("TOKENOMY_MODELS", str(home / "models"))
    return env


def proxy_src() -> str:
    """Where the proxy under attack imports tokenomy from (PYTHONPATH, else installed)."""
    return os.environ.get("PYTHONPATH", "")


@dataclass
class Proc:
    url: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def stop(self, kill: bool = False) -> None:
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited {process.returncode}: {log.read_text()[-1500:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


@contextlib.contextmanager
def upstream() -> Iterator[Proc]:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="hardening-upstream-", suffix=".log")[1])
    process = subprocess.Popen(
        [sys.executable, "-m", "tokenomy.testing.upstream", "--port", str(port)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=_env(str(OWN_SRC)))
    proc = Proc(f"http://127.0.0.1:{port}", process, port, log)
    try:
        _wait(proc.url + "/_stats", process, log)
        yield proc
    finally:
        proc.stop()


def start_proxy(config: dict[str, Any], folder: Path, *, port: int | None = None,
                wait: bool = True) -> Proc:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tokenomy.yaml"
    path.write_text(yaml.safe_dump(config))
    port = port or free_port()
    log = folder / f"proxy-{port}.log"
    env = _env(proxy_src() or None)
    env["TOKENOMY_HOME"] = str(folder / "home")
    process = subprocess.Popen(
        [sys.executable, "-m", "tokenomy.cli", "serve", "--port", str(port), "--config",
         str(path)], stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)
    proc = Proc(f"http://127.0.0.1:{port}", process, port, log)
    if wait:
        try:
            _wait(proc.url + "/healthz", process, log)
        except Exception:
            proc.stop()
            raise
    return proc


@contextlib.contextmanager
def proxy(config: dict[str, Any], folder: Path) -> Iterator[Proc]:
    proc = start_proxy(config, folder)
    try:
        yield proc
    finally:
        proc.stop()


def cli(args: list[str], folder: Path) -> str:
    """`tokenomy ...` from the code under attack (e.g. `keys create`)."""
    env = _env(proxy_src() or None)
    env["TOKENOMY_HOME"] = str(folder / "home")
    done = subprocess.run([sys.executable, "-m", "tokenomy.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(done.stderr[-1000:])
    return done.stdout


_FIELDS: dict[str, set[str]] = {}


def known_fields(section: str) -> set[str]:
    """The settings fields the proxy's code knows ("server", "ledger", "compression"):
    a feature the old code lacks is left out of its config, not refused at start."""
    if section not in _FIELDS:
        where = {"server": "tokenomy.config:ServerSettings",
                 "ledger": "tokenomy.budgets.settings:LedgerSettings",
                 "compression": "tokenomy.compressors.settings:CompressionSettings"}[section]
        module, name = where.split(":")
        code = (f"import json\ntry:\n from {module} import {name}\n"
                f" print(json.dumps(list({name}.model_fields)))\n"
                "except Exception:\n print('[]')")
        out = subprocess.run([sys.executable, "-c", code], env=_env(proxy_src() or None),
                             capture_output=True, text=True, timeout=120).stdout
        _FIELDS[section] = set(json.loads(out.strip().splitlines()[-1] or "[]"))
    return _FIELDS[section]


def only_known(section: str, values: dict[str, Any]) -> dict[str, Any]:
    known = known_fields(section)
    return {k: v for k, v in values.items() if k in known}


def base_config(up: Proc, ledger: dict[str, Any] | None = None,
                **sections: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "backends": {"test": {"kind": "openai", "base_url": up.v1, "timeout": 60,
                              "max_retries": 0}},
        "models": {"echo": {"backend": "test", "model": "gpt-4o"}},
        "default_backend": "test",
        "ledger": ledger or {"enabled": False},
    }
    config.update(sections)
    return config


def relay_class() -> Any:
    """This checkout's TCP relay (stdlib only), loaded by path: the proxy's code may not
    have one."""
    path = OWN_SRC / "tokenomy" / "testing" / "relay.py"
    spec = importlib.util.spec_from_file_location("hardening_relay", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Relay


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    schema = "tk_hardening_" + uuid.uuid4().hex[:10]
    try:
        yield f"{PG_BASE}?schema={schema}"
    finally:
        engine = create_engine(PG_BASE)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def engine_for(url: str) -> Engine:
    """A plain SQLAlchemy engine on the proxy's ledger (the `?schema=` of our URLs too)."""
    if "?schema=" in url:
        base, schema = url.split("?schema=")
        return create_engine(base, connect_args={"options": f"-csearch_path={schema}"})
    return create_engine(url)


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def chat(content: str = "hi", model: str = "echo", **body: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **body}


def refusal_needs(response: httpx.Response) -> int | None:
    """What a 429 says the request needed (the field, or the message on older code)."""
    with contextlib.suppress(ValueError, KeyError, TypeError):
        error = response.json()["error"]
        if "requested_tokens" in error:
            return int(error["requested_tokens"])
        return int(error["message"].split("needs up to ")[1].split(".")[0].split()[0])
    return None


class Capture:
    """An attacker's server on loopback: records what reaches it, answers like OpenAI."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                seen.append({k.lower(): v for k, v in self.headers.items()})
                payload = json.dumps({
                    "id": "x", "object": "chat.completion", "created": 0, "model": "x",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": "ATTACKER"}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                              "total_tokens": 2}}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
