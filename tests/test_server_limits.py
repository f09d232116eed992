"""Bounded resources per client, against a real `tokenomy serve` with short clocks.

Slow headers, slow bodies and idle keep-alive connections are closed; connections
beyond `max_connections` are refused at once; a stream nobody reads is aborted
after `write_timeout` and releases its reservation and its upstream connection; a
JSON request whose client hangs up cancels its upstream call and is recorded as
cancelled. On the old code every one of these connections stayed open (190 slow
clients held 190 connections) and an abandoned request still called upstream.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from budget_support import ledger_url  # noqa: F401  (fixture: SQLite and PostgreSQL)
from tokenomy.budgets.db import make_engine
from tokenomy.testing.processes import Server, echo_config, run_proxy

CLOCKS = {"header_timeout": 1, "body_timeout": 1, "keepalive_timeout": 1, "write_timeout": 1,
          "max_connections": 40}


def config(upstream: Server, url: str) -> dict[str, Any]:
    return echo_config(upstream.v1, server=CLOCKS, ledger={"url": url},
                       teams={"t": {"tokens": 10_000_000, "window": "1d"}})


@pytest.fixture()
def proxy(upstream: Server, ledger_url: str, tmp_path: Path) -> Iterator[Server]:  # noqa: F811
    with run_proxy(config(upstream, ledger_url), folder=tmp_path) as server:
        server.ledger = make_engine(ledger_url)  # type: ignore[attr-defined]
        httpx.post(server.v1 + "/chat/completions", timeout=30,  # warm: first call loads
                   json={"model": "echo", "messages": [{"role": "user", "content": "hi"}]})
        yield server
        server.ledger.dispose()  # type: ignore[attr-defined]


def connect(proxy: Server, payload: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port))
    if payload:
        sock.sendall(payload)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing (None: still open after `seconds`)."""
    sock.settimeout(seconds)
    got = b""
    try:
        while chunk := sock.recv(4096):
            got += chunk
    except TimeoutError:
        return None
    return got


def post_raw(body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(data)).encode() + b"\r\n\r\n" + data)


def wait_for(engine: Engine, sql: str, until: Any, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        with engine.connect() as conn:
            found = conn.execute(text(sql)).all()
        if until(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_slow_headers_bodies_and_idle_connections_are_closed(proxy: Server) -> None:
    slow_heads = [connect(proxy, b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
                  for _ in range(10)]
    slow_body = connect(proxy, b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                               b"content-length: 100\r\n\r\n{\"mo")
    idle = connect(proxy, post_raw({"model": "echo",
                                    "messages": [{"role": "user", "content": "hi"}]}))
    for sock in slow_heads:
        assert (closed_within(sock, 5) or b"").startswith(b"HTTP/1.1 408")
    assert (closed_within(slow_body, 5) or b"").startswith(b"HTTP/1.1 408")
    answered = closed_within(idle, 5)  # the answer, then closed when keep-alive idles out
    assert answered is not None and answered.startswith(b"HTTP/1.1 200")
    assert httpx.get(proxy.url + "/healthz").status_code == 200


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_connections_beyond_the_cap_are_refused(proxy: Server) -> None:
    held = [connect(proxy) for _ in range(CLOCKS["max_connections"] + 10)]
    refused = 0
    for sock in held[-10:]:
        got = closed_within(sock, 0.5)
        refused += bool(got and got.startswith(b"HTTP/1.1 503"))
    assert refused == 10
    for sock in held:
        sock.close()
    time.sleep(0.3)  # the server sees them go, and has room again
    assert httpx.get(proxy.url + "/healthz").status_code == 200


def assert_cancelled_and_upstream_closed(proxy: Server, upstream: Server, *, within: float,
                                        why: str) -> None:
    """Team t's one request settled as cancelled (499), nothing held, and the upstream
    saw its connection closed within `within` seconds."""
    engine = proxy.ledger  # type: ignore[attr-defined]
    rows = wait_for(engine, "select outcome, status from tk_requests where team='t'", bool)
    assert rows == [("cancelled", 499)]
    assert wait_for(engine, "select count(*) from tk_reservations",
                    lambda r: r[0][0] == 0)[0][0] == 0
    deadline = time.monotonic() + within
    while httpx.get(upstream.url + "/_stats").json()["hung_up"] < 1:
        assert time.monotonic() < deadline, why
        time.sleep(0.1)


def test_a_stream_nobody_reads_releases_its_reservation_and_upstream(
    proxy: Server, upstream: Server
) -> None:
    httpx.post(upstream.url + "/_reset")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", proxy.port))
    sock.sendall(post_raw({"model": "fault:firehose", "stream": True, "tokenomy": {"team": "t"},
                           "messages": [{"role": "user", "content": "flood me"}]}))
    assert_cancelled_and_upstream_closed(proxy, upstream, within=10,
                                         why="the upstream stream was never closed")
    sock.close()


def test_a_json_client_that_hangs_up_cancels_the_upstream_call(
    proxy: Server, upstream: Server
) -> None:
    httpx.post(upstream.url + "/_reset")
    with contextlib.suppress(httpx.TimeoutException):
        httpx.post(proxy.v1 + "/chat/completions", timeout=1,
                   json={"model": "fault:hang", "tokenomy": {"team": "t"},
                         "messages": [{"role": "user", "content": "wait for me"}]})
    assert_cancelled_and_upstream_closed(proxy, upstream, within=5,
                                         why="the upstream call outlived its client")
