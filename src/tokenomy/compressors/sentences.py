"""Splitting context into documents and sentences, keeping character offsets.

Offsets matter: compressors report the spans they kept, and reassembly takes
the exact original characters so nothing inside a kept sentence is altered
(non-English text survives as whole sentences, never re-tokenised).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A sentence ends at . ! ? … (plus closing quotes/brackets) followed by space,
# or at CJK / Arabic / Devanagari terminators, which need no space after them.
_LATIN_END = re.compile(r"[.!?…]+[\"'”’)\]»]*\s+")
_WIDE_END = re.compile(r"[。！？؟۔।]+[\"'”’)\]」』]*\s*")
_FENCE = re.compile(r"^(```|~~~)[^\n]*\n.*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_ABBREV = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "no", "fig",
    "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
    "oct", "nov", "dec", "u.s", "u.k", "approx", "vol", "pp", "cf", "al", "gen", "col", "lt",
}

# Explicit document markers: <document ...>...</document> (any tag name ending in
# "doc"/"document"/"passage"/"context"), or numbered blocks "[1] ..." / "Document 2:".
_TAGGED = re.compile(
    r"<(?P<tag>doc|document|passage|context|source)\b[^>]*>(?P<body>.*?)</(?P=tag)\s*>",
    re.IGNORECASE | re.DOTALL,
)
_NUMBERED = re.compile(
    r"^[ \t]*(?:\[\d+\]|\(\d+\)|(?:document|doc|passage|source)\s*#?\d+\s*[:.)\]-])[ \t]*",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass
class Sentence:
    start: int
    end: int
    text: str
    atomic: bool = False  # a code fence or table row block: never split, keep whole or drop


@dataclass
class Document:
    start: int  # the whole block, header included
    end: int
    header: tuple[int, int] | None = None  # e.g. "[3] " or "<document id=2>"
    footer: tuple[int, int] | None = None  # e.g. "</document>"
    sentences: list[Sentence] = field(default_factory=list)


def _is_sentence_start(ch: str) -> bool:
    """Upper-case, a digit, an opening mark, or a script without case (Arabic, CJK)."""
    if ch.isupper() or ch.isdigit() or ch in "\"'“‘([«¿¡*-•#":
        return True
    return ch.isalpha() and ch.lower() == ch.upper()


def _prose_sentences(text: str, offset: int) -> list[Sentence]:
    """Sentences of plain prose (no code fences inside), by punctuation and line breaks."""
    cuts: list[int] = []
    for match in _LATIN_END.finditer(text):
        end = match.end()
        if end >= len(text):
            continue
        if "\n" in match.group(0) or _is_sentence_start(text[end]):
            head = text[: match.start()].rsplit(None, 1)
            word = head[-1].lower().rstrip(".") if head else ""
            # "Dr. Smith", "U.S. Army", "J. Smith": an abbreviation, not an end
            # (a standalone " . " from whitespace-tokenised text always ends).
            if "\n" not in match.group(0) and head and text[match.start() - 1] != " " and (
                word in _ABBREV or (len(word) == 1 and word.isalpha())
            ):
                continue
            cuts.append(end)
    cuts.extend(m.end() for m in _WIDE_END.finditer(text) if m.end() < len(text))
    # Line breaks end sentences too (lists, headings, table rows).
    cuts.extend(m.end() for m in re.finditer(r"\n+", text) if m.end() < len(text))
    out: list[Sentence] = []
    prev = 0
    for cut in [*sorted(set(cuts)), len(text)]:
        if cut <= prev:
            continue
        chunk = text[prev:cut]
        stripped = chunk.strip()
        if stripped:
            lead = len(chunk) - len(chunk.lstrip())
            s = offset + prev + lead
            out.append(Sentence(s, s + len(stripped), stripped))
        prev = cut
    return out


def split_sentences(text: str, offset: int = 0) -> list[Sentence]:
    """Sentences with offsets into the full text; fenced code blocks stay atomic."""
    out: list[Sentence] = []
    pos = 0
    for fence in _FENCE.finditer(text):
        out.extend(_prose_sentences(text[pos : fence.start()], offset + pos))
        out.append(Sentence(offset + fence.start(), offset + fence.end(), fence.group(0), True))
        pos = fence.end()
    out.extend(_prose_sentences(text[pos:], offset + pos))
    return out


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_documents(text: str) -> list[Document]:
    """Documents by explicit tags, numbered blocks, or blank-line paragraphs."""
    docs: list[Document] = []
    tagged = list(_TAGGED.finditer(text))
    if tagged:
        pos = 0
        for m in tagged:
            docs.extend(_paragraph_docs(text, pos, m.start()))
            body_start, body_end = m.start("body"), m.end("body")
            doc = Document(m.start(), m.end(), (m.start(), body_start), (body_end, m.end()))
            doc.sentences = split_sentences(text[body_start:body_end], body_start)
            docs.append(doc)
            pos = m.end()
        docs.extend(_paragraph_docs(text, pos, len(text)))
        return docs
    numbered = list(_NUMBERED.finditer(text))
    if len(numbered) >= 2:
        docs.extend(_paragraph_docs(text, 0, numbered[0].start()))
        for i, m in enumerate(numbered):
            end = numbered[i + 1].start() if i + 1 < len(numbered) else len(text)
            start, end = _strip_span(text, m.start(), end)
            doc = Document(start, end, (m.start(), m.end()))
            doc.sentences = split_sentences(text[m.end() : end], m.end())
            docs.append(doc)
        return docs
    return _paragraph_docs(text, 0, len(text))


def _paragraph_docs(text: str, start: int, end: int) -> list[Document]:
    """Blank-line separated paragraphs, each a document (fences are never cut)."""
    docs: list[Document] = []
    region = text[start:end]
    fences = [(m.start(), m.end()) for m in _FENCE.finditer(region)]
    pos = 0
    for m in re.finditer(r"\n[ \t]*\n\s*", region):
        if any(a < m.start() < b for a, b in fences):
            continue
        docs.extend(_one_doc(text, start + pos, start + m.start()))
        pos = m.end()
    docs.extend(_one_doc(text, start + pos, end))
    return docs


def _one_doc(text: str, start: int, end: int) -> list[Document]:
    start, end = _strip_span(text, start, end)
    if start >= end:
        return []
    doc = Document(start, end)
    doc.sentences = split_sentences(text[start:end], start)
    return [doc]
