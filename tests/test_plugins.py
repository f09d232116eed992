"""Plugins: a third-party distribution adds a compressor and a stage, used through a real proxy.

The plugin (tests/plugins/tokenomy-shout) is installed into a throw-away folder
with pip, exactly as a user would install it, and reaches tokenomy only through
the `tokenomy` entry-point group: nothing in tokenomy names it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tokenomy.plugins import compressor_methods, registry
from tokenomy.testing.processes import Server, echo_config, run_proxy

PLUGIN = Path(__file__).resolve().parent / "plugins" / "tokenomy-shout"
LONG = " ".join(f"word{i}" for i in range(400))


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(PLUGIN)],
                   check=True, capture_output=True)
    return str(target)


def test_built_ins_are_registered_like_plugins() -> None:
    reg = registry()
    assert {"lossless", "extractive", "tokens", "code", "history"} <= set(reg.compressors)
    assert {"openai", "litellm", "local"} <= set(reg.upstream_kinds)
    assert {"identify", "step", "budget", "codify", "compress", "plan"} <= set(reg.stages)
    assert {"compression", "planner", "codify", "ledger"} <= set(reg.sections)
    assert "openai.chat" in reg.protocols
    assert compressor_methods()[0] == "auto"


def test_plugin_compressor_and_stage_through_a_running_proxy(
        plugin_path: str, upstream: Server, tmp_path: Path) -> None:
    env = {"PYTHONPATH": os.pathsep.join([plugin_path, os.environ.get("PYTHONPATH", "")])}
    config = echo_config(upstream.v1, ledger={"enabled": False},
                         compression={"enabled": True, "method": "first-words",
                                      "min_tokens": 50, "target_ratio": 4})
    with run_proxy(config, folder=tmp_path, env=env) as proxy:
        question = "Which word comes first?"
        body = {"model": "echo", "messages": [
            {"role": "system", "content": "Answer from the documents."},
            {"role": "user", "content": f"Documents:\n{LONG}\n\nQuestion: {question}"}]}
        reply = httpx.post(proxy.v1 + "/chat/completions", json=body, timeout=60)
        assert reply.status_code == 200, reply.text
        sent = httpx.get(upstream.url + "/_last").json()
        # The stage ran (after compress, as it asked) ...
        assert sent["metadata"] == {"stamped_by": "shout"}
        # ... and the plugin's compressor shrank the documents, the question intact.
        user = sent["messages"][1]["content"]
        assert "words dropped by first-words" in user and user.endswith(question)
        assert int(reply.headers["x-tokenomy-prompt-tokens-sent"]) < \
            int(reply.headers["x-tokenomy-prompt-tokens-original"]) / 2
        # The OpenAPI schema lists the plugin's method next to the built-ins.
        schema = httpx.get(proxy.url + "/openapi.json").text
        assert '"first-words"' in schema
    # The CLI's choices come from the same registry.
    help_text = subprocess.run([sys.executable, "-m", "tokenomy.cli", "compress", "--help"],
                               capture_output=True, text=True, env={**os.environ, **env},
                               check=True).stdout
    assert "first-words" in help_text


def test_an_unknown_method_or_stage_is_refused_clearly(upstream: Server, tmp_path: Path) -> None:
    from tokenomy.config import Settings
    from tokenomy.engine import Engine
    from tokenomy.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown compression method 'nope'"):
        Settings(compression={"method": "nope"}).section(
            "compression", registry().sections["compression"])
    with pytest.raises(ConfigError, match="unknown stage"):
        Engine(Settings(ledger={"enabled": False}, pipeline={"stages": ["identify", "nope"]}))
    config = echo_config(upstream.v1, ledger={"enabled": False})
    with run_proxy(config, folder=tmp_path) as proxy:
        body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}],
                "tokenomy": {"compress": {"method": "nope"}}}
        reply = httpx.post(proxy.v1 + "/chat/completions", json=body, timeout=30)
        assert reply.status_code == 400
        assert reply.json()["error"]["param"] == "tokenomy.compress.method"
