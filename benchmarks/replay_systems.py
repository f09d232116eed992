"""The systems the agent replay compares, each in front of the same recording upstream.

A system is started into an ExitStack (its processes stop when the stack
closes) and gives back a `Target`: where the client posts each request, the
headers it adds, and an optional client-side rewrite of the body (timed as part
of the system's latency).

- passthrough: `tokenomy serve`, compression off and codify (JSON minifying) off, so
               it forwards the agent's requests unchanged.
- tokenomy:    `tokenomy serve` with `--tokenomy-config` (default: tokenomy's defaults, i.e.
               live-zone agent compression on for agent-shaped requests).
               No session or conversation header is sent: it must recognise
               conversations itself.
- truncate:    client-side head/tail cut of every tool output over 1,000 tokens
               (deterministic, so cache-stable), sent straight to the upstream.
- recompress6: client-side, cache-hostile on purpose: the last 6 tool outputs are
               cut to 25% (head/tail), older ones are sent in full, so every
               output changes form when it ages out of the window.
- headroom:    Headroom's proxy (`headroom-ai[proxy]`, own venv), one
               `x-headroom-session-id` per replayed conversation.

Both tokenomy systems keep the default SQLite ledger (in a temporary folder), as
a user who just runs `tokenomy serve` would. They serve every protocol the proxy
registers (chat, Responses, Anthropic Messages), each through a backend of its own
kind (messages: `anthropic`, the others: `openai`); under a protocol it does not
serve yet their rows say "not served yet" (Headroom gets both an OpenAI and an
Anthropic upstream URL, so it can run them).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from agent_traces import Run

from tokenomy.config import deep_merge
from tokenomy.plugins import registry
from tokenomy.testing.processes import _stop, free_port, start_proxy, wait_http
from tokenomy.tokenizers import get_encoder

ROOT = Path(__file__).resolve().parent.parent
HEADROOM_PIN = "headroom-ai[proxy]==0.42.0"
HEADROOM_SESSION = "x-headroom-session-id"
API_KEY = "sk-replay"
TRUNCATE_OVER = 1000  # tokens
RECOMPRESS_LAST = 6
RECOMPRESS_KEEP = 0.25
RECOMPRESS_MIN = 100  # tokens: shorter outputs are left alone
_MODEL = "gpt-4o"  # o200k_base, the benchmark's one tokenizer


class Unavailable(RuntimeError):
    """The system could not be started here; the message says why (it goes in its row)."""


@dataclass
class Target:
    url: str  # full URL of the model endpoint
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    session_header: str | None = None  # one value per replayed conversation, when set
    notes: list[str] = field(default_factory=list)

    def headers(self, run: Run) -> dict[str, str]:
        headers = {"authorization": f"Bearer {API_KEY}", "x-api-key": API_KEY,
                   "anthropic-version": "2023-06-01", "content-type": "application/json"}
        if self.session_header:
            headers[self.session_header] = f"replay-{run.id}"
        return headers


@dataclass
class Context:
    upstream: str  # base URL of the recording upstream, no /v1
    protocol: str  # chat | messages | responses
    path: str  # the protocol's endpoint path, e.g. /v1/chat/completions
    tokenomy_config: Path | None = None
    headroom_venv: Path | None = None
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="agent-replay-")))


# -- client-side baselines ------------------------------------------------------------

@lru_cache(maxsize=8192)
def head_tail(text: str, keep: int) -> str:
    """The first and last `keep / 2` tokens of `text`, with a marker saying what went."""
    encoder = get_encoder(_MODEL)
    ids = encoder.encode(text)
    if len(ids) <= keep:
        return text
    head, tail = keep // 2, keep - keep // 2
    dropped = len(ids) - head - tail
    return (encoder.decode(ids[:head]) + f"\n[... {dropped} tokens omitted ...]\n"
            + encoder.decode(ids[-tail:]))


def _with_tool_outputs(body: dict[str, Any], rewrite: Callable[[int, str], str]) -> dict[str, Any]:
    """`body` with each tool message's content replaced by `rewrite(position, content)`.

    `position` counts tool messages from the end (0 = the newest).
    """
    messages = body["messages"]
    total = sum(1 for m in messages if m.get("role") == "tool")
    out, seen = [], 0
    for message in messages:
        if message.get("role") == "tool" and isinstance(message.get("content"), str):
            seen += 1
            content = rewrite(total - seen, message["content"])
            if content is not message["content"]:
                message = {**message, "content": content}
        out.append(message)
    return {**body, "messages": out}


def truncate(body: dict[str, Any]) -> dict[str, Any]:
    def cut(_: int, text: str) -> str:
        if get_encoder(_MODEL).count(text) <= TRUNCATE_OVER:
            return text
        return head_tail(text, TRUNCATE_OVER)

    return _with_tool_outputs(body, cut)


def recompress6(body: dict[str, Any]) -> dict[str, Any]:
    def recent_only(position: int, text: str) -> str:
        if position >= RECOMPRESS_LAST:
            return text
        tokens = get_encoder(_MODEL).count(text)
        if tokens < RECOMPRESS_MIN:
            return text
        return head_tail(text, max(1, int(tokens * RECOMPRESS_KEEP)))

    return _with_tool_outputs(body, recent_only)


# -- systems ----------------------------------------------------------------------------

# The backend kind that carries each protocol natively, and its base URL's path
# (`openai` serves chat and Responses under /v1).
BACKENDS = {"messages": ("anthropic", "")}


def _tokenomy(stack: ExitStack, ctx: Context, overrides: dict[str, Any], name: str) -> Target:
    if not any(protocol.path == ctx.path for protocol in registry().protocols.values()):
        raise Unavailable(f"not served yet: tokenomy serve has no {ctx.path}")
    kind, path = BACKENDS.get(ctx.protocol, ("openai", "/v1"))
    config = deep_merge(overrides, {
        "backends": {"replay": {"kind": kind, "base_url": ctx.upstream + path,
                                "api_key": API_KEY, "timeout": 300, "max_retries": 0}},
        "default_backend": "replay",
    })
    server = start_proxy(config, folder=ctx.folder / name)
    stack.callback(_stop, server.process)
    return Target(server.url + ctx.path)


def read_config(path: Path | None) -> dict[str, Any]:
    """The tokenomy system's config: YAML or TOML, or tokenomy's defaults."""
    if path is None:
        return {}
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: the top level must be a table of settings")
    return data


def start_passthrough(stack: ExitStack, ctx: Context) -> Target:
    # Codify is on by default and minifies JSON inside tool outputs; the baseline
    # must forward the agent's bytes as they are, so it goes off here too.
    target = _tokenomy(stack, ctx, {"compression": {"enabled": False,
                                                    "agent": {"enabled": False}},
                                    "codify": {"enabled": False}}, "passthrough")
    target.notes.append("compression and codify off")
    return target


def start_tokenomy(stack: ExitStack, ctx: Context) -> Target:
    target = _tokenomy(stack, ctx, read_config(ctx.tokenomy_config), "tokenomy")
    target.notes.append(f"config: {ctx.tokenomy_config or 'defaults'}")
    return target


def start_truncate(stack: ExitStack, ctx: Context) -> Target:
    return Target(ctx.upstream + ctx.path, transform=truncate)


def start_recompress6(stack: ExitStack, ctx: Context) -> Target:
    return Target(ctx.upstream + ctx.path, transform=recompress6)


def ensure_headroom(venv: Path | None) -> Path:
    """Headroom's `headroom` script, installing the pinned proxy into its own venv if missing."""
    venv = venv or ROOT / ".venv-headroom"
    script = venv / "bin" / "headroom"
    if script.exists():
        return script
    print(f"installing {HEADROOM_PIN} into {venv} (first run only)", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                       capture_output=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", HEADROOM_PIN],
                       check=True, capture_output=True, timeout=1800)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        output = getattr(exc, "stderr", b"") or b""
        tail = output.decode(errors="replace").strip().splitlines()[-1:] if output else []
        raise Unavailable(f"could not install {HEADROOM_PIN}: {exc} {' '.join(tail)}") from exc
    if not script.exists():
        raise Unavailable(f"{HEADROOM_PIN} installed no `headroom` script in {venv}")
    return script


