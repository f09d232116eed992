"""Fail closed through a real `tokenomy serve`: with the ledger database gone a
request gets 503 `ledger_unavailable` (never a 500, never a free pass), and a
proxy bound to a non-loopback address requires keys even before one exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

import budget_support
from budget_support import sqlite_url
from test_budget_proxy import chat
from tokenomy.budgets.keys import KeyStore
from tokenomy.budgets.ledger import Ledger
from tokenomy.budgets.settings import LedgerSettings
from tokenomy.cli import main
from tokenomy.testing.processes import Server, echo_config, run_proxy
from tokenomy.testing.relay import Relay


def _post(proxy: Server, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(proxy.v1 + "/chat/completions", json=body, headers=headers, timeout=30)


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "ledger_unavailable" and error["type"] == "server_error"
    assert int(response.headers["retry-after"]) >= 1


@pytest.mark.postgres
def test_database_gone_means_503_ledger_unavailable(upstream: Server, tmp_path: Path) -> None:
    gen = budget_support.pg_schema_url()
    direct = next(gen)
    relay = Relay(5432).up()
    try:
        seed = Ledger(direct).open(background=False)
        _, key = KeyStore(seed.engine, LedgerSettings()).create("acme")
        seed.close()
        url = direct.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}")
        config = echo_config(
            upstream.v1,
            ledger={"url": url, "spool_path": str(tmp_path / "spool.jsonl")},
            teams={"acme": {"tokens": 1_000_000}},
        )
        with run_proxy(config, folder=tmp_path) as proxy:
            assert _post(proxy, chat(), key).status_code == 200
            relay.down()
            # Key check and budget both need the database: every way in is 503.
            for _ in range(3):
                _assert_unavailable(_post(proxy, chat(), key))
            _assert_unavailable(_post(proxy, chat(stream=True), key))
            relay.up()
            assert _post(proxy, chat(), key).status_code == 200
    finally:
        relay.down()
        next(gen, None)


@pytest.mark.postgres
def test_budget_unreachable_with_auth_off_is_503(upstream: Server, tmp_path: Path) -> None:
    """No keys involved: the reservation itself finds the database gone."""
    gen = budget_support.pg_schema_url()
    direct = next(gen)
    relay = Relay(5432).up()
    try:
        url = direct.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}")
        config = echo_config(
            upstream.v1,
            ledger={"url": url, "auth": "off", "spool_path": str(tmp_path / "spool.jsonl")},
            teams={"acme": {"tokens": 1_000_000}},
        )
        with run_proxy(config, folder=tmp_path) as proxy:
            assert _post(proxy, chat("acme")).status_code == 200
            relay.down()
            _assert_unavailable(_post(proxy, chat("acme")))
            relay.up()
            assert _post(proxy, chat("acme")).status_code == 200
    finally:
        relay.down()
        next(gen, None)


def test_non_loopback_bind_requires_keys_from_the_start(upstream: Server, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    config = echo_config(upstream.v1, server={"host": "0.0.0.0"}, ledger={"url": url})
    with run_proxy(config, folder=tmp_path) as proxy:  # reached via 127.0.0.1
        refused = _post(proxy, chat())
        assert refused.status_code == 401, refused.text
        assert "tokenomy keys create" in refused.json()["error"]["message"]
        made = CliRunner().invoke(main, ["keys", "create", "--team", "default", "--db", url])
        assert made.exit_code == 0, made.output
        key = made.stdout.strip().splitlines()[0]
        assert _post(proxy, chat(), key).status_code == 200
        assert _post(proxy, chat()).status_code == 401
    printed = "\n".join(proxy.log_lines())
    assert "API keys are required" in printed and "tokenomy keys create" in printed
