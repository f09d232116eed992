"""A Claude Code turn replayed through `tokenomy serve` with compression on (its defaults).

The loopback upstream records the body and headers it received. They must be
the request Claude Code sent, block for block, string for string, key order
included, except the parts a stage edited, and each edit is named here. The
next turn must send the edited part again in exactly the same bytes (so the
provider's prompt cache keeps hitting), while everything else passes as sent.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from claude_code_turn import BODY, HEADERS, VERBOSE_SUITE
from tokenomy.testing.processes import Server, run_proxy
from tokenomy.upstreams.sse import Decoder

BACKEND_KEY = "sk-ant-replay"
Path = tuple[str | int, ...]

# The edits tokenomy's default stages make to this turn, and why.
EDITS: dict[Path, str] = {
    ("messages", 4, "content", 0, "content"):
        "agent compression: the verbose `pytest tests -v` log is new in this turn (the "
        "live zone) and carries no cache mark; its passing lines are elided, each elision "
        "naming the command that prints them again",
}


def differences(sent: Any, received: Any, path: Path = ()) -> dict[Path, str]:
    """Every place the received body differs from the sent one (values, types, key order)."""
    if type(sent) is not type(received):
        return {path: "type"}
    if isinstance(sent, dict):
        out: dict[Path, str] = {}
        if list(sent) != list(received):
            out[path] = f"keys {list(sent)} -> {list(received)}"
        for key in sent.keys() & received.keys():
            out.update(differences(sent[key], received[key], (*path, key)))
        return out
    if isinstance(sent, list):
        out = {} if len(sent) == len(received) else {path: "length"}
        for index, (a, b) in enumerate(zip(sent, received, strict=False)):
            out.update(differences(a, b, (*path, index)))
        return out
    return {} if sent == received else {path: "value"}


def at(body: Any, path: Path) -> Any:
    for key in path:
        body = body[key]
    return body


@pytest.fixture(scope="module")
def proxy(upstream: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = {"backends": {"anthropic": {"kind": "anthropic", "base_url": upstream.url,
                                         "api_key": BACKEND_KEY, "timeout": 60,
                                         "max_retries": 0}},
              "default_backend": "anthropic"}
    with run_proxy(config, folder=tmp_path_factory.mktemp("claude-code")) as server:
        yield server


def replay(proxy: Server, upstream: Server, body: dict[str, Any]
           ) -> tuple[httpx.Response, list[str], dict[str, Any], dict[str, str]]:
    headers = {**HEADERS, "authorization": "Bearer tkn-claude-code-user"}
    response = httpx.post(proxy.url + "/v1/messages?beta=true", content=orjson.dumps(body),
                          headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    events = [event.event or "" for event in Decoder().feed(response.content)]
    received = httpx.get(upstream.url + "/_last").json()
    received_headers = httpx.get(upstream.url + "/_last_headers").json()
    return response, events, received, received_headers


def test_claude_code_turn_reaches_the_backend_as_sent_but_for_named_edits(
        proxy: Server, upstream_reset: Server) -> None:
    sent = copy.deepcopy(BODY)
    response, events, received, headers = replay(proxy, upstream_reset, sent)
    assert sent == BODY  # the proxy never touches what the client holds
    assert len(BODY["tools"]) >= 15

    # Same parts, same order, same strings, same key order; but for the named edits.
    assert set(differences(BODY, received)) == set(EDITS)
    edited = at(received, ("messages", 4, "content", 0, "content"))
    assert len(edited) < len(VERBOSE_SUITE) // 2
    for kept in ("tests/test_parser.py::test_parse_iso_dates FAILED",
                 "AssertionError: assert datetime.datetime(2024, 2, 29, 12, 0)",
                 "1 failed, 180 passed in 1.94s"):
        assert kept in edited
    assert "omitted: pytest tests -v | sed -n" in edited  # how to get the elided lines back
    # What must never change did not: signed thinking, cache marks, the moving breakpoint.
    assert received["messages"][3]["content"][0] == BODY["messages"][3]["content"][0]
    assert received["system"] == BODY["system"] and received["metadata"] == BODY["metadata"]
    assert received["messages"][4]["content"][1] == BODY["messages"][4]["content"][1]

    # Headers: the client's API version and beta flags, the backend's key, nothing else.
    for name in ("anthropic-version", "anthropic-beta", "x-app"):
        assert headers[name] == HEADERS[name]
    assert headers["x-api-key"] == BACKEND_KEY
    assert not {"authorization", "user-agent", "x-stainless-lang",
                "anthropic-dangerous-direct-browser-access"} & headers.keys()

    # The answer streams back in Anthropic's order, and the savings are reported.
    assert events[:3] == ["message_start", "ping", "content_block_start"]
    assert events[-2:] == ["message_delta", "message_stop"]
    original = int(response.headers["x-tokenomy-prompt-tokens-original"])
    assert int(response.headers["x-tokenomy-prompt-tokens-sent"]) < original


def test_the_next_turn_sends_the_edited_part_in_the_same_bytes(
        proxy: Server, upstream_reset: Server) -> None:
    _, _, first, _ = replay(proxy, upstream_reset, copy.deepcopy(BODY))
    nxt = copy.deepcopy(BODY)
    del nxt["messages"][4]["content"][1]["cache_control"]  # Claude Code moves its breakpoint
    nxt["messages"] += [
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Convert to UTC instead of dropping the zone.",
             "signature": "EqQBCkYIBxgCKkB3nR8sLq0Zt2Vw5Xy7Ab9Cd1Ef3Gh5Ij7Kl9Mn1Op3Qr5St7Uv9"},
            {"type": "tool_use", "id": "toolu_01Ht6Yb3Wq9Ls2Kd5Nf8Jm4Pc", "name": "Edit",
             "input": {"file_path": "/home/dev/parsekit/src/parsekit/dates.py",
                       "old_string": "    return value.replace(tzinfo=None)",
                       "new_string": "    return value.astimezone(timezone.utc)"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01Ht6Yb3Wq9Ls2Kd5Nf8Jm4Pc",
             "content": "The file /home/dev/parsekit/src/parsekit/dates.py has been updated.",
             "cache_control": {"type": "ephemeral"}}]}]
    _, _, second, _ = replay(proxy, upstream_reset, nxt)
    # The one edit: the earlier turn's log, replayed from the memo in turn 1's bytes.
    assert set(differences(nxt, second)) == set(EDITS)
    for path in EDITS:
        assert at(second, path) == at(first, path)
