"""GET /metrics of a real `tokenomy serve`, scraped and parsed with prometheus_client's parser.

Each test reads the difference between two scrapes around the requests it
makes, so the counters are checked against what really happened: answers,
streams, refusals, fallbacks, backend failures, tokens, dollars, savings and
compression time; the ledger's gauges (reservations in flight, spool depth,
ledger up) and settle failures through a PostgreSQL outage; the admin-key
option; and `--workers 2`, whose scrapes sum both processes.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import budget_support
from tokenomy.testing.processes import Server, echo_config, run_proxy
from tokenomy.testing.relay import Relay

ROUTE = "/v1/chat/completions"
PRICE_IN, PRICE_OUT = 1e-6, 2e-6
MESSAGES = [{"role": "user", "content": "Count me in the metrics."}]


def scrape(proxy: Server, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(proxy.url + "/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: dict[Any, float], name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


def _config(upstream: Server, **extra: Any) -> dict[str, Any]:
    return echo_config(
        upstream.v1,
        models={"echo": {"backend": "test", "model": "echo-model"},
                "flaky": {"backend": "test", "model": "fault:500", "fallbacks": ["echo"]}},
        backends={"test": {"kind": "openai", "base_url": upstream.v1, "timeout": 5,
                           "max_retries": 0}},
        ledger={"prices": {"echo-model": {"input_cost_per_token": PRICE_IN,
                                          "output_cost_per_token": PRICE_OUT}},
                **extra.pop("ledger", {})},
        teams={"acme": {"usd": 100.0}, "broke": {"tokens": 10}},
        **extra,
    )


@pytest.fixture(scope="module")
def proxy(upstream: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_proxy(_config(upstream), folder=tmp_path_factory.mktemp("metrics")) as server:
        yield server


def _post(proxy: Server, team: str = "acme", **body: Any) -> httpx.Response:
    payload: dict[str, Any] = {"model": "echo", "messages": MESSAGES, **body}
    payload["tokenomy"] = {"team": team, **payload.get("tokenomy", {})}
    return httpx.post(proxy.v1 + "/chat/completions", json=payload, timeout=30)


def _stream(proxy: Server, team: str = "acme") -> None:
    body = {"model": "echo", "stream": True, "messages": MESSAGES, "tokenomy": {"team": team}}
    with httpx.stream("POST", proxy.v1 + "/chat/completions", json=body, timeout=30) as response:
        assert response.status_code == 200
        for _ in response.iter_lines():
            pass


def test_requests_latency_tokens_and_money(proxy: Server) -> None:
    before = scrape(proxy)
    answers = [_post(proxy) for _ in range(3)]
    _stream(proxy)
    costs = sum(float(r.headers["x-tokenomy-cost-usd"]) for r in answers)
    usage = [r.json()["usage"] for r in answers]
    time.sleep(0.2)  # the stream's end is observed just after its last byte
    after = scrape(proxy)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"route": ROUTE, "team": "acme", "model": "echo", "status": "200"}
    assert delta("tokenomy_requests_total", **ok) == 4
    assert delta("tokenomy_request_duration_seconds_count", route=ROUTE, model="echo") == 4
    assert delta("tokenomy_added_duration_seconds_count", route=ROUTE) >= 4
    assert delta("tokenomy_upstream_duration_seconds_count", backend="test",
                 model="echo-model") == 4
    # Every request lands in some bucket of the histogram, the +Inf one at least.
    assert delta("tokenomy_request_duration_seconds_bucket", route=ROUTE, model="echo",
                 le="+Inf") == 4
    prompt = sum(u["prompt_tokens"] for u in usage)
    output = sum(u["completion_tokens"] for u in usage)
    tokens = {"team": "acme", "model": "echo"}
    stream_prompt = delta("tokenomy_tokens_total", **tokens, bucket="input") - prompt
    assert stream_prompt == usage[0]["prompt_tokens"]  # the stream asked the same question
    assert delta("tokenomy_tokens_total", **tokens, bucket="output") == output + usage[0][
        "completion_tokens"]
    assert delta("tokenomy_tokens_total", **tokens, bucket="original") == prompt + stream_prompt
    stream_cost = usage[0]["prompt_tokens"] * PRICE_IN + usage[0]["completion_tokens"] * PRICE_OUT
    assert delta("tokenomy_cost_usd_total", **tokens) == pytest.approx(costs + stream_cost,
                                                                       abs=1e-5)
    assert value(after, "tokenomy_ledger_up") == 1
    assert value(after, "tokenomy_ledger_reservations_in_flight") == 0
    assert value(after, "tokenomy_ledger_spool_depth") == 0


def test_refusals_fallbacks_and_backend_errors(proxy: Server) -> None:
    before = scrape(proxy)
    assert _post(proxy, team="broke").status_code == 429
    assert _post(proxy, model="flaky").status_code == 200
    assert _post(proxy, model="fault:503").status_code == 502
    after = scrape(proxy)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("tokenomy_budget_refusals_total", team="broke") == 1
    assert delta("tokenomy_requests_total", team="broke", status="429") == 1
    assert delta("tokenomy_fallbacks_total", fallback="flaky -> echo") == 1
    assert delta("tokenomy_upstream_errors_total", backend="test", status="500") == 1
    assert delta("tokenomy_upstream_errors_total", backend="test", status="503") == 1
    assert delta("tokenomy_requests_total", model="fault:503", status="502") == 1


def test_savings_and_compression_time(proxy: Server) -> None:
    rows = [{"id": i, "name": f"item {i}", "price": i * 1.5} for i in range(80)]
    content = "Which item is the dearest?\n" + json.dumps(rows, indent=4)
    before = scrape(proxy)
    response = _post(proxy, messages=[{"role": "user", "content": content}],
                     tokenomy={"compress": {"method": "lossless", "target_ratio": 1.5}})
    assert response.status_code == 200
    saved = (int(response.headers["x-tokenomy-prompt-tokens-original"])
             - int(response.headers["x-tokenomy-prompt-tokens-sent"]))
    assert saved > 0
    after = scrape(proxy)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("tokenomy_saved_tokens_total", team="acme") == saved
    assert delta("tokenomy_saved_usd_total", team="acme") == pytest.approx(saved * PRICE_IN)
    assert delta("tokenomy_compression_duration_seconds_count") >= 1
    assert delta("tokenomy_tokens_total", bucket="original") - delta(
        "tokenomy_tokens_total", bucket="sent") == saved


def test_reservations_in_flight_while_a_stream_runs(proxy: Server) -> None:
    words = [{"role": "user", "content": " ".join(["word"] * 60)}]
    body = {"model": "fault:slow", "stream": True, "messages": words,
            "tokenomy": {"team": "acme"}}
    with httpx.stream("POST", proxy.v1 + "/chat/completions", json=body, timeout=30) as response:
        lines = response.iter_lines()
        next(lines)
        assert value(scrape(proxy), "tokenomy_ledger_reservations_in_flight") == 1
        for _ in lines:
            pass
    time.sleep(0.2)
    assert value(scrape(proxy), "tokenomy_ledger_reservations_in_flight") == 0


def test_metrics_can_require_the_admin_key(upstream: Server, tmp_path: Path) -> None:
    config = _config(upstream, server={"admin_key": "metrics-admin-key-123"},
                     telemetry={"metrics_require_admin": True})
    with run_proxy(config, folder=tmp_path) as proxy:
        refused = httpx.get(proxy.url + "/metrics")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_api_key"
        wrong = httpx.get(proxy.url + "/metrics", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        samples = scrape(proxy, authorization="Bearer metrics-admin-key-123")
        assert ("tokenomy_ledger_up", frozenset()) in samples


def test_metrics_off_is_a_404(upstream: Server, tmp_path: Path) -> None:
    with run_proxy(_config(upstream, telemetry={"metrics": False}), folder=tmp_path) as proxy:
        assert httpx.get(proxy.url + "/metrics").status_code == 404
        assert _post(proxy).status_code == 200


def test_workers_share_one_set_of_metrics(upstream: Server, tmp_path: Path) -> None:
    with run_proxy(_config(upstream), folder=tmp_path, args=["--workers", "2"]) as proxy:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: _post(proxy).status_code, range(40)))
        assert statuses == [200] * 40
        time.sleep(0.2)
        # Whichever worker answers a scrape, it counts the requests of both.
        for _ in range(6):
            samples = scrape(proxy)
            assert total(samples, "tokenomy_requests_total", team="acme") == 40
            assert total(samples, "tokenomy_request_duration_seconds_count", model="echo") == 40
        pids = set(re.findall(r"Started server process \[(\d+)\]", "\n".join(proxy.log_lines())))
        assert len(pids) == 2


@pytest.mark.postgres
def test_settle_failures_and_spool_depth_through_an_outage(upstream: Server,
                                                           tmp_path: Path) -> None:
    gen = budget_support.pg_schema_url()
    direct = next(gen)
    relay = Relay(5432).up()
    try:
        url = direct.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}")
        config = _config(upstream, ledger={"url": url, "owner_ttl": 3,
                                           "spool_path": str(tmp_path / "spool.jsonl"),
                                           "settle_retries": 1})
        with run_proxy(config, folder=tmp_path) as proxy:
            before = scrape(proxy)
            words = [{"role": "user", "content": " ".join(["word"] * 40)}]
            body = {"model": "fault:slow", "stream": True, "messages": words,
                    "tokenomy": {"team": "acme"}}
            with httpx.stream("POST", proxy.v1 + "/chat/completions", json=body,
                              timeout=30) as response:
                lines = response.iter_lines()
                next(lines)
                relay.down()  # the database goes away while the stream runs
                for _ in lines:
                    pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                down = scrape(proxy)
                if value(down, "tokenomy_ledger_spool_depth") >= 1:
                    break
                time.sleep(0.2)
            assert value(down, "tokenomy_ledger_up") == 0
            assert value(down, "tokenomy_ledger_spool_depth") == 1
            failures = "tokenomy_ledger_settle_failures_total"
            assert value(down, failures, reason="spooled") - value(
                before, failures, reason="spooled") == 1
            relay.up()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                back = scrape(proxy)
                if value(back, "tokenomy_ledger_spool_depth") == 0:
                    break
                time.sleep(0.3)
            assert value(back, "tokenomy_ledger_up") == 1
            assert value(back, "tokenomy_ledger_spool_depth") == 0
    finally:
        relay.down()
        with contextlib.suppress(StopIteration):
            next(gen)  # drops the schema
