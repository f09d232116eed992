"""The agent's announcements of its own step ("Now let me run the tests:") go; its reasoning stays.

The tool call of the same turn says what was done, and is always sent, so a
sentence that only announces it is read again on every later call for nothing.
What a sentence names must be in the call's command lines for it to go, and a
text is never left empty (Anthropic rejects an empty text block).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent_support import sent
from tokenomy.compressors.agent.announcements import drop_announcements
from tokenomy.compressors.agent.loop import AgentCompressor
from tokenomy.compressors.memo import Memo
from tokenomy.transcript.anthropic_messages import ANTHROPIC_MESSAGES
from tokenomy.transcript.openai_responses import OPENAI_RESPONSES

REASONING = "The error is raised in `schema.py` at line 894, where `data` is None."


@pytest.mark.parametrize(("text", "commands", "sent"), [
    # The step at the end of the text, introducing the call, goes.
    (f"Good! {REASONING} Now let me look at that code:", "sed -n 880,900p schema.py",
     f"Good! {REASONING}"),
    # What it names is in the command: it only restates the call.
    (f"{REASONING}\n\nLet me look at `_invoke_field_validators` in `schema.py`.\n\nMore.",
     "grep -n _invoke_field_validators src/schema.py", f"{REASONING}\n\nMore."),
    # A name the call does not hold stays with its sentence.
    (f"{REASONING}\n\nLet me look at `_invoke_field_validators` in `schema.py`.",
     "grep -n validates src/schema.py", None),
    # A colon in the middle introduces what follows (a list), not the call.
    ("Let me think about the physics:\n- after refraction, cos = 0\n\nLet me test it:",
     "python check.py", "Let me think about the physics:\n- after refraction, cos = 0"),
    # A question or a reason is reasoning.
    (f"{REASONING} Let me check if the parent schema is set.", "grep -rn parent src/", None),
    (f"{REASONING} Let me look at the loader because it builds the fields.",
     "cat loader.py", None),
    # A constraint is not a step.
    (f"{REASONING} Let me not touch the tests.", "sed -i s/a/b/ src/x.py", None),
    (f"{REASONING} I need to keep the public API.", "sed -i s/a/b/ src/x.py", None),
    # Code fences are never touched; the text keeps its trailing newline.
    ("I see the problem:\n```python\nLet me print it.\n```\nLet me fix it:\n",
     "sed -i s/a/b/ x.py", "I see the problem:\n```python\nLet me print it.\n```\n"),
    # Nothing but an announcement: the text stays whole (never an empty block).
    ("Now let me run the reproduction script again:", "python reproduce.py", None),
    # No call in the turn (a final answer): nothing is announced.
    (f"{REASONING} Let me summarise.", "", None),
    # A section label the agent writes ("THOUGHT:") never loses what it labels.
    ("THOUGHT: Let me run the tests.", "pytest", None),
    (f"THOUGHT: {REASONING} Let me run the tests.", "pytest", f"THOUGHT: {REASONING}"),
    # CRLF text keeps its line endings.
    (f"{REASONING} Let me run it.\r\nMore reasoning.\r\n", "python t.py",
     f"{REASONING}\r\nMore reasoning.\r\n"),
    # A long sentence that opens like a step is reasoning.
    ("Let me " + " ".join(["trace"] * 35) + ".", "python t.py", None),
])
def test_only_sentences_that_announce_the_call_go(text: str, commands: str,
                                                  sent: str | None) -> None:
    assert drop_announcements(text, commands) == (text if sent is None else sent)


def _chat(turns: int, text: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "Fix the validation of nested schemas."}]
    for k in range(turns):
        messages += [
            {"role": "assistant", "content": f"{text} (step {k})",
             "tool_calls": [{"id": f"c{k}", "type": "function", "function": {
                 "name": "bash", "arguments": json.dumps({"command": f"python check_{k}.py"})}}]},
            {"role": "tool", "tool_call_id": f"c{k}", "content": f"ok {k}"}]
    return messages


def _send(compressor: AgentCompressor, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(sent(compressor, {"messages": messages})["messages"])


def test_the_live_turn_loses_its_announcement_and_every_later_request_sends_that_form() -> None:
    text = f"{REASONING} Now let me run the check again:"
    messages = _chat(3, "")
    for k, index in enumerate((2, 4, 6)):
        messages[index]["content"] = f"Step {k}. {text}"
    compressor = AgentCompressor(Memo())
    first = _send(compressor, messages[:4])
    assert first[2]["content"] == f"Step 0. {REASONING}"
    later = _send(compressor, messages)
    assert later[2]["content"] == first[2]["content"]  # the cached prefix holds
    assert later[4]["content"] == f"Step 1. {text}"  # sent before this process knew it
    assert later[6]["content"] == f"Step 2. {REASONING}"  # the new live turn
    # A team that keeps the agent's words whole: nothing changes.
    kept = _send(AgentCompressor(Memo(), announcements=False), messages[:4])
    assert kept[2]["content"] == messages[2]["content"]


def test_a_name_only_in_a_written_files_body_keeps_its_sentence() -> None:
    # The body of a file the call writes may be sent as an outline, so a sentence naming
    # something only the body holds is the one place that name may stay.
    body = "\n".join(["import sys", "", "def check_nested_payloads(rows):",
                      *[f"    total_{k} = rows[{k}] * {k}" for k in range(30)],
                      "    return rows", "", "check_nested_payloads(sys.argv)"])
    command = f"cat > probe.py << 'EOF'\n{body}\nEOF\npython probe.py"
    messages = _chat(1, "")
    messages[2]["content"] = (f"{REASONING} Let me write `probe.py` with "
                              f"`total_17` and run it:")
    messages[2]["tool_calls"][0]["function"]["arguments"] = json.dumps({"command": command})
    sent = _send(AgentCompressor(Memo(), min_tokens=50), messages)
    assert sent[2]["content"] == messages[2]["content"]
    messages[2]["content"] = f"{REASONING} Let me write `probe.py` and run it:"
    sent = _send(AgentCompressor(Memo(), min_tokens=50), messages)
    assert sent[2]["content"] == REASONING


def test_anthropic_and_responses_turns_lose_it_too_and_never_send_an_empty_text() -> None:
    call = {"command": "python -m pytest tests/test_schema.py"}
    anthropic = {"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "Fix the validation of nested schemas."},
        {"role": "assistant", "content": [
            {"type": "text", "text": f"{REASONING} Now let me run the tests:"},
            {"type": "tool_use", "id": "t1", "name": "Bash", "input": call}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                      "content": "1 passed"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Now let me run the whole suite of schema tests:"},
            {"type": "tool_use", "id": "t2", "name": "Bash", "input": call}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t2",
                                      "content": "9 passed"}]}]}
    compressor = AgentCompressor(Memo())
    body = sent(compressor, {**anthropic, "messages": anthropic["messages"][:3]},
                ANTHROPIC_MESSAGES)
    assert body["messages"][1]["content"][0]["text"] == REASONING
    # A turn that is nothing but its announcement keeps its text block as it was.
    assert sent(compressor, anthropic, ANTHROPIC_MESSAGES)["messages"][3] \
        == anthropic["messages"][3]

    responses = {"model": "m", "input": [
        {"role": "user", "content": "Fix the validation of nested schemas."},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": f"{REASONING} Now let me run the tests:"}]},
        {"type": "function_call", "call_id": "f1", "name": "shell",
         "arguments": json.dumps(call)},
        {"type": "function_call_output", "call_id": "f1", "output": "1 passed"}]}
    body = sent(AgentCompressor(Memo()), responses, OPENAI_RESPONSES)
    assert body["input"][1]["content"][0]["text"] == REASONING


def test_hostile_texts_cost_linear_time() -> None:
    import time

    for text in ("Let me " + "a" * 200_000, "Let me " + "ab_" * 70_000 + ".",
                 "Let me check x. " * 20_000, "```" * 50_000, "Now " * 50_000 + "let me",
                 "let me " + "aB" * 100_000):
        started = time.perf_counter()
        drop_announcements(text, "python check.py")
        assert time.perf_counter() - started < 2.0
