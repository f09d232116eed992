"""/healthz and /readyz of a real `tokenomy serve`, and what it says at start.

/healthz is alive as soon as HTTP answers; /readyz is 503 until the models the
config uses are loaded (and stays 503, with the reason, when their files are
missing) and while the ledger database cannot be reached. A remote-only
config that merely lists a local backend never loads SmolLM2.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import psutil
import pytest

import budget_support
from tokenomy.testing.processes import Server, echo_config, run_proxy
from tokenomy.testing.relay import Relay


def _ready(proxy: Server) -> httpx.Response:
    return httpx.get(proxy.url + "/readyz", timeout=10)


def test_ready_with_a_reachable_ledger_and_no_models(echo_proxy: Server) -> None:
    health = httpx.get(echo_proxy.url + "/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    ready = _ready(echo_proxy)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "ledger": "ready", "models": {}}


def test_local_models_load_before_ready(local_proxy: Server) -> None:
    assert httpx.get(local_proxy.url + "/healthz").status_code == 200
    deadline = time.monotonic() + 180
    states = []
    while time.monotonic() < deadline:
        ready = _ready(local_proxy)
        states.append(ready.json()["models"]["SmolLM2-135M-Instruct"])
        if ready.status_code == 200:
            break
        assert ready.status_code == 503 and ready.json()["status"] == "not ready"
        time.sleep(0.5)
    assert states[-1] == "ready", states
    assert set(states) <= {"pending", "loading", "ready"}


def test_missing_model_files_keep_it_unready(tmp_path: Path) -> None:
    empty = tmp_path / "no-models"
    empty.mkdir()
    with run_proxy(None, folder=tmp_path, env={"TOKENOMY_MODELS": str(empty)}) as proxy:
        assert httpx.get(proxy.url + "/healthz").status_code == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = _ready(proxy).json()["models"]["SmolLM2-135M-Instruct"]
            if state.startswith("failed"):
                break
            time.sleep(0.2)
        ready = _ready(proxy)
        assert ready.status_code == 503
        assert "tokenomy assets install" in ready.json()["models"]["SmolLM2-135M-Instruct"]
        lines = [json.loads(line) for line in proxy.log_lines()]
    warnings = [line["msg"] for line in lines if line["level"] == "warning"]
    assert any("SmolLM2-135M-Instruct files are missing" in w for w in warnings)


@pytest.mark.postgres
def test_an_unreachable_ledger_is_not_ready(upstream: Server, tmp_path: Path) -> None:
    gen = budget_support.pg_schema_url()
    direct = next(gen)
    relay = Relay(5432).up()
    try:
        url = direct.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}")
        with run_proxy(echo_config(upstream.v1, ledger={"url": url}), folder=tmp_path) as proxy:
            assert _ready(proxy).status_code == 200
            relay.down()
            ready = _ready(proxy)
            assert ready.status_code == 503
            assert ready.json()["ledger"].startswith("unreachable")
            assert httpx.get(proxy.url + "/healthz").status_code == 200  # alive all the same
            relay.up()
            assert _ready(proxy).status_code == 200
    finally:
        relay.down()
        for _ in gen:
            pass


def test_a_remote_only_config_never_loads_the_local_model(upstream: Server,
                                                          tmp_path: Path) -> None:
    config = echo_config(upstream.v1)
    config["backends"]["local"] = {"kind": "local"}  # listed, but no alias goes there
    with run_proxy(config, folder=tmp_path) as proxy:
        assert _ready(proxy).json()["models"] == {}
        for _ in range(3):
            body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
            assert httpx.post(proxy.v1 + "/chat/completions", json=body,
                              timeout=30).status_code == 200
        time.sleep(5)  # anything loading in the background has had time to
        rss = psutil.Process(proxy.process.pid).memory_info().rss / 2**20
    # Measured: 254 MiB here, 648 MiB before (SmolLM2 loaded at start); see the README.
    assert rss < 450, f"{rss:.0f} MiB"


def test_start_warnings_name_the_problem(upstream: Server, tmp_path: Path) -> None:
    empty = tmp_path / "no-models"
    empty.mkdir()
    config = echo_config(upstream.v1, compression={"enabled": True})
    config["backends"]["paid"] = {"kind": "openai", "base_url": upstream.v1,
                                  "api_key_env": "TOKENOMY_TEST_UNSET_KEY"}
    config["server"] = {"host": "0.0.0.0"}
    env = {"TOKENOMY_MODELS": str(empty)}
    with run_proxy(config, folder=tmp_path, env=env) as proxy:
        lines = [json.loads(line) for line in proxy.log_lines()]
    warnings = "\n".join(line["msg"] for line in lines if line["level"] == "warning")
    assert "backend 'paid' reads its API key from $TOKENOMY_TEST_UNSET_KEY" in warnings
    assert "all-MiniLM-L6-v2 files are missing" in warnings and "compression" in warnings
    assert "not loopback" in warnings and "API keys are required" in warnings
