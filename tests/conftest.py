"""Shared fixtures: real servers on loopback (the test upstream and `tokenomy serve`)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import httpx
import pytest

from tokenomy.assets import models_dir

# Everything a test writes ($TOKENOMY_HOME: ledgers, contracts, caches) goes to a
# throw-away folder; the prepared models are read from where `make` put them.
os.environ["TOKENOMY_MODELS"] = str(models_dir())
os.environ["TOKENOMY_HOME"] = tempfile.mkdtemp(prefix="tokenomy-test-home-")

from tokenomy.testing.processes import (
    Server,
    echo_config,
    run_proxy,
    run_upstream,
)


@pytest.fixture(scope="session")
def upstream() -> Iterator[Server]:
    """The deterministic OpenAI-compatible backend, one process for the session."""
    with run_upstream() as server:
        yield server


@pytest.fixture()
def upstream_reset(upstream: Server) -> Server:
    httpx.post(upstream.url + "/_reset")
    return upstream


@pytest.fixture(scope="session")
def echo_proxy(upstream: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`tokenomy serve` in front of the test upstream; `echo` and `fault:*` models."""
    folder = tmp_path_factory.mktemp("echo-proxy")
    config = echo_config(upstream.v1, server={"max_body_bytes": 65536, "max_messages": 64})
    with run_proxy(config, folder=folder) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def local_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`tokenomy serve` with no config: the embedded SmolLM2 backend."""
    with run_proxy(None, folder=tmp_path_factory.mktemp("local-proxy")) as proxy:
        yield proxy
