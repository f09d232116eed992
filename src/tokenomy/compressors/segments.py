"""Splitting an OpenAI `messages` list into segments that compress differently.

Kinds:
- `prefix`: leading system/developer messages and few-shot examples (`name:
  example_*`): byte-identical by default so provider prompt caches keep hitting;
- `question`: the last user turn's question, never compressed (when that turn
  also carries documents, it is split and only the documents compress);
- `document`: retrieved context: content parts before the question, user turns
  right before it, `<document>`/numbered blocks, messages named in
  `CompressOptions.documents`;
- `tool_output`: tool results of the current turn; `code`: a document or tool
  output that is source code;
- `history`: older turns; `keep`: everything else (recent turns, assistant
  tool calls), left as is.

Segments of one message (or one content part) tile its text exactly, so
reassembly is concatenation; roles, tool_call_ids and non-text parts are kept.
"""

from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass
from typing import Any, Literal

SegmentKind = Literal["prefix", "question", "document", "tool_output", "code", "history", "keep"]
COMPRESSIBLE: frozenset[str] = frozenset({"document", "tool_output", "code", "history"})

_TAG = re.compile(r"<(doc|document|passage|context|source)\b[^>]*>.*?</\1\s*>",
                  re.IGNORECASE | re.DOTALL)
_NUMBERED = re.compile(r"^[ \t]*(\[\d+\]|(document|doc|passage|source)\s*#?\d+\s*[:.)\]-])",
                       re.IGNORECASE | re.MULTILINE)
_QUESTION_MARK = re.compile(r"^[ \t]*(question|query|q|task|instruction)s?\s*[:：]",
                            re.IGNORECASE | re.MULTILINE)
_CONTEXT_MARK = re.compile(r"^[ \t]*(context|documents?|passages?|sources?|background)\s*[:：]",
                           re.IGNORECASE | re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~)[^\n]*\n.*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass
class Segment:
    message: int
    part: int | None  # index into a list `content`, None for string content
    kind: SegmentKind
    text: str
    role: str

    @property
    def key(self) -> tuple[int, int | None]:
        return (self.message, self.part)


def _text_parts(content: Any) -> list[tuple[int | None, str]]:
    if isinstance(content, str):
        return [(None, content)]
    if isinstance(content, list):
        return [
            (i, str(p.get("text") or ""))
            for i, p in enumerate(content)
            if isinstance(p, dict) and p.get("type") in ("text", "input_text") and p.get("text")
        ]
    return []


def looks_like_code(text: str) -> bool:
    """Mostly a fenced block, or multi-line Python with definitions."""
    stripped = text.strip()
    if not stripped:
        return False
    fenced = sum(len(m.group(0)) for m in _FENCE.finditer(stripped))
    if fenced > 0.6 * len(stripped):
        return True
    if stripped.count("\n") < 3 or not re.search(r"^\s*(def|class|import|from)\s", stripped, re.M):
        return False
    try:
        ast.parse(stripped)
    except SyntaxError:
        return False
    return True


def split_question(text: str, *, min_doc_chars: int = 400) -> list[tuple[SegmentKind, str]]:
    """The last user turn as (kind, text) pieces that concatenate back to `text`."""
    if len(text) < min_doc_chars:
        return [("question", text)]
    regions = [(m.start(), m.end()) for m in _TAG.finditer(text)]
    if not regions:
        numbered = list(_NUMBERED.finditer(text))
        if len(numbered) >= 2:
            start = numbered[0].start()
            q = _QUESTION_MARK.search(text, numbered[-1].end())
            end = q.start() if q else _last_paragraph_start(text, numbered[-1].end())
            regions = [(start, end)]
    if not regions:
        q, c = _QUESTION_MARK.search(text), _CONTEXT_MARK.search(text)
        # The "Context:" label itself stays with the question part.
        if c and q and c.start() < q.start():
            regions = [(c.end(), q.start())]
        elif c and q and q.start() < c.start():
            regions = [(c.end(), len(text))]
    if not regions:
        regions = _paragraph_split(text)
    if not regions:
        return [("question", text)]
    merged: list[tuple[int, int]] = []
    for start, end in regions:  # documents separated only by whitespace form one piece
        if merged and not text[merged[-1][1] : start].strip():
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    regions = merged
    pieces: list[tuple[SegmentKind, str]] = []
    pos = 0
    for start, end in regions:
        if start > pos:
            pieces.append(("question", text[pos:start]))
        pieces.append(("document", text[start:end]))
        pos = end
    if pos < len(text):
        pieces.append(("question", text[pos:]))
    return [p for p in pieces if p[1]]


