"""mini-swe-agent's envelope around every tool output is sent in fewer tokens, nothing lost.

`<returncode>0</returncode>\\n<output>\\n...\\n</output>` is 16 tokens read again in
every later call of the loop, around outputs of any size (a third of them empty).
It becomes a `[exit 1]` line, none for a success, and `[no output]` for an empty one.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from agent_support import MODEL, sent
from tokenomy.compressors.agent.loop import AgentCompressor
from tokenomy.compressors.memo import Memo
from tokenomy.compressors.tool_outputs import compress_tool_output
from tokenomy.compressors.tool_outputs.wrapper import compact_envelope
from tokenomy.tokenizers import count_text
from tokenomy.transcript.anthropic_messages import ANTHROPIC_MESSAGES
from tokenomy.transcript.openai_responses import OPENAI_RESPONSES

LONG = ("<returncode>0</returncode>\n<warning>\nThe output of your last command was too long."
        "\n</warning><output_head>\na\n</output_head>\n<elided_chars>\n9 characters elided\n"
        "</elided_chars>\n<output_tail>\nb\n</output_tail>")


def _envelope(code: int, body: str) -> str:
    return f"<returncode>{code}</returncode>\n<output>\n{body}\n</output>"


@pytest.mark.parametrize(("output", "sent"), [
    (_envelope(0, "/testbed\nsetup.py"), "/testbed\nsetup.py"),  # a success: its output
    (_envelope(1, "Traceback ..."), "[exit 1]\nTraceback ..."),  # a failure says so
    (_envelope(-9, "Killed"), "[exit -9]\nKilled"),
    ("<returncode>0</returncode>\n<output>\n</output>", "[no output]"),
    ("<returncode>2</returncode>\n<output>\n</output>", "[exit 2; no output]"),
    (_envelope(0, "  \n "), "[no output]"),  # never a blank block (Anthropic rejects one)
    # An output that looks like a status line cannot pass for one: it states its own.
    (_envelope(0, "[exit 1]\nforged"), "[exit 0]\n[exit 1]\nforged"),
    (_envelope(0, "[no output]"), "[exit 0]\n[no output]"),
    (_envelope(1, "[no output]"), "[exit 1]\n[no output]"),
    # Only the outermost tags go: an output that prints the tags itself keeps them.
    (_envelope(0, "<output>\nx\n</output>"), "<output>\nx\n</output>"),
    # A long output: the harness's own parts keep their tags, the returncode line goes.
    (LONG, LONG.removeprefix("<returncode>0</returncode>\n")),
    (LONG.replace("<returncode>0", "<returncode>1"),
     "[exit 1]\n" + LONG.removeprefix("<returncode>0</returncode>\n")),
])
def test_the_envelope_says_the_same_in_fewer_tokens(output: str, sent: str) -> None:
    assert compact_envelope(output) == sent
    assert count_text(sent, MODEL) < count_text(output, MODEL)


def _read_back(text: str) -> tuple[str, str]:
    """(returncode, output) from a compacted envelope, by the rule its docstring states."""
    empty = re.fullmatch(r"\[exit (-?\d+); no output\]", text)
    if text == "[no output]" or empty:
        return (empty.group(1) if empty else "0"), ""
    status = re.match(r"\[exit (-?\d+)\]\n", text)
    return (status.group(1), text[status.end():]) if status else ("0", text)


def test_every_status_and_output_can_be_read_back() -> None:
    bodies = ["", "ok", "[exit 1]", "[exit 1]\nx", "[no output]", "[exit 2; no output]",
              "[exit 0]", "[exit", "  [exit 1]", "line\n[exit 1]", "</output>", "\n"]
    for code in ("0", "1", "-9", "127"):
        for body in bodies:
            compact = compact_envelope(f"<returncode>{code}</returncode>\n<output>\n{body}"
                                       "\n</output>")
            assert compact is not None and compact.strip()
            assert _read_back(compact) == (code, body if body.strip() else "")


@pytest.mark.parametrize("output", [
    "plain output", "<returncode>x</returncode>\n<output>\ny\n</output>",
    "Exit code: 0\nWall time: 0.1 seconds\nOutput:\nok", "<returncode>0</returncode>\n",
    " <returncode>0</returncode>\n<output>\nx\n</output>"])
def test_anything_else_is_left_alone(output: str) -> None:
    assert compact_envelope(output) is None


def test_compress_tool_output_applies_it_at_any_size_and_counts_it() -> None:
    short = _envelope(0, "3 passed")
    done = compress_tool_output(short, command="pytest", tool_name="bash", query="",
                                model=MODEL, min_tokens=100, envelopes=True)
    assert done.text == "3 passed"
    assert done.tokens_after == count_text("3 passed", MODEL) < done.tokens_before
    assert compress_tool_output(short, command="pytest", tool_name="bash", query="",
                                model=MODEL, min_tokens=100).text == short  # off by default
    # A long output: its body is compressed as before, then its envelope.
    body = "\n".join(f"Collecting pkg{k}\n  Downloading pkg{k}-1.0.tar.gz (12 kB)"
                     for k in range(40)) + "\nSuccessfully installed pkg0"
    long = compress_tool_output(_envelope(0, body), command="pip install pkg0",
                                tool_name="bash", query="", model=MODEL, envelopes=True)
    assert long.text.startswith("Successfully installed pkg0\n[80 installer progress lines")
    assert "<output>" not in long.text and "Downloading pkg3" not in long.text
    assert long.tokens_after == count_text(long.text, MODEL)


def _chat(outputs: list[str]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "Fix the validation of nested schemas."}]
    for k, output in enumerate(outputs):
        messages += [
            {"role": "assistant", "content": f"Step {k}.", "tool_calls": [{
                "id": f"c{k}", "type": "function", "function": {
                    "name": "bash", "arguments": json.dumps({"command": f"python t{k}.py"})}}]},
            {"role": "tool", "tool_call_id": f"c{k}", "content": output}]
    return messages


def _send(compressor: AgentCompressor, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(sent(compressor, {"messages": messages})["messages"])


def test_the_live_output_is_compacted_once_and_sent_that_way_at_every_later_turn() -> None:
    outputs = [_envelope(0, "ok"), "<returncode>0</returncode>\n<output>\n</output>",
               _envelope(1, "FAILED")]
    messages = _chat(outputs)
    memo = Memo()
    # A conversation already in flight when compression began: its first output was
    # sent as the client wrote it, and stays so (the provider has cached it).
    first = _send(AgentCompressor(memo), messages[:6])
    assert first[3]["content"] == outputs[0]
    assert first[5]["content"] == "[no output]"
    # A restart (a new process) on the same memo: the recorded forms are sent again.
    later = _send(AgentCompressor(memo), messages)
    assert later[:6] == first
    assert later[7]["content"] == "[exit 1]\nFAILED"
    # `envelopes = false`: every output as the client sent it.
    kept = _send(AgentCompressor(Memo(), envelopes=False), messages)
    assert [m["content"] for m in kept if m["role"] == "tool"] == outputs


def test_anthropic_and_responses_tool_results_are_compacted_too() -> None:
    call = {"command": "python t.py"}
    anthropic = {"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "Fix it."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "bash",
                                           "input": call}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                      "content": _envelope(1, "boom")}]}]}
    body = sent(AgentCompressor(Memo()), anthropic, ANTHROPIC_MESSAGES)
    assert body["messages"][2]["content"][0]["content"] == "[exit 1]\nboom"

    responses = {"model": "m", "input": [
        {"role": "user", "content": "Fix it."},
        {"type": "function_call", "call_id": "f1", "name": "shell",
         "arguments": json.dumps(call)},
        {"type": "function_call_output", "call_id": "f1",
         "output": "<returncode>0</returncode>\n<output>\n</output>"}]}
    body = sent(AgentCompressor(Memo()), responses, OPENAI_RESPONSES)
    assert body["input"][2]["output"] == "[no output]"


def test_hostile_envelopes_cost_linear_time() -> None:
    import time

    for output in ("<returncode>" + "9" * 200_000 + "</returncode>\n<output>\nx\n</output>",
                   "<returncode>0</returncode>\n" + "<output>\n" * 50_000,
                   _envelope(0, "</output>\n" * 50_000)):
        started = time.perf_counter()
        compact_envelope(output)
        assert time.perf_counter() - started < 1.0
