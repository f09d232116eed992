"""No caller can redirect the proxy's credentials (hardening, critical #1).

A caller's body fields `base_url`, `api_base`, `api_key`, `extra_headers`,
`custom_llm_provider`, `mock_response` (and any other field the wire protocol
does not define) must never change where the proxy connects or what
credentials it sends. Two loopback servers prove it: the configured backend
(which must receive the configured key) and an "attacker" (which must receive
nothing), for every upstream kind that forwards bodies (openai, litellm), JSON
and streaming.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tokenomy.testing.processes import Server, run_proxy, run_upstream

SECRET = "sk-configured-provider-key-123"


@pytest.fixture(scope="module")
def attacker() -> Iterator[Server]:
    with run_upstream() as server:
        yield server


def _evil_fields(attacker: Server) -> list[dict[str, Any]]:
    url = attacker.v1
    return [
        {"base_url": url},
        {"api_base": url},
        {"api_key": "sk-attacker"},
        {"extra_headers": {"Authorization": "Bearer sk-attacker", "x-forward": url}},
        {"custom_llm_provider": "openai", "api_base": url},
        {"mock_response": "pwned"},
        {"headers": {"host": "127.0.0.1"}, "url": url},
        {"azure_ad_token": "x", "api_version": "1", "aws_access_key_id": "x"},
        {"litellm_params": {"api_base": url}, "metadata": {"api_base": url}},
    ]


@pytest.fixture(scope="module", params=["openai", "litellm"])
def proxy(request: pytest.FixtureRequest, upstream: Server,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    kind = request.param
    backend: dict[str, Any] = {"kind": kind, "base_url": upstream.v1, "api_key": SECRET,
                               "timeout": 10, "max_retries": 0}
    model = "echo-model" if kind == "openai" else "openai/echo-model"
    config = {"backends": {"b": backend}, "models": {"echo": {"backend": "b", "model": model}},
              "ledger": {"enabled": False}}
    with run_proxy(config, folder=tmp_path_factory.mktemp(f"redirect-{kind}")) as server:
        yield server


@pytest.mark.parametrize("stream", [False, True])
def test_caller_fields_never_choose_destination_or_credentials(
        proxy: Server, upstream: Server, attacker: Server, stream: bool) -> None:
    for evil in _evil_fields(attacker):
        httpx.post(upstream.url + "/_reset")
        httpx.post(attacker.url + "/_reset")
        body = {"model": "echo", "messages": [{"role": "user", "content": "hello"}],
                "stream": stream, **evil}
        reply = httpx.post(proxy.v1 + "/chat/completions", json=body, timeout=60)
        assert reply.status_code == 200, (evil, reply.text)
        assert "pwned" not in reply.text, evil
        # The attacker saw nothing; the configured backend got the configured key.
        assert httpx.get(attacker.url + "/_stats").json()["requests"] == 0, evil
        headers = httpx.get(upstream.url + "/_last_headers").json()
        assert headers["authorization"] == f"Bearer {SECRET}", evil
        sent = httpx.get(upstream.url + "/_last").json()
        for field in evil:
            if field != "metadata":  # an OpenAI request field: forwarded as data only
                assert field not in sent, (field, sent)


def test_the_allowlist_is_the_protocols_own_fields() -> None:
    from tokenomy.transcript import OPENAI_CHAT

    body = {"model": "m", "messages": [], "temperature": 0, "tools": [], "api_base": "x",
            "base_url": "y", "extra_headers": {}, "mock_response": "z"}
    out = OPENAI_CHAT.forwarded(body, "upstream-model")
    assert set(out) == {"model", "messages", "temperature", "tools"}
    assert out["model"] == "upstream-model"


def test_a_body_never_reaches_a_path_the_config_did_not_name(
        upstream: Server, attacker: Server, tmp_path: Path) -> None:
    # A model name that looks like a URL or a provider route stays a model name.
    config = {"backends": {"b": {"kind": "openai", "base_url": upstream.v1, "api_key": SECRET}},
              "default_backend": "b", "ledger": {"enabled": False}}
    httpx.post(attacker.url + "/_reset")
    with run_proxy(config, folder=tmp_path) as proxy:
        for model in (attacker.v1, f"openai/{attacker.v1}", "http://127.0.0.1:1/x"):
            body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
            httpx.post(proxy.v1 + "/chat/completions", json=body, timeout=30)
    assert httpx.get(attacker.url + "/_stats").json()["requests"] == 0
