"""Upstream faults through a real proxy with the ledger on: retries only where safe,
fallbacks to a second backend, clear errors, one ledger row per call, no reservation left.

Faults come from the deterministic test upstream (`fault:*` model names) and a
backend whose port refuses connections. Retries: `max_retries=2` (3 tries).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from perf_support import (
    db_url,
    ledger_rows,
    open_reservations,
    post,
    upstream_count,
)
from tokenomy.testing.processes import Server, echo_config, free_port, run_proxy

TEAM = {"team": "acme"}  # a team with a budget: every call reserves, then settles
SEEN: list[str] = []  # request ids of every call that reached the pipeline


def _body(model: str, stream: bool = False) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "tokenomy": TEAM}
    if stream:
        body["stream"] = True
    return body


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def proxy(upstream: Server, folder: Path) -> Iterator[Server]:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: connection refused
    config = echo_config(
        upstream.v1,
        backends={
            "test": {"kind": "openai", "base_url": upstream.v1, "timeout": 2,
                     "max_retries": 2},
            "dead": {"kind": "openai", "base_url": dead, "max_retries": 1,
                     "connect_timeout": 1},
            "second": {"kind": "openai", "base_url": upstream.v1, "max_retries": 0},
        },
        models={
            "dead-only": {"backend": "dead", "model": "echo-model"},
            "second-echo": {"backend": "second", "model": "echo-model"},
            "dead-then-second": {"backend": "dead", "model": "echo-model",
                                 "fallbacks": ["second-echo"]},
            "503-then-second": {"backend": "test", "model": "fault:503",
                                "fallbacks": ["second-echo"]},
        },
        ledger={"url": db_url(folder), "owner_ttl": 5, "reconcile_interval": 1},
        teams={"acme": {"tokens": 100_000_000}},
    )
    with run_proxy(config, folder=folder) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(upstream: Server) -> None:
    httpx.post(upstream.url + "/_reset")


def _call(proxy: Server, model: str, status: int, stream: bool = False) -> httpx.Response:
    response = post(proxy, _body(model, stream))
    SEEN.append(response.headers["x-tokenomy-request-id"])
    assert response.status_code == status, response.text
    if status >= 400:
        assert set(response.json()["error"]) >= {"message", "type", "code"}
    return response


def test_refused_connection_is_502_after_retries(proxy: Server) -> None:
    error = _call(proxy, "dead-only", 502).json()["error"]
    assert "unreachable" in error["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_refused_connection_falls_back_to_second_backend(proxy: Server, stream: bool) -> None:
    response = _call(proxy, "dead-then-second", 200, stream)
    if stream:
        assert '"content":"echo:"' in response.text and response.text.endswith("[DONE]\n\n")
    else:
        assert response.json()["choices"][0]["message"]["content"] == "echo: hi"


def test_5xx_falls_back_after_retries(proxy: Server, upstream: Server) -> None:
    _call(proxy, "503-then-second", 200)
    assert upstream_count(upstream, "fault:503") == 3  # retried, then the fallback
    assert upstream_count(upstream, "echo-model") == 1


def test_read_timeout_is_504_and_never_retried(proxy: Server, upstream: Server) -> None:
    # The backend may still be working (and billing): a read timeout is not retried.
    _call(proxy, "fault:timeout", 504)
    assert upstream_count(upstream, "fault:timeout") == 1


@pytest.mark.parametrize(("fault", "status"), [("fault:500", 502), ("fault:503", 502),
                                               ("fault:502", 502)])
def test_5xx_retried_then_502(proxy: Server, upstream: Server, fault: str, status: int) -> None:
    _call(proxy, fault, status)
    assert upstream_count(upstream, fault) == 3


def test_429_with_retry_after_is_retried_and_passed_on(proxy: Server, upstream: Server) -> None:
    response = _call(proxy, "fault:429", 429)
    assert upstream_count(upstream, "fault:429") == 3
    assert response.headers.get("retry-after") == "0"
    assert response.json()["error"]["type"] == "rate_limit_error"


def test_429_without_retry_after_backs_off(proxy: Server, upstream: Server) -> None:
    response = _call(proxy, "fault:429-noretry", 429)
    assert upstream_count(upstream, "fault:429-noretry") == 3
    assert "retry-after" not in response.headers


def test_flaky_backend_recovers(proxy: Server, upstream: Server) -> None:
    _call(proxy, "fault:flaky2", 200)
    assert upstream_count(upstream, "fault:flaky2") == 3


def test_malformed_json_is_502_not_retried(proxy: Server, upstream: Server) -> None:
    error = _call(proxy, "fault:malformed", 502).json()["error"]
    assert "malformed" in error["message"]
    assert upstream_count(upstream, "fault:malformed") == 1


def test_stream_cut_midway_is_never_retried(proxy: Server, upstream: Server) -> None:
    response = _call(proxy, "fault:cut", 200, stream=True)
    assert '"error"' in response.text  # an error event ends the stream
    assert "[DONE]" not in response.text
    assert upstream_count(upstream, "fault:cut") == 1


def test_stream_refused_upfront_is_retried_then_502(proxy: Server, upstream: Server) -> None:
    _call(proxy, "fault:503", 502, stream=True)
    assert upstream_count(upstream, "fault:503") == 3  # nothing was streamed yet: safe


def test_every_call_one_ledger_row_and_no_reservation_left(proxy: Server,
                                                           folder: Path) -> None:
    post(proxy, _body("echo"))  # one more, so the ledger's queue has drained the others
    url = db_url(folder)
    rows = ledger_rows(url)
    by_id: dict[str, int] = {}
    for row in rows:
        by_id[row["request_id"]] = by_id.get(row["request_id"], 0) + 1
    assert SEEN, "the fault tests ran first"
    for request_id in SEEN:
        assert by_id.get(request_id) == 1, request_id
    assert all(count == 1 for count in by_id.values())
    errors = {r["request_id"]: r for r in rows if r["request_id"] in SEEN}
    assert {r["outcome"] for r in errors.values()} <= {"ok", "error"}
    assert open_reservations(url) == 0
