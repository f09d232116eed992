"""The request log of a real `tokenomy serve`: one JSON line per request, parsed here.

One proxy with keys, prices and a team budget in front of the test upstream:
answers, streams, fallbacks, backend failures, bad bodies and refused keys each
leave one line with the fields the issue lists; errors at warning with the
backend's own status; a stream's line comes when the stream ends; and no
credential (tokenomy key, the backend's api key, the admin key, bearer
headers) appears anywhere in the process's output, at debug level.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tokenomy.budgets.keys import KeyStore
from tokenomy.budgets.ledger import Ledger
from tokenomy.budgets.settings import LedgerSettings
from tokenomy.testing.processes import Server, run_proxy

BACKEND_KEY = "sk-backend-" + secrets.token_hex(16)
ADMIN_KEY = "admin-" + secrets.token_hex(16)
PRICE_IN, PRICE_OUT = 1e-6, 2e-6
MESSAGES = [{"role": "user", "content": "Say hello to the request log."}]


def _config(upstream: Server, folder: Path) -> dict[str, Any]:
    return {
        "backends": {"test": {"kind": "openai", "base_url": upstream.v1, "api_key": BACKEND_KEY,
                              "timeout": 5, "max_retries": 0}},
        "models": {"echo": {"backend": "test", "model": "echo-model"},
                   "flaky": {"backend": "test", "model": "fault:500", "fallbacks": ["echo"]}},
        "default_backend": "test",
        "server": {"admin_key": ADMIN_KEY},
        "ledger": {"url": f"sqlite:///{folder / 'ledger.db'}",
                   "prices": {"echo-model": {"input_cost_per_token": PRICE_IN,
                                             "output_cost_per_token": PRICE_OUT}}},
        "teams": {"acme": {"usd": 5.0, "tokens": 1_000_000}},
    }


@pytest.fixture(scope="module")
def logged(upstream: Server, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Server, str, Path]]:
    folder = tmp_path_factory.mktemp("request-log")
    ledger = Ledger(f"sqlite:///{folder / 'ledger.db'}").open(background=False)
    _, key = KeyStore(ledger.engine, LedgerSettings()).create("acme", name="ci-bot")
    ledger.close()
    with run_proxy(_config(upstream, folder), folder=folder,
                   args=["--log-level", "debug"]) as proxy:
        yield proxy, key, folder


def _post(proxy: Server, key: str | None, **body: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    payload = {"model": "echo", "messages": MESSAGES, **body}
    return httpx.post(proxy.v1 + "/chat/completions", json=payload, headers=headers, timeout=30)


def request_lines(proxy: Server) -> dict[str, dict[str, Any]]:
    """The request log's lines by request id (every line must be JSON)."""
    found = {}
    for line in proxy.log_lines():
        data = json.loads(line)
        if data["logger"] == "tokenomy.request":
            found[data["request_id"]] = data
    return found