def start_headroom(stack: ExitStack, ctx: Context) -> Target:
    script = ensure_headroom(ctx.headroom_venv)
    port = free_port()
    home = ctx.folder / "headroom-home"
    home.mkdir(parents=True, exist_ok=True)
    # Kompress needs a hub download (off); the rate limit (60/min) and state kept in
    # HOME would get in the way of a replay (PEERS.md).
    command = [str(script), "proxy", "--host", "127.0.0.1", "--port", str(port),
               "--openai-api-url", ctx.upstream, "--anthropic-api-url", ctx.upstream,
               "--disable-kompress", "--no-rate-limit",
               "--stateless", "--no-telemetry"]
    env = {**os.environ, "HOME": str(home), "HF_HUB_OFFLINE": "1"}
    log = (ctx.folder / "headroom.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    stack.callback(log.close)
    stack.callback(_stop, process)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process, timeout=120)
    except (RuntimeError, TimeoutError) as exc:
        tail = (ctx.folder / "headroom.log").read_text(errors="replace")[-500:]
        raise Unavailable(f"headroom proxy did not start: {exc} {tail}") from exc
    target = Target(f"http://127.0.0.1:{port}{ctx.path}", session_header=HEADROOM_SESSION)
    target.notes.append(" ".join(command[1:]).replace(str(script), "headroom"))
    return target


SYSTEMS: dict[str, Callable[[ExitStack, Context], Target]] = {
    "passthrough": start_passthrough,
    "truncate": start_truncate,
    "recompress6": start_recompress6,
    "tokenomy": start_tokenomy,
    "headroom": start_headroom,
}
