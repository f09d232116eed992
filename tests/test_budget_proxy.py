"""Budgets through real `tokenomy serve` processes in front of the test upstream.

Hard limits (429 naming the scope), soft-limit warnings, virtual keys (401/403,
revocation by the CLI), the usage API's access rules, and 200 concurrent
requests against a budget that admits ten: one proxy on SQLite, and two
proxies sharing one PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import budget_support
from budget_support import sqlite_url
from tokenomy.testing.processes import Server, echo_config, run_proxy
from tokenomy.testing.upstream import prompt_tokens
from tokenomy.tokenizers import count_messages

pg_url = budget_support.pg_url  # the fixture: a fresh PostgreSQL schema

ADMIN = "admin-secret-for-tests"
# 20 words: the echo backend answers "echo: w0 ... w19", cut to max_tokens words.
BURST_MESSAGES = [{"role": "user", "content": " ".join(f"w{i}" for i in range(20))}]
BURST_MAX_TOKENS = 10


def burst_cost() -> int:
    """What one burst request reserves, and (exactly) what it spends."""
    estimate = count_messages(BURST_MESSAGES, "echo-model") + BURST_MAX_TOKENS
    assert estimate == prompt_tokens(BURST_MESSAGES) + BURST_MAX_TOKENS
    return estimate


def proxy_config(upstream: Server, ledger_url: str, **extra: Any) -> dict[str, Any]:
    config = echo_config(
        upstream.v1,
        server={"admin_key": ADMIN},
        ledger={"url": ledger_url, "reconcile_interval": 1, "owner_ttl": 3},
        teams={
            "small": {"tokens": 120, "window": "1d"},
            "warned": {"tokens": 100_000, "soft_limit": 0.0001, "soft_action": "warn"},
            "burst": {"tokens": 10 * burst_cost(), "window": "1h"},
        },
    )
    config["backends"]["test"]["timeout"] = 60
    config.update(extra)
    return config


def chat(team: str | None = None, **body: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    payload.update(body)
    options = payload.setdefault("tokenomy", {})
    options["compress"] = {"enabled": False}
    if team:
        options["team"] = team
    return payload


@pytest.fixture(scope="module")
def sqlite_proxy(upstream: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("budget-proxy")
    config = proxy_config(upstream, sqlite_url(folder))
    with run_proxy(config, folder=folder) as proxy:
        proxy.ledger_url = sqlite_url(folder)  # type: ignore[attr-defined]
        proxy.config_path = folder / "tokenomy.yaml"  # type: ignore[attr-defined]
        yield proxy


def post(proxy: Server, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(proxy.v1 + "/chat/completions", json=body, headers=headers, timeout=30)


def test_hard_limit_429_names_the_scope(sqlite_proxy: Server) -> None:
    first = post(sqlite_proxy, chat("small", max_tokens=5))
    assert first.status_code == 200, first.text
    refused = post(sqlite_proxy, chat("small", max_tokens=200))
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert refused.headers["x-tokenomy-request-id"]
    error = refused.json()["error"]
    assert error["type"] == "budget_exceeded" and error["code"] == "budget_exceeded"
    assert error["scope"] == "team" and error["scope_id"] == "small"
    assert error["limit_tokens"] == 120 and error["spent_tokens"] > 0
    assert "team 'small'" in error["message"] and "resets at" in error["message"]


def test_soft_limit_warn_header(sqlite_proxy: Server) -> None:
    response = post(sqlite_proxy, chat("warned"))
    assert response.status_code == 200
    assert "team 'warned'" in response.headers["x-tokenomy-budget-warning"]


def test_stream_is_settled(sqlite_proxy: Server) -> None:
    with httpx.stream(
        "POST",
        sqlite_proxy.v1 + "/chat/completions",
        json=chat("streamer", stream=True),
        timeout=30,
    ) as response:
        assert response.status_code == 200
        body = "".join(response.iter_text())
    assert body.rstrip().endswith("data: [DONE]")
    usage = httpx.get(
        sqlite_proxy.url + "/v1/tokenomy/usage",
        params={"team": "streamer"},
        headers={"authorization": f"Bearer {ADMIN}"},
    ).json()
    assert usage["totals"]["requests"] == 1 and usage["totals"]["total_tokens"] > 0


async def _burst(urls: list[str]) -> list[int]:
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        body = chat("burst", messages=BURST_MESSAGES, max_tokens=BURST_MAX_TOKENS)

        async def one(i: int) -> int:
            response = await client.post(urls[i % len(urls)] + "/chat/completions", json=body)
            return response.status_code

        return await asyncio.gather(*(one(i) for i in range(200)))


def _check_burst(statuses: list[int], proxy: Server) -> None:
    """10 of the 200 admitted and charged exactly, 190 refused, nothing held (the usage
    API of `proxy`, one of the replicas)."""
    usage = httpx.get(
        proxy.url + "/v1/tokenomy/usage",
        params={"team": "burst"},
        headers={"authorization": f"Bearer {ADMIN}"},
    ).json()
    assert sorted(set(statuses)) == [200, 429], statuses
    assert statuses.count(200) == 10
    [budget] = [b for b in usage["budgets"] if b["id"] == "burst"]
    assert budget["spent_tokens"] == 10 * burst_cost() and budget["reserved_tokens"] == 0
    assert usage["totals"]["requests"] == 200
    assert usage["totals"]["refused"] == 190


def test_two_hundred_concurrent_requests_sqlite(sqlite_proxy: Server) -> None:
    statuses = asyncio.run(_burst([sqlite_proxy.v1]))
    _check_burst(statuses, sqlite_proxy)


@pytest.mark.postgres
@pytest.mark.slow
def test_two_hundred_concurrent_requests_two_proxies_postgres(
    upstream: Server, tmp_path: Path, pg_url: str
) -> None:
    config = proxy_config(upstream, pg_url)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        run_proxy(config, folder=tmp_path / "a") as a,
        run_proxy(config, folder=tmp_path / "b") as b,
    ):
        statuses = asyncio.run(_burst([a.v1, b.v1]))
        _check_burst(statuses, b)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokenomy.cli", *args],
        capture_output=True,
        text=True,
        check=True,
    )


def test_keys_cli_auth_and_usage_access(upstream: Server, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    # No config declares these teams: --create-team says that is meant.
    created = _cli(
        "keys", "create", "--team", "alpha", "--name", "ci", "--create-team", "--db", url
    )
    alpha_key = created.stdout.strip()
    assert alpha_key.startswith("tkn_") and "shown only once" in created.stderr
    beta_key = _cli(
        "keys", "create", "--team", "beta", "--budget-tokens", "50", "--create-team", "--db", url
    )
    beta_key = beta_key.stdout.strip()
    listed = _cli("keys", "list", "--db", url).stdout
    assert "team=alpha" in listed and "team=beta" in listed and alpha_key not in listed
    (tmp_path / "p").mkdir()
    with run_proxy(proxy_config(upstream, url), folder=tmp_path / "p") as proxy:
        assert post(proxy, chat()).status_code == 401
        assert post(proxy, chat(), key="tkn_000000000000_" + "x" * 43).status_code == 401
        wrong_team = post(proxy, chat("beta"), key=alpha_key)
        assert (
            wrong_team.status_code == 403
            and "team 'alpha'" in wrong_team.json()["error"]["message"]
        )
        ok = post(proxy, chat(), key=alpha_key)
        assert ok.status_code == 200, ok.text
        # The key's own budget: 50 tokens.
        over = post(proxy, chat(max_tokens=100), key=beta_key)
        assert over.status_code == 429 and over.json()["error"]["scope"] == "key"
        # Usage API: admin reads all; a team key reads only its team.
        usage_url = proxy.url + "/v1/tokenomy/usage"
        assert httpx.get(usage_url).status_code == 401
        everything = httpx.get(
            usage_url, params={"group_by": "team"}, headers={"authorization": f"Bearer {ADMIN}"}
        ).json()
        assert {g["key"] for g in everything["groups"]} == {"alpha", "beta"}
        own = httpx.get(usage_url, headers={"authorization": f"Bearer {alpha_key}"}).json()
        assert own["query"]["team"] == "alpha" and own["totals"]["requests"] == 1
        other = httpx.get(
            usage_url, params={"team": "beta"}, headers={"authorization": f"Bearer {alpha_key}"}
        )
        assert other.status_code == 403
        # Revoked from the CLI while the proxy runs: refused from the next request on.
        key_id = alpha_key.split("_")[1]
        _cli("keys", "revoke", key_id, "--db", url)
        assert post(proxy, chat(), key=alpha_key).status_code == 401


def test_usage_api_bad_filters_are_400(sqlite_proxy: Server) -> None:
    auth = {"authorization": f"Bearer {ADMIN}"}
    url = sqlite_proxy.url + "/v1/tokenomy/usage"
    bad_group = httpx.get(url, params={"group_by": "colour"}, headers=auth)
    assert bad_group.status_code == 400 and "group_by" in bad_group.json()["error"]["message"]
    bad_since = httpx.get(url, params={"since": "yesterday-ish"}, headers=auth)
    assert bad_since.status_code == 400 and bad_since.json()["error"]["param"] == "since"
    wrong_admin = httpx.get(url, headers={"authorization": "Bearer nope"})
    assert wrong_admin.status_code == 401
    by_model = httpx.get(url, params={"group_by": "model", "since": "1d"}, headers=auth).json()
    assert by_model["query"]["group_by"] == "model"
    assert sum(g["requests"] for g in by_model["groups"]) == by_model["totals"]["requests"]