def line_of(proxy: Server, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = request_lines(proxy).get(request_id)
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no request log line for {request_id}")


def test_an_answer_is_one_info_line_with_every_field(logged: tuple[Server, str, Path]) -> None:
    proxy, key, _ = logged
    response = _post(proxy, key, tokenomy={"step": "draft"})
    assert response.status_code == 200, response.text
    line = line_of(proxy, response.headers["x-tokenomy-request-id"])
    usage = response.json()["usage"]
    assert line["level"] == "info" and line["msg"] == "request"
    assert line["time"].endswith("Z")
    assert (line["route"], line["protocol"]) == ("/v1/chat/completions", "openai.chat")
    assert (line["team"], line["key"], line["step"]) == ("acme", "ci-bot", "draft")
    assert (line["model"], line["backend"], line["upstream_model"]) == ("echo", "test",
                                                                        "echo-model")
    assert (line["status"], line["outcome"], line["stream"]) == (200, "ok", False)
    assert "fallback" not in line and "error" not in line
    # Latency: total = upstream + what tokenomy added.
    assert line["latency_ms"] > 0 and line["upstream_ms"] > 0
    assert line["added_ms"] == pytest.approx(line["latency_ms"] - line["upstream_ms"], abs=0.01)
    # Tokens: what the client sent, what left, what the backend billed.
    assert line["tokens_original"] == int(response.headers["x-tokenomy-prompt-tokens-original"])
    assert line["tokens_sent"] == int(response.headers["x-tokenomy-prompt-tokens-sent"])
    assert line["tokens_input"] == usage["prompt_tokens"]
    assert line["tokens_output"] == usage["completion_tokens"]
    assert line["tokens_cache_read"] == 0 and line["tokens_reasoning"] == 0
    cost = usage["prompt_tokens"] * PRICE_IN + usage["completion_tokens"] * PRICE_OUT
    assert line["cost_usd"] == pytest.approx(cost)
    assert float(response.headers["x-tokenomy-cost-usd"]) == pytest.approx(cost, abs=1e-6)
    assert line["settle"] == "landed"
    assert line["budget_remaining"].startswith("usd=")


def test_savings_by_technique_are_in_the_line(logged: tuple[Server, str, Path]) -> None:
    proxy, key, _ = logged
    rows = [{"id": i, "name": f"item {i}", "tags": ["a", "b"], "price": i * 1.5}
            for i in range(60)]
    content = "Which item is the dearest?\n" + json.dumps(rows, indent=4)
    response = _post(proxy, key, messages=[{"role": "user", "content": content}],
                     tokenomy={"compress": {"method": "lossless", "target_ratio": 1.5}})
    assert response.status_code == 200, response.text
    line = line_of(proxy, response.headers["x-tokenomy-request-id"])
    assert line["saved_tokens"] > 0 and sum(line["savings"].values()) == line["saved_tokens"]
    assert line["tokens_sent"] == line["tokens_original"] - line["saved_tokens"]
    assert line["savings_usd"]  # the same techniques, priced at the model's input rate


def test_a_stream_is_logged_when_it_ends(logged: tuple[Server, str, Path]) -> None:
    proxy, key, _ = logged
    headers = {"authorization": f"Bearer {key}"}
    # 80 words at 20 ms each: the stream runs about 1.6 s.
    words = [{"role": "user", "content": " ".join(["word"] * 80)}]
    body = {"model": "fault:slow", "stream": True, "messages": words}
    with httpx.stream("POST", proxy.v1 + "/chat/completions", json=body, headers=headers,
                      timeout=30) as response:
        request_id = response.headers["x-tokenomy-request-id"]
        # Known when the headers leave: what is left of the budget (the hold counted).
        assert response.headers["x-tokenomy-budget-remaining"].startswith("usd=")
        lines = response.iter_lines()
        next(line for line in lines if line.startswith("data:"))
        time.sleep(0.3)
        assert request_id not in request_lines(proxy)  # still streaming
        rest = [line for line in lines if line]
    assert rest[-1] == "data: [DONE]"
    line = line_of(proxy, request_id)
    assert (line["stream"], line["status"], line["outcome"]) == (True, 200, "ok")
    assert line["tokens_output"] > 0 and line["upstream_ms"] > 20


def test_fallback_is_a_warning_a_header_and_a_ledger_column(
        logged: tuple[Server, str, Path]) -> None:
    proxy, key, folder = logged
    response = _post(proxy, key, model="flaky")
    assert response.status_code == 200, response.text
    assert response.headers["x-tokenomy-fallback"] == "flaky -> echo"
    request_id = response.headers["x-tokenomy-request-id"]
    line = line_of(proxy, request_id)
    assert line["level"] == "warning"
    assert (line["fallback"], line["upstream_status"], line["status"]) == ("flaky -> echo",
                                                                           500, 200)
    with sqlite3.connect(folder / "ledger.db") as db:
        stored = db.execute("SELECT fallback, status FROM tk_requests WHERE request_id = ?",
                            (request_id,)).fetchone()
    assert stored == ("flaky -> echo", 200)


def test_backend_failure_is_a_warning_with_the_backends_status(
        logged: tuple[Server, str, Path]) -> None:
    proxy, key, _ = logged
    response = _post(proxy, key, model="fault:503")
    assert response.status_code == 502
    line = line_of(proxy, response.headers["x-tokenomy-request-id"])
    assert line["level"] == "warning"
    assert (line["status"], line["outcome"], line["upstream_status"]) == (502, "error", 503)
    assert "injected 503" in line["error"] and line["error_type"] == "bad_gateway"


def test_refusals_before_the_backend_are_logged_too(logged: tuple[Server, str, Path]) -> None:
    proxy, key, _ = logged
    bad_json = httpx.post(proxy.v1 + "/chat/completions", content=b"{not json",
                          headers={"authorization": f"Bearer {key}"})
    no_key = _post(proxy, None)
    unknown_team = _post(proxy, key, tokenomy={"team": "other"})
    for response, status in ((bad_json, 400), (no_key, 401), (unknown_team, 403)):
        assert response.status_code == status
        line = line_of(proxy, response.headers["x-tokenomy-request-id"])
        assert (line["level"], line["status"], line["outcome"]) == ("warning", status, "error")
        assert line["error"] == response.json()["error"]["message"]


def test_no_secret_reaches_the_log(logged: tuple[Server, str, Path], upstream: Server) -> None:
    proxy, key, _ = logged
    forged = "tkn_" + secrets.token_hex(6) + "_" + secrets.token_urlsafe(32)
    client_key = "sk-proj-" + secrets.token_urlsafe(24)
    ids = [
        _post(proxy, key, tokenomy={"user": client_key}),  # a client puts a key where it should not
        _post(proxy, forged),
        httpx.post(proxy.v1 + "/chat/completions", json={"model": "echo", "messages": MESSAGES},
                   headers={"x-api-key": forged}),
        _post(proxy, key, model="fault:502"),
    ]
    metrics = httpx.get(proxy.url + "/metrics", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert metrics.status_code == 200
    for response in ids:
        line_of(proxy, response.headers["x-tokenomy-request-id"])
    # The backend really received its key: it was in play on every forwarded call.
    sent = httpx.get(upstream.url + "/_last_headers").json()
    assert sent["authorization"] == f"Bearer {BACKEND_KEY}"
    output = "\n".join(proxy.log_lines())
    for secret in (key, key.rsplit("_", 1)[1], forged, BACKEND_KEY, ADMIN_KEY, client_key):
        assert secret not in output
    # At debug level a request's line lists what each stage did.
    assert line_of(proxy, ids[0].headers["x-tokenomy-request-id"])["stages"]


def test_text_format_and_warning_level(upstream: Server, tmp_path: Path) -> None:
    config = _config(upstream, tmp_path)
    with run_proxy(config, folder=tmp_path,
                   args=["--log-format", "text", "--log-level", "warning"]) as proxy:
        ok = _post(proxy, None, model="echo")  # dev mode here: no key exists in this ledger
        failed = _post(proxy, None, model="fault:502")
        assert (ok.status_code, failed.status_code) == (200, 502)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
                failed.headers["x-tokenomy-request-id"] in line for line in proxy.log_lines()):
            time.sleep(0.05)
        lines = proxy.log_lines()
    requests = [line for line in lines if " tokenomy.request " in line]
    assert len(requests) == 1  # the answer was at info: not shown at warning level
    line = requests[0]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING tokenomy\.request tk-", line)
    assert failed.headers["x-tokenomy-request-id"] in line
    assert "fault:502 -> test/fault:502 502 error upstream 502" in line
    assert "error: backend 'test' failed with 502" in line
    assert not any(line.startswith("{") for line in lines)  # text, not JSON


def test_the_in_process_sdk_logs_the_same_line(upstream: Server, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    import tokenomy
    from tokenomy.config import Settings

    settings = Settings.model_validate(_config(upstream, tmp_path))
    with caplog.at_level(logging.INFO, logger="tokenomy.request"):
        client = tokenomy.Client(settings)
        try:
            completion = client.chat.completions.create(model="echo", messages=MESSAGES)
        finally:
            client.close()
    records = [r for r in caplog.records if r.name == "tokenomy.request"]
    assert len(records) == 1
    fields = records[0].request.fields()  # type: ignore[attr-defined]
    assert (fields["route"], fields["model"], fields["status"]) == ("sdk", "echo", 200)
    assert completion.usage is not None
    assert fields["tokens_output"] == completion.usage.completion_tokens


def test_every_protocol_endpoint_is_logged_and_counted(upstream: Server, tmp_path: Path) -> None:
    """/v1/messages and /v1/responses get the request log and metrics with no code of
    their own: the engine observes every call, the endpoint only names its route."""
    import anthropic
    import openai

    config = _config(upstream, tmp_path)
    config["backends"]["claude"] = {"kind": "anthropic", "base_url": upstream.url,
                                    "api_key": BACKEND_KEY, "timeout": 5, "max_retries": 0}
    config["models"]["claude-sonnet-4-6"] = {"backend": "claude"}
    with run_proxy(config, folder=tmp_path) as proxy:
        claude = anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0)
        message = claude.messages.with_raw_response.create(
            model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES)
        responses = openai.OpenAI(base_url=proxy.v1, api_key="unused", max_retries=0)
        answer = responses.responses.with_raw_response.create(model="echo", input="Hi there.")
        bad = httpx.post(proxy.url + "/v1/messages", json={"model": "claude-sonnet-4-6"})
        assert bad.status_code == 400 and bad.json()["type"] == "error"  # Anthropic's shape
        lines = {route: line_of(proxy, response.headers["x-tokenomy-request-id"])
                 for route, response in (("messages", message), ("responses", answer),
                                         ("bad", bad))}
        metrics = httpx.get(proxy.url + "/metrics").text
    usage = message.parse().usage
    assert (lines["messages"]["route"], lines["messages"]["protocol"]) == (
        "/v1/messages", "anthropic.messages")
    assert lines["messages"]["backend"] == "claude"
    assert lines["messages"]["tokens_output"] == usage.output_tokens
    assert (lines["responses"]["route"], lines["responses"]["protocol"]) == (
        "/v1/responses", "openai.responses")
    assert lines["responses"]["status"] == 200 and lines["responses"]["tokens_output"] > 0
    assert (lines["bad"]["route"], lines["bad"]["status"]) == ("/v1/messages", 400)
    for route, status in (("/v1/messages", "200"), ("/v1/responses", "200"),
                          ("/v1/messages", "400")):
        assert re.search(rf'tokenomy_requests_total\{{[^}}]*route="{route}",status="{status}"',
                         metrics), (route, status)
