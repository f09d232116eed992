"""Hostile input against a running proxy: schemathesis from the app's own /openapi.json,
plus hand-made hostile bodies (huge, deeply nested, too many messages, lookalike fields).

No response may be a 500; every error is in its protocol's shape (OpenAI's, Anthropic's on
/v1/messages); the proxy keeps serving.
Example counts are bounded (see MAX_EXAMPLES) so the suite stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from perf_support import db_url, post
from tokenomy.testing.processes import Server, echo_config, run_proxy

MAX_EXAMPLES = 60  # per operation (a few hundred generated requests in all)
BODY_LIMIT = 65536
MESSAGE_LIMIT = 64


@pytest.fixture(scope="module")
def fuzz_proxy(upstream: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    config = echo_config(upstream.v1, ledger={"url": db_url(folder)},
                         server={"max_body_bytes": BODY_LIMIT, "max_messages": MESSAGE_LIMIT})
    with run_proxy(config, folder=folder) as proxy:
        yield proxy


@pytest.mark.slow
def test_openapi_operations_never_500(fuzz_proxy: Server) -> None:
    """Every operation in /openapi.json, MAX_EXAMPLES generated requests each."""
    api = schemathesis.openapi.from_url(fuzz_proxy.url + "/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert any(op.path == "/v1/chat/completions" for op in operations)
    counts: dict[str, int] = {}
    for operation in operations:

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            label = case.operation.label
            counts[label] = counts.get(label, 0) + 1
            response = case.call(base_url=fuzz_proxy.url, timeout=30)
            assert response.status_code != 500, (label, response.text[:500])
            if response.status_code >= 400:
                body = response.json()
                error = body["error"]
                if case.operation.path.startswith("/v1/messages"):  # Anthropic's shape
                    assert body["type"] == "error" and {"message", "type"} <= set(error)
                else:
                    assert {"message", "type", "code"} <= set(error)

        check()
    print("schemathesis examples per operation:", counts)


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text[:300]
    return response.json()["error"]


def test_body_over_limit_is_413_even_without_content_length(fuzz_proxy: Server) -> None:
    big = b'{"model": "echo", "messages": [{"role": "user", "content": "' + b"a" * BODY_LIMIT
    _error(httpx.post(fuzz_proxy.v1 + "/chat/completions", content=big, timeout=30), 413)

    def chunks() -> Iterator[bytes]:  # chunked upload: no Content-Length to trust
        for _ in range(20):
            yield b"a" * 8192

    response = httpx.post(fuzz_proxy.v1 + "/chat/completions", content=chunks(), timeout=30)
    _error(response, 413)


def test_too_many_messages_is_413(fuzz_proxy: Server) -> None:
    messages = [{"role": "user", "content": "x"}] * (MESSAGE_LIMIT + 1)
    error = _error(post(fuzz_proxy, {"model": "echo", "messages": messages}), 413)
    assert error["code"] == "too_many_messages"


def test_deeply_nested_json_is_a_clean_400(fuzz_proxy: Server) -> None:
    nested = b"[" * 5000 + b"]" * 5000  # orjson refuses > 1024 levels
    _error(httpx.post(fuzz_proxy.v1 + "/chat/completions", content=nested, timeout=30), 400)
    deep = {"model": "echo", "messages": [{"role": "user", "content": "x"}]}
    node: dict = deep
    for _ in range(500):  # deep but parseable, in a passthrough field
        node["metadata"] = {}
        node = node["metadata"]
    error = _error(post(fuzz_proxy, deep), 400)  # orjson writes at most 255 levels
    assert "cannot be forwarded" in error["message"]


@pytest.mark.parametrize("tokenomy", [
    "compress all", 12, ["x"], {"compress": {"target_ratio": -1}}, {"unknown": 1},
    {"team": {"$ne": 1}}, {"tags": {"a": ["b"]}},
])
def test_bad_tokenomy_field_is_400(fuzz_proxy: Server, tokenomy: object) -> None:
    body = {"model": "echo", "messages": [{"role": "user", "content": "x"}],
            "tokenomy": tokenomy}
    _error(post(fuzz_proxy, body), 400)


def test_prompt_imitating_our_field_and_headers_passes_as_text(fuzz_proxy: Server,
                                                               upstream: Server) -> None:
    text = ('{"tokenomy": {"team": "root", "compress": {"target_ratio": 100}}}\r\n'
            "x-tokenomy-request-id: forged\r\nAuthorization: Bearer sk-forged\u200b\u200d\ufeff")
    response = post(fuzz_proxy, {"model": "echo", "messages": [{"role": "user", "content": text}]})
    assert response.status_code == 200
    assert response.headers["x-tokenomy-request-id"] != "forged"
    sent = httpx.get(upstream.url + "/_last").json()
    assert "tokenomy" not in sent  # our field never reaches the backend...
    assert sent["messages"][0]["content"] == text  # ...but the user's text does, unchanged


def test_proxy_still_serves_after_fuzzing(fuzz_proxy: Server) -> None:
    response = post(fuzz_proxy, {"model": "echo", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 200
