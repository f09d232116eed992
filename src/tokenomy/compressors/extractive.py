"""Query-aware extractive compression: keep the sentences the question needs.

Coarse to fine (as LongLLMLingua found matters most): every sentence is scored
against the question with hybrid BM25 + MiniLM cosine, mixed with the score of
its document, smoothed toward its neighbours (so a kept sentence keeps the one
that gives it context), boosted when it carries what the question asks for
(its named entities, a number for "when/how many", a negation), then a greedy
knapsack fills the token budget with the best sentences. Kept text is copied
from the original byte for byte and put back in original order (or most
relevant document first).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tokenomy.compressors.base import (
    CompressionResult,
    Span,
    count_or_skip,
    make_result,
)
from tokenomy.compressors.relevance import (
    NEGATION,
    NUMBER,
    bm25_scores,
    hybrid_scores,
    mentions,
    query_entities,
    wants_number,
)
from tokenomy.compressors.sentences import Document, Sentence, split_documents
from tokenomy.scoring.deadline import check
from tokenomy.scoring.embeddings import EmbeddingCache, default_cache
from tokenomy.tokenizers import count_text, get_encoder

LEAD_BONUS = 0.05  # share of the document score given to its first sentence
SEPARATOR = 2  # the blank line between two kept documents, in tokens


def _opening(doc: int, opened: set[int], doc_overhead: list[int]) -> int:
    """What keeping a first sentence of `doc` adds besides the sentence: its header and
    footer, and the blank line before it unless it is the first document kept (a short
    single text must not lose two tokens of its budget to a separator it never has)."""
    if doc in opened:
        return 0
    return doc_overhead[doc] - (SEPARATOR if not opened else 0)


@dataclass
class _Unit:
    """One sentence in the pool, with where it came from."""

    text_index: int
    doc: int  # global document index
    sentence: Sentence
    cost: int
    score: float = 0.0


class ExtractiveCompressor:
    name = "extractive"

    def __init__(
        self,
        *,
        reorder: bool = False,
        bm25_weight: float = 0.45,
        doc_weight: float = 0.3,
        neighbour_weight: float = 0.6,
        max_embed: int = 1500,
        cache: EmbeddingCache | None = None,
    ):
        self.reorder = reorder
        self.bm25_weight = bm25_weight
        self.doc_weight = doc_weight
        self.neighbour_weight = neighbour_weight
        self.max_embed = max_embed
        self._cache = cache

    @property
    def cache(self) -> EmbeddingCache:
        return self._cache or default_cache()

    def compress(
        self, text: str, *, query: str | None, target_tokens: int, model: str
    ) -> CompressionResult:
        started = time.perf_counter()
        original_tokens, skipped = count_or_skip(text, model=model, method=self.name,
                                                 started=started, budget=target_tokens)
        if skipped is not None:
            return skipped
        [(out, spans)] = self.compress_many([text], query=query or "", budget=target_tokens,
                                            model=model)
        return make_result(text, out, model=model, method=self.name, started=started,
                           kept_spans=spans, original_tokens=original_tokens)

    # -- the multi-text core (the stage compresses several messages as one pool) --

    def compress_many(
        self, texts: Sequence[str], *, query: str, budget: int, model: str
    ) -> list[tuple[str, list[Span]]]:
        """Select under one shared budget across all texts; returns (text, kept spans) each."""
        encoder = get_encoder(model)
        docs_per_text = [split_documents(t) for t in texts]
        units: list[_Unit] = []
        doc_texts: list[str] = []
        doc_overhead: list[int] = []
        doc_units: list[list[int]] = []
        for ti, (text, docs) in enumerate(zip(texts, docs_per_text, strict=True)):
            for doc in docs:
                gd = len(doc_texts)
                doc_texts.append(text[doc.start : doc.end])
                overhead = SEPARATOR
                for part in (doc.header, doc.footer):
                    if part:
                        overhead += encoder.count(text[part[0] : part[1]])
                doc_overhead.append(overhead)
                doc_units.append([])
                for sent in doc.sentences:
                    doc_units[gd].append(len(units))
                    units.append(_Unit(ti, gd, sent, encoder.count(sent.text)))
        if not units:
            return [(t, [(0, len(t))] if t else []) for t in texts]
        self._score(units, doc_texts, doc_units, query)
        kept = self._select(units, doc_overhead, budget)
        out = [self._render(texts[ti], docs_per_text[ti], units, kept, ti)
               for ti in range(len(texts))]
        out = self._trim(texts, docs_per_text, units, kept, out, budget, model, doc_overhead)
        return self._never_empty(texts, docs_per_text, units, kept, out)

    def _never_empty(self, texts: Sequence[str], docs_per_text: list[list[Document]],
                     units: list[_Unit], kept: set[int], out: list[tuple[str, list[Span]]]
                     ) -> list[tuple[str, list[Span]]]:
        """A text with sentences never comes out empty: when no whole sentence fit the
        budget, its best sentence is kept whole (over the budget: a finer pass, such as
        `auto`'s token pruning, takes it the rest of the way)."""
        for ti, (text, _) in enumerate(out):
            if text:
                continue
            own = [i for i in range(len(units)) if units[i].text_index == ti]
            if own:
                kept.add(max(own, key=lambda i: units[i].score))
                out[ti] = self._render(texts[ti], docs_per_text[ti], units, kept, ti)
        return out

    def _score(self, units: list[_Unit], doc_texts: list[str], doc_units: list[list[int]],
               query: str) -> None:
        sentences = [u.sentence.text for u in units]
        if not query.strip():
            # No question: favour the start of each document (lead bias).
            for ids in doc_units:
                for rank, i in enumerate(ids):
                    units[i].score = 1.0 / (1 + rank)
            return
        candidates = self._candidates(sentences, query)
        scores = np.zeros(len(units), dtype=np.float32)
        embeddings = np.zeros((len(units), 384), dtype=np.float32)
        cand_texts = [sentences[i] for i in candidates]
        cand_scores, cand_emb = hybrid_scores(cand_texts, query, bm25_weight=self.bm25_weight,
                                              cache=self.cache)
        scores[candidates] = cand_scores
        embeddings[candidates] = cand_emb
        # Document level: the mean of its sentence embeddings (no extra model call) + BM25.
        qvec = self.cache.embed([query])[0]
        doc_cos = np.zeros(len(doc_texts), dtype=np.float32)
        for d, ids in enumerate(doc_units):
            if ids:
                mean = embeddings[ids].mean(axis=0)
                norm = float(np.linalg.norm(mean))
                doc_cos[d] = float(mean @ qvec) / norm if norm > 0 else 0.0
        doc_bm25 = bm25_scores(doc_texts, query)
        doc_score = 0.5 * _minmax(doc_cos) + 0.5 * _minmax(doc_bm25)

        entities = query_entities(query)
        numeric = wants_number(query)
        median = float(np.median(scores)) if len(scores) else 0.0
        base = np.empty(len(units), dtype=np.float32)
        # A relevant document's first sentence often names its subject ("X as Y ..."),
        # which a question matches only by meaning: give it a share of its document's score.
        leads = {ids[0] for ids in doc_units if ids}
        for i, u in enumerate(units):
            s = (1 - self.doc_weight) * float(scores[i]) + self.doc_weight * float(doc_score[u.doc])
            if i in leads:
                s += LEAD_BONUS * float(doc_score[u.doc])
            text = u.sentence.text
            hit = mentions(text, entities) if entities else 0
            if hit:
                s += 0.08 + 0.04 * min(hit - 1, 2)
            has_number = bool(NUMBER.search(text))
            if numeric and has_number:
                s += 0.1
            elif scores[i] > median and (has_number or NEGATION.search(text)):
                s += 0.03  # protect facts that matter: only among the relevant half
            if u.sentence.atomic:
                s += 10.0  # code fences are never dropped
            base[i] = s
        # Neighbours: a sentence next to a strong one inherits part of its score.
        for ids in doc_units:
            for k, i in enumerate(ids):
                best = base[i]
                for j in (k - 1, k + 1):
                    if 0 <= j < len(ids):
                        best = max(best, self.neighbour_weight * base[ids[j]])
                units[i].score = float(best)

    def _candidates(self, sentences: list[str], query: str) -> list[int]:
        """All sentences, or on huge inputs the BM25 top slice plus neighbours (coarse cut)."""
        n = len(sentences)
        if n <= self.max_embed:
            return list(range(n))
        lexical = bm25_scores(sentences, query)
        top = np.argsort(-lexical)[: self.max_embed // 3]
        chosen = {int(j) for i in top for j in (i - 1, i, i + 1) if 0 <= j < n}
        return sorted(chosen)

    @staticmethod
    def _select(units: list[_Unit], doc_overhead: list[int], budget: int) -> set[int]:
        """Greedy knapsack by score: take the best sentence that still fits, skip the rest."""
        kept: set[int] = set()
        opened: set[int] = set()
        left = budget
        for i in sorted(range(len(units)), key=lambda i: -units[i].score):
            u = units[i]
            cost = u.cost + _opening(u.doc, opened, doc_overhead)
            if cost <= left or u.sentence.atomic:
                kept.add(i)
                opened.add(u.doc)
                left -= cost
        return kept

    def _render(self, text: str, docs: list[Document], units: list[_Unit], kept: set[int],
                ti: int) -> tuple[str, list[Span]]:
        by_doc: dict[int, list[_Unit]] = {}
        for i in sorted(kept):
            if units[i].text_index == ti:
                by_doc.setdefault(units[i].doc, []).append(units[i])
        if not by_doc:
            return "", []
        first_doc = min(u.doc for u in units if u.text_index == ti)
        blocks: list[tuple[float, int, str, list[Span]]] = []
        for gd, chosen in by_doc.items():
            doc = docs[gd - first_doc]
            spans: list[Span] = []
            parts: list[str] = []
            if doc.header:
                parts.append(text[doc.header[0] : doc.header[1]])
                spans.append(doc.header)
            prev: Sentence | None = None
            for u in chosen:
                s = u.sentence
                if prev is not None:
                    gap = text[prev.end : s.start]
                    adjacent = _adjacent(doc, prev, s)
                    parts.append(gap if adjacent else ("\n" if "\n" in gap else " "))
                parts.append(s.text)
                spans.append((s.start, s.end))
                prev = s
            if doc.footer:
                parts.append(text[doc.footer[0] : doc.footer[1]])
                spans.append(doc.footer)
            blocks.append((max(u.score for u in chosen), gd, "".join(parts), spans))
        if self.reorder:
            blocks.sort(key=lambda b: (-b[0], b[1]))
        out = "\n\n".join(b[2] for b in blocks)
        spans = sorted(sp for b in blocks for sp in b[3])
        return out, spans

    def _trim(self, texts: Sequence[str], docs_per_text: list[list[Document]],
              units: list[_Unit], kept: set[int], out: list[tuple[str, list[Span]]],
              budget: int, model: str, doc_overhead: list[int]) -> list[tuple[str, list[Span]]]:
        """Estimated costs are close, not exact: top up when room is left, drop on overshoot.

        Both steps use estimates first and recount exactly once per round, so the
        cost stays a handful of tokenizer passes however many sentences there are.
        """
        counts = [count_text(t, model) for t, _ in out]

        def rerender(touched: set[int]) -> None:
            for ti in touched:
                out[ti] = self._render(texts[ti], docs_per_text[ti], units, kept, ti)
                counts[ti] = count_text(out[ti][0], model)

        for _ in range(3):
            check()  # each round re-renders and recounts: a long input's time cap applies
            left = budget - sum(counts)
            added: list[int] = []
            if left >= 4:
                opened = {units[i].doc for i in kept}
                for i in sorted(set(range(len(units))) - kept, key=lambda i: -units[i].score):
                    u = units[i]
                    cost = u.cost + 1 + _opening(u.doc, opened, doc_overhead)
                    if cost <= left:
                        kept.add(i)
                        added.append(i)
                        opened.add(u.doc)
                        left -= cost
                rerender({units[i].text_index for i in added})
            dropped = False
            while sum(counts) > budget:
                check()
                droppable = [i for i in kept if not units[i].sentence.atomic]
                if not droppable:
                    break
                # Shed the estimated excess in one go (worst first), then recount.
                excess = sum(counts) - budget
                touched: set[int] = set()
                for worst in sorted(droppable, key=lambda i: units[i].score):
                    kept.discard(worst)
                    touched.add(units[worst].text_index)
                    excess -= units[worst].cost
                    if excess <= 0:
                        break
                rerender(touched)
                dropped = True
            if not added and not dropped:
                break
        left = budget - sum(counts)
        if left > max(6, int(0.05 * budget)):
            # Nothing whole fits any more: the best left-out sentence, cut at a
            # clause or word boundary, fills the gap.
            ti = self._fill_with_partial(units, kept, left, model, doc_overhead)
            if ti is not None:
                before = (out[ti], counts[ti])
                rerender({ti})
                if sum(counts) > budget:
                    out[ti], counts[ti] = before
        return out

    @staticmethod
    def _fill_with_partial(units: list[_Unit], kept: set[int], left: int, model: str,
                           doc_overhead: list[int]) -> int | None:
        opened = {units[i].doc for i in kept}
        encoder = get_encoder(model)
        for i in sorted(set(range(len(units))) - kept, key=lambda i: -units[i].score):
            u = units[i]
            if u.sentence.atomic:
                continue
            room = left - _opening(u.doc, opened, doc_overhead)
            text = u.sentence.text
            cuts = [m.start() for m in re.finditer(r"[,;:，；、]|\s", text) if m.start() > 0]
            best = None
            for cut in reversed(cuts):
                piece = text[:cut].rstrip(" ,;:，；、") + "…"
                if encoder.count(piece) + 1 <= room:
                    best = cut
                    break
            if best is None:
                continue
            body = text[:best].rstrip(" ,;:，；、")
            partial = Sentence(u.sentence.start, u.sentence.start + len(body), body + "…")
            units[i] = _Unit(u.text_index, u.doc, partial, encoder.count(partial.text), u.score)
            kept.add(i)
            return u.text_index
        return None


def _adjacent(doc: Document, a: Sentence, b: Sentence) -> bool:
    sents = doc.sentences
    try:
        return sents.index(b) == sents.index(a) + 1
    except ValueError:
        return False


def _minmax(x: np.ndarray) -> np.ndarray:
    if x.size == 0:
        return x
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < 1e-9:
        return np.zeros_like(x)
    return (x - lo) / (hi - lo)
