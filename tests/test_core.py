"""The core: the call owns its accounting and headers, the transcript edits one part,
one SSE codec, one JSON compactor, and importing tokenomy leaves the host's environment alone.

The first three tests are the bugs the old tangle caused (they fail on the code
before the restructure).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from sdk_support import echo_settings
from tokenomy.call import Call
from tokenomy.compressors.json_compact import to_table
from tokenomy.compressors.lossless import LosslessCompressor
from tokenomy.testing.processes import Server, echo_config, run_proxy
from tokenomy.tokenizers import count_messages
from tokenomy.transcript import OPENAI_CHAT, PartKind
from tokenomy.upstreams.sse import Decoder, encode

SCHEMA = {"type": "object", "properties": {
    f"field_{i}": {"type": "string", "description": f"The {i}th field of the record."}
    for i in range(12)}, "required": ["field_0"]}


def test_savings_header_counts_what_was_sent_with_codify_and_small_prompts(
        upstream: Server, tmp_path: Path) -> None:
    # Codify rewrites the schema; compression is on but the prompt is under its
    # min_tokens. The header must say what the backend received, counted in the
    # upstream model's tokenizer (the old compress stage overwrote codify's count).
    config = echo_config(upstream.v1, ledger={"enabled": False},
                         models={"echo": {"backend": "test", "model": "gpt-4o"}},
                         compression={"enabled": True, "min_tokens": 100_000})
    system = "Fill this JSON Schema:\n```json\n" + json.dumps(SCHEMA, indent=2) + "\n```"
    body = {"model": "echo", "messages": [{"role": "system", "content": system},
                                          {"role": "user", "content": "Make one record."}]}
    with run_proxy(config, folder=tmp_path) as proxy:
        reply = httpx.post(proxy.v1 + "/chat/completions", json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    received = httpx.get(upstream.url + "/_last").json()["messages"]
    assert received[0]["content"] != system  # codify did rewrite it
    sent = int(reply.headers["x-tokenomy-prompt-tokens-sent"])
    original = int(reply.headers["x-tokenomy-prompt-tokens-original"])
    assert sent == count_messages(received, "gpt-4o")
    assert original == count_messages(body["messages"], "gpt-4o") > sent


def test_in_process_sdk_sees_every_header(upstream: Server, tmp_path: Path) -> None:
    from tokenomy.sdk.runner import InProcessEngine
    from tokenomy.sdk.transport import IN_PROCESS_URL, TokenomyTransport

    settings = echo_settings(upstream, tmp_path,
                             teams={"ops": {"tokens": 10_000_000, "soft_limit": 0.000001,
                                            "soft_action": "warn"}})
    engine = InProcessEngine(settings)
    try:
        client = openai.OpenAI(base_url=IN_PROCESS_URL, api_key="x",
                               http_client=httpx.Client(transport=TokenomyTransport(engine)))
        raw = client.chat.completions.with_raw_response.create(
            model="echo", messages=[{"role": "user", "content": "What is 2 + 2?"}],
            extra_body={"tokenomy": {"team": "ops", "reasoning": "consensus"}})
        assert "team 'ops'" in raw.headers["x-tokenomy-budget-warning"]
        assert raw.headers["x-tokenomy-consensus"].startswith("samples=")
        assert raw.headers["x-tokenomy-mode"] == "consensus"
        assert raw.headers["x-tokenomy-request-id"].startswith("tk-")
    finally:
        engine.close()


def test_one_json_compactor_for_codify_and_lossless() -> None:
    from tokenomy.codify.detect import codified, find_blocks

    rows = [{"id": i, "name": f"item {i}", "price": i * 1.5, "ok": i % 2 == 0}
            for i in range(6)]
    lossless = LosslessCompressor(table_format="toon").compress(json.dumps(rows, indent=2),
                                                                model="gpt-4o").text
    [block] = find_blocks(json.dumps(rows, indent=2))
    assert lossless == to_table(rows) == codified(block, tables=True)


def test_transcript_edit_changes_one_string_and_nothing_else() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief.",
                                        "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "Read the file.", "x-unknown": {"keep": [1, 2]}},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "bash", "arguments": '{"command": "cat a.py"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "line\n" * 50},
    ]
    original = copy.deepcopy(messages)
    body = {"model": "gpt-4o", "messages": messages, "vendor_field": {"z": 1, "a": 2}}
    call = Call(body=body)
    parts = call.transcript.parts
    kinds = [p.kind for p in parts]
    assert kinds == [PartKind.SYSTEM, PartKind.USER_TEXT, PartKind.TOOL_CALL,
                     PartKind.TOOL_RESULT]
    result = parts[-1]
    assert result.tool_name == "bash" and "cat a.py" in (result.tool_input or "")
    assert parts[0].cache_mark and not parts[1].cache_mark
    before = call.prompt_tokens_sent
    call.edit("test", [(result, "line\n[... 49 lines omitted]")], technique="demo")
    # The caller's lists are untouched (copy-on-write); untouched messages keep identity.
    assert messages == original
    sent = call.body["messages"]
    assert sent[3]["content"] == "line\n[... 49 lines omitted]"
    assert sent[0] is messages[0] and sent[1] is messages[1] and sent[2] is messages[2]
    assert list(call.body) == ["model", "messages", "vendor_field"]
    assert call.prompt_tokens_sent == count_messages(sent, "gpt-4o") < before
    assert call.events[-1].saved == before - call.prompt_tokens_sent


def test_sse_decoder_handles_multiline_crlf_and_split_reads() -> None:
    stream = (b": keep-alive\r\nevent: message_start\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n"
              b"data: one\rdata: two\r\rdata: [DONE]\n\n")
    for size in (1, 2, 3, 7, len(stream)):
        decoder = Decoder()
        events = []
        for start in range(0, len(stream), size):
            events += decoder.feed(stream[start:start + size])
        events += decoder.close()
        assert [(e.event, e.data) for e in events] == [
            ("message_start", '{"a":\n1}'), (None, "one\ntwo"), (None, "[DONE]")]
    assert json.loads(events[0].data) == {"a": 1}
    round_trip = Decoder().feed(encode("line 1\nline 2", event="x"))
    assert [(e.event, e.data) for e in round_trip] == [("x", "line 1\nline 2")]


def test_importing_tokenomy_leaves_the_environment_alone() -> None:
    code = ("import os; before = dict(os.environ); import tokenomy, tokenomy.engine; "
            "from tokenomy.tokenizers import count_text; count_text('hi', 'gpt-4o'); "
            "import sys; sys.exit(0 if dict(os.environ) == before else 1)")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "TRANSFORMERS_", "TIKTOKEN_", "LITELLM_", "TOKENIZERS"))}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("field", ["step", "user", "team"])
def test_identity_fields_are_checked_at_the_edge(field: str) -> None:
    from tokenomy.errors import BadRequest
    from tokenomy.options import take_options

    for bad in ("x" * 300, "a\x00b", "line\nbreak"):
        with pytest.raises(BadRequest) as error:
            take_options({"tokenomy": {field: bad}})
        assert error.value.param == f"tokenomy.{field}"
    with pytest.raises(BadRequest):
        OPENAI_CHAT.validate({"model": "m" * 300, "messages": [{"role": "user",
                                                               "content": "x"}]}, max_items=9)
    with pytest.raises(BadRequest):
        OPENAI_CHAT.validate({"model": "m", "max_tokens": 2**63 - 1,
                              "messages": [{"role": "user", "content": "x"}]}, max_items=9)