def _last_paragraph_start(text: str, after: int) -> int:
    """Where a trailing short paragraph (the question) begins, or the end of text."""
    breaks = [m.end() for m in re.finditer(r"\n[ \t]*\n", text) if m.start() >= after]
    if breaks and len(text) - breaks[-1] < 600:
        return breaks[-1]
    return len(text)


def _paragraph_split(text: str) -> list[tuple[int, int]]:
    """No markers: a short last paragraph after long ones is the question (or a short first one)."""
    paras = [(m.start(), m.end()) for m in re.finditer(r"\S(?:.*?\S)?(?=\n[ \t]*\n|\Z)", text,
                                                       re.DOTALL)]
    if len(paras) < 2:
        return []
    last, first = paras[-1], paras[0]
    if last[1] - last[0] < 600 and last[0] > 2 * (last[1] - last[0]):
        return [(first[0], paras[-2][1])]
    head = text[first[0] : first[1]].rstrip()
    if first[1] - first[0] < 600 and head.endswith(("?", ":", "？", "：")):
        return [(paras[1][0], last[1])]
    return []


def segment_messages(
    messages: list[dict[str, Any]],
    *,
    documents: list[int] | None = None,
    keep_last_turns: int = 2,
) -> list[Segment]:
    """Classify every text piece of every message (see the module docstring)."""
    n = len(messages)
    roles = [str(m.get("role") or "") for m in messages]
    users = [i for i, r in enumerate(roles) if r == "user"]
    last_user = users[-1] if users else None
    prefix_end = 0
    while prefix_end < n and (
        roles[prefix_end] in ("system", "developer")
        or str(messages[prefix_end].get("name") or "").startswith("example_")
    ):
        prefix_end += 1
    # Recent turns stay verbatim: from the start of the N-th last earlier user turn.
    earlier = [u for u in users if last_user is not None and prefix_end <= u < last_user]
    current = last_user if last_user is not None else n
    if keep_last_turns <= 0 or not earlier:
        recent_from = current
    else:
        recent_from = earlier[-min(keep_last_turns, len(earlier))]
    # User turns right before the question (no assistant between) hold its documents.
    doc_run_start = last_user
    while doc_run_start is not None and doc_run_start - 1 >= prefix_end \
            and roles[doc_run_start - 1] == "user":
        doc_run_start -= 1
    named_docs = set(documents or [])

    segments: list[Segment] = []
    for i, message in enumerate(messages):
        role = roles[i]
        parts = _text_parts(message.get("content"))
        for j, (part, text) in enumerate(parts):
            kind = _kind(i, role, message, prefix_end, last_user, recent_from, doc_run_start,
                         named_docs)
            if kind == "question":
                if j < len(parts) - 1:
                    segments.append(Segment(i, part, _docish(text, "document"), text, role))
                    continue
                for piece_kind, piece in split_question(text):
                    kind_here: SegmentKind = (
                        _docish(piece, "document") if piece_kind == "document" else "question"
                    )
                    segments.append(Segment(i, part, kind_here, piece, role))
                continue
            if kind in ("document", "tool_output"):
                kind = _docish(text, kind)
            segments.append(Segment(i, part, kind, text, role))
    return segments


def _docish(text: str, kind: SegmentKind) -> SegmentKind:
    return "code" if looks_like_code(text) else kind


def _kind(i: int, role: str, message: dict[str, Any], prefix_end: int, last_user: int | None,
          recent_from: int, doc_run_start: int | None, named_docs: set[int]) -> SegmentKind:
    if i < prefix_end:
        return "prefix"
    if i in named_docs:
        return "document"
    if i == last_user:
        return "question"
    if last_user is not None and i > last_user:
        # The current agent loop: tool results are the changing context.
        return "tool_output" if role in ("tool", "function") else "keep"
    if doc_run_start is not None and doc_run_start <= i and role == "user":
        return "document"
    if i >= recent_from:
        return "keep"
    return "history"


def reassemble(
    messages: list[dict[str, Any]], segments: list[Segment], texts: list[str]
) -> list[dict[str, Any]]:
    """New messages with each segment's text replaced; untouched messages are shared."""
    grouped: dict[tuple[int, int | None], list[str]] = {}
    changed: set[int] = set()
    for seg, text in zip(segments, texts, strict=True):
        grouped.setdefault(seg.key, []).append(text)
        if text != seg.text:
            changed.add(seg.message)
    out = list(messages)
    for i in sorted(changed):
        message = copy.copy(messages[i])
        content = message.get("content")
        if isinstance(content, str):
            message["content"] = "".join(grouped[(i, None)])
        elif isinstance(content, list):
            parts = [dict(p) if isinstance(p, dict) else p for p in content]
            for (mi, part), pieces in grouped.items():
                if mi == i and part is not None:
                    parts[part]["text"] = "".join(pieces)
            message["content"] = parts
        out[i] = message
    return out
