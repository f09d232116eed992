"""A recorded Codex turn (tests/recorded/codex_turn.json) replayed through the proxy with
compression on: the upstream receives it semantically identical, except the parts a stage
edited, and this test names each edit.

The turn: Codex's instructions, the shell / update_plan function tools and the apply_patch
custom tool, two reasoning items with encrypted_content, two shell calls and their
outputs (the second a 300-line `pytest -v` run), `include:
["reasoning.encrypted_content"]`, `store: false`, `prompt_cache_key`, and Codex's headers.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tokenomy.testing.processes import Server, echo_config, run_proxy

RECORD = json.loads((Path(__file__).parent / "recorded" / "codex_turn.json").read_text())
# The only edit: agent compression of the live zone's tool output (the pytest run).
EDITED = {("input", 7, "output")}


def differences(a: Any, b: Any, path: tuple[Any, ...] = ()) -> set[tuple[Any, ...]]:
    """The paths where two JSON values differ (a missing or extra key is a difference)."""
    if type(a) is not type(b):
        return {path}
    if isinstance(a, dict):
        out: set[tuple[Any, ...]] = set()
        for key in a.keys() | b.keys():
            out |= differences(a[key], b[key], (*path, key)) if key in a and key in b \
                else {(*path, key)}
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return {path}
        return {p for i, (x, y) in enumerate(zip(a, b, strict=True))
                for p in differences(x, y, (*path, i))}
    return set() if a == b else {path}


@pytest.fixture(scope="module")
def proxy(upstream: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = echo_config(upstream.v1, compression={"enabled": True})
    config["models"]["gpt-5-codex"] = {"backend": "test"}
    with run_proxy(config, folder=tmp_path_factory.mktemp("codex")) as server:
        yield server


def send(proxy: Server, upstream: Server, body: dict[str, Any]) -> tuple[httpx.Response, Any]:
    headers = {**RECORD["headers"], "authorization": "Bearer sk-codex-user"}
    with httpx.stream("POST", proxy.v1 + "/responses", json=body, headers=headers,
                      timeout=60) as response:
        response.read()
    return response, httpx.get(upstream.url + "/_last").json()


def events(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in response.text.splitlines()
            if line.startswith("data: ")]


def test_codex_turn_reaches_the_upstream_with_only_the_named_edits(
        proxy: Server, upstream: Server) -> None:
    sent = RECORD["body"]
    response, received = send(proxy, upstream, copy.deepcopy(sent))
    assert response.status_code == 200
    assert differences(sent, received) == EDITED
    # Everything else is byte-identical, key order included: put the edited string back
    # and the two bodies serialise the same.
    restored = copy.deepcopy(received)
    restored["input"][7]["output"] = sent["input"][7]["output"]
    assert orjson.dumps(restored) == orjson.dumps(sent)
    # The edit: the pytest run, compressed, saying how to get each elided range back.
    before, after = sent["input"][7]["output"], received["input"][7]["output"]
    assert len(after) < len(before) / 2
    assert "FAILED" in after and "3 failed, 261 passed" in after
    # Codex's `["bash", "-lc", "pytest -v"]` ran `pytest -v`: that is what re-runs it.
    assert after.startswith("Exit code: 1\nWall time: 5.3 seconds\nTotal output lines: 305\n"
                            "Output:\n")
    assert "lines omitted: pytest -v | sed -n" in after
    assert int(response.headers["x-tokenomy-prompt-tokens-sent"]) < \
        int(response.headers["x-tokenomy-prompt-tokens-original"])
    # Codex's own headers went along; its key did not.
    headers = httpx.get(upstream.url + "/_last_headers").json()
    assert {k: headers[k] for k in RECORD["headers"]} == RECORD["headers"]
    assert "sk-codex-user" not in str(headers)
    stream = events(response)
    assert stream[0]["type"] == "response.created"
    assert stream[-1]["type"] == "response.completed"


def test_the_next_turn_resends_the_same_bytes_and_keeps_the_cache(
        proxy: Server, upstream: Server) -> None:
    """The compressed output is memoised: the next request of the conversation (this one
    plus the model's answer and a new call) carries it in exactly the same form, so the
    provider's prefix cache covers it."""
    first = copy.deepcopy(RECORD["body"])
    _, received_first = send(proxy, upstream, first)
    turn = copy.deepcopy(RECORD["body"])
    turn["input"] += [
        {"type": "function_call", "id": "fc_68d0f1a2b3c4d5f0", "name": "shell",
         "call_id": "call_Zp4k8", "arguments": json.dumps({
             "command": ["bash", "-lc", "sed -n 1,40p src/shop/pricing.py"],
             "workdir": "/home/dev/shop"})},
        {"type": "function_call_output", "call_id": "call_Zp4k8",
         "output": "Exit code: 0\nWall time: 0.1 seconds\nOutput:\nSHIPPING_FLOOR = 60\n"}]
    response, received = send(proxy, upstream, turn)
    assert received["input"][:8] == received_first["input"]
    assert differences(turn, received) == EDITED
    usage = events(response)[-1]["response"]["usage"]
    assert usage["input_tokens_details"]["cached_tokens"] > usage["input_tokens"] // 2
