"""Segmenting chat requests and putting them back together."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from tokenomy.compressors.history import ELIDED_TOOL_OUTPUT
from tokenomy.compressors.messages import compress_messages
from tokenomy.compressors.segments import reassemble, segment_messages, split_question
from tokenomy.tokenizers import count_messages

DATA = Path(__file__).resolve().parent.parent / "data" / "qa_passages.dev.jsonl"
MODEL = "gpt-4o"
ROWS = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()[:30]]
SYSTEM = {"role": "system", "content": "You are a careful assistant.   Cite   passages."}


def _docs(n: int, start: int = 0) -> str:
    return "\n\n".join(f"[{i + 1}] {r['passage']}" for i, r in enumerate(ROWS[start:start + n]))


def test_kinds_of_a_rag_request():
    item = ROWS[3]
    messages = [
        SYSTEM,
        {"role": "user", "name": "example_user", "content": "Example question?"},
        {"role": "assistant", "name": "example_assistant", "content": "Example answer."},
        {"role": "user", "content": f"{_docs(6)}\n\nQuestion: {item['question']}"},
    ]
    segments = segment_messages(messages)
    kinds = [(s.message, s.kind) for s in segments]
    assert kinds[:3] == [(0, "prefix"), (1, "prefix"), (2, "prefix")]
    assert (3, "document") in kinds and (3, "question") in kinds
    question = "".join(s.text for s in segments if s.kind == "question")
    assert item["question"] in question
    assert "[1]" not in question


def test_split_question_variants():
    docs = _docs(3)
    tagged = (f"<document>{ROWS[0]['passage']}</document>\n"
              f"<document>{ROWS[1]['passage']}</document>\nWho?")
    pieces = split_question(tagged)
    assert [k for k, _ in pieces] == ["document", "question"]
    assert "".join(t for _, t in pieces) == tagged
    first = f"Which film did Ray Chen direct?\n\n{docs}"
    assert [k for k, _ in split_question(first)] == ["question", "document"]
    last = f"{docs}\n\nAnswer using the passages: who directed the film?"
    kinds = [k for k, _ in split_question(last)]
    assert kinds == ["document", "question"]
    labelled = f"Context:\n{ROWS[0]['passage']}\n{ROWS[1]['passage']}\nQuestion: who?"
    pieces = split_question(labelled)
    assert pieces[0] == ("question", "Context:") and pieces[-1][0] == "question"
    assert split_question("Just a short question?") == [("question", "Just a short question?")]


def test_tool_outputs_history_and_recent_turns():
    messages = [
        SYSTEM,
        {"role": "user", "content": "old question one"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "search", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "t1", "content": ROWS[0]["passage"]},
        {"role": "assistant", "content": "old answer one"},
        {"role": "user", "content": "recent question"},
        {"role": "assistant", "content": "recent answer"},
        {"role": "user", "content": "current question?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "t2", "type": "function", "function": {"name": "search", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "t2", "content": ROWS[1]["passage"]},
    ]
    kinds = {s.message: s.kind for s in segment_messages(messages, keep_last_turns=1)}
    assert kinds[1] == kinds[3] == kinds[4] == "history"
    assert kinds[5] == kinds[6] == "keep"
    assert kinds[7] == "question"
    assert kinds[9] == "tool_output"
    assert 8 not in kinds  # no text: nothing to segment


def test_content_parts_and_named_documents():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    messages = [
        SYSTEM,
        {"role": "user", "content": "Background notes " + ROWS[5]["passage"]},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [
            {"type": "text", "text": ROWS[4]["passage"]}, image,
            {"type": "text", "text": "What does the passage say?"}]},
    ]
    segments = segment_messages(messages, documents=[1], keep_last_turns=0)
    by_key = {(s.message, s.part): s.kind for s in segments}
    assert by_key[(1, None)] == "document"
    assert by_key[(3, 0)] == "document" and by_key[(3, 2)] == "question"
    texts = [s.text.upper() if s.kind == "document" else s.text for s in segments]
    out = reassemble(messages, segments, texts)
    assert out[3]["content"][1] == image
    assert out[3]["content"][0]["text"] == ROWS[4]["passage"].upper()
    assert out[0] is messages[0] and out[2] is messages[2]  # untouched messages are shared


def test_compress_messages_keeps_prefix_question_and_tool_ids():
    item = ROWS[12]
    tools_out = json.dumps([{"id": i, "title": r["id"], "score": 0.5} for i, r in
                            enumerate(ROWS[:12])], indent=2)
    messages = [
        SYSTEM,
        {"role": "user", "content": item["question"]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "search", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "meta", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": _docs(12, start=4)},
        {"role": "tool", "tool_call_id": "c2", "content": tools_out},
    ]
    snapshot = copy.deepcopy(messages)
    result = compress_messages(messages, model=MODEL, target_ratio=4)
    assert messages == snapshot  # the input is not mutated
    out = result.messages
    assert json.dumps(out[0]) == json.dumps(SYSTEM)  # byte-identical prefix
    assert out[1] == messages[1] and out[2] == messages[2]
    assert [m.get("tool_call_id") for m in out[3:]] == ["c1", "c2"]
    json.loads(out[4]["content"])  # JSON tool output still valid
    assert any(a.lower() in out[3]["content"].lower() for a in item["answers"])
    assert result.tokens_after == count_messages(out, MODEL)
    assert result.tokens_after < result.tokens_before / 2.5
    techniques = {s.technique for s in result.stats}
    assert {"lossless", "extractive"} <= techniques


def test_history_drops_resolved_tool_outputs_first():
    long_tool = _docs(8)
    messages = [SYSTEM]
    for turn in range(3):
        messages += [
            {"role": "user", "content": f"question {turn}"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"h{turn}", "type": "function",
                 "function": {"name": "search", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": f"h{turn}", "content": long_tool + f" turn {turn}"},
            {"role": "assistant", "content": f"answer {turn}"},
        ]
    messages.append({"role": "user", "content": "and now?"})
    result = compress_messages(messages, model=MODEL, target_ratio=3, keep_last_turns=1)
    out = result.messages
    assert out[3]["content"] == ELIDED_TOOL_OUTPUT and out[3]["tool_call_id"] == "h0"
    assert out[7]["content"] == ELIDED_TOOL_OUTPUT
    assert out[11] == messages[11]  # the most recent turn is verbatim
    assert "history" in {s.technique for s in result.stats}


def test_duplicate_documents_across_messages():
    doc = ROWS[2]["passage"]
    messages = [
        SYSTEM,
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "s", "arguments": "{}"}},
            {"id": "b", "type": "function", "function": {"name": "s", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "a", "content": doc},
        {"role": "tool", "tool_call_id": "b", "content": doc},
    ]
    messages[1]["content"] = "What is this passage about?"
    result = compress_messages(messages, model=MODEL, method="lossless")
    assert result.messages[3]["content"] == doc
    assert result.messages[4]["content"] == "[same content as message 3 above]"
