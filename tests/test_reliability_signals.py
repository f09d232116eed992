"""Process signals with requests in flight: SIGTERM drains them, SIGKILL loses no settled row
and leaves no reservation that the next start does not reconcile."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from perf_support import db_url, ledger_rows, open_reservations, post
from tokenomy.testing.processes import Server, echo_config, start_proxy

# ~50 words: `fault:slow` streams one word per chunk, 20 ms apart (~1 s in all).
LONG = " ".join(f"word{i}" for i in range(50))


def _slow_stream(proxy: Server, started: threading.Event, out: dict, team: str | None = None
                 ) -> None:
    body: dict = {"model": "fault:slow", "stream": True,
                  "messages": [{"role": "user", "content": LONG}]}
    if team:
        body["tokenomy"] = {"team": team}
    try:
        with httpx.stream("POST", proxy.v1 + "/chat/completions", json=body,
                          timeout=30) as response:
            out["status"] = response.status_code
            out["request_id"] = response.headers.get("x-tokenomy-request-id")
            text = ""
            for piece in response.iter_text():
                text += piece
                started.set()
            out["text"] = text
    except httpx.HTTPError as exc:
        out["error"] = repr(exc)
    finally:
        started.set()


def test_sigterm_drains_inflight_stream(tmp_path: Path, upstream: Server) -> None:
    config = echo_config(upstream.v1, server={"drain_seconds": 15},
                         ledger={"url": db_url(tmp_path)})
    proxy = start_proxy(config, folder=tmp_path)
    try:
        started, out = threading.Event(), {}
        worker = threading.Thread(target=_slow_stream, args=(proxy, started, out))
        worker.start()
        assert started.wait(20)
        began = time.monotonic()
        proxy.process.send_signal(signal.SIGTERM)
        worker.join(30)
        assert out.get("status") == 200, out
        assert out["text"].endswith("data: [DONE]\n\n"), out["text"][-200:]
        assert "word49" in out["text"]
        # uvicorn re-raises the signal after a graceful shutdown: -SIGTERM is a clean exit.
        assert proxy.process.wait(20) in (0, -signal.SIGTERM)
        assert time.monotonic() - began < 15
        # the drained stream was settled before exit
        rows = ledger_rows(db_url(tmp_path))
        assert [r["outcome"] for r in rows if r["request_id"] == out["request_id"]] == ["ok"]
    finally:
        if proxy.process.poll() is None:
            proxy.process.kill()
            proxy.process.wait()


def test_sigkill_loses_no_settled_row_and_next_start_reconciles(tmp_path: Path,
                                                                upstream: Server) -> None:
    url = db_url(tmp_path)
    config = echo_config(upstream.v1, ledger={"url": url, "owner_ttl": 1,
                                              "reconcile_interval": 0.5},
                         teams={"acme": {"tokens": 100_000_000}})
    first = start_proxy(config, folder=tmp_path)
    settled: list[str] = []
    flights: list[tuple[threading.Thread, dict]] = []
    try:
        for _ in range(5):
            response = post(first, {"model": "echo", "messages": [{"role": "user", "content": "x"}],
                                    "tokenomy": {"team": "acme"}})
            assert response.status_code == 200
            settled.append(response.headers["x-tokenomy-request-id"])
        for _ in range(3):
            started, out = threading.Event(), {}
            worker = threading.Thread(target=_slow_stream, args=(first, started, out, "acme"))
            worker.start()
            assert started.wait(20)
            flights.append((worker, out))
        assert open_reservations(url) == 3  # the in-flight streams hold reservations
        first.process.kill()
        first.process.wait()
    finally:
        if first.process.poll() is None:
            first.process.kill()
    for worker, _ in flights:
        worker.join(30)
    rows = {r["request_id"]: r for r in ledger_rows(url)}
    for request_id in settled:  # nothing that was settled is lost
        assert rows[request_id]["outcome"] == "ok"
    time.sleep(1.5)  # the killed owner's heartbeat is now older than owner_ttl
    second = start_proxy(config, folder=tmp_path)
    try:
        deadline = time.monotonic() + 15
        while open_reservations(url) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert open_reservations(url) == 0
        rows_after = ledger_rows(url)
        ids = [r["request_id"] for r in rows_after]
        assert len(ids) == len(set(ids)) == 8  # 5 settled + 3 reconciled, once each
        flying = {out["request_id"] for _, out in flights}
        assert {r["outcome"] for r in rows_after if r["request_id"] in flying} == {"abandoned"}
        # and the new process serves
        assert post(second, {"model": "echo", "messages": [{"role": "user", "content": "x"}],
                             "tokenomy": {"team": "acme"}}).status_code == 200
    finally:
        second.process.terminate()
        try:
            second.process.wait(15)
        except Exception:
            second.process.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_sigterm_idle_exits_quickly(tmp_path: Path, upstream: Server, sig: int) -> None:
    proxy = start_proxy(echo_config(upstream.v1, ledger={"enabled": False}), folder=tmp_path)
    began = time.monotonic()
    proxy.process.send_signal(sig)
    assert proxy.process.wait(15) in (0, -sig)
    assert time.monotonic() - began < 10
