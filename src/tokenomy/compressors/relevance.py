"""How relevant each text is to a query: hybrid BM25 + MiniLM cosine, plus protection cues.

BM25 catches exact names and rare words; the embedding catches paraphrase
("who directed" ~ "a film by"). Both are min-max normalised per call and mixed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from tokenomy.scoring.embeddings import EmbeddingCache, default_cache

_WORD = re.compile(r"\w\w+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+")
_STOP_WORDS = """a an and are as at be been but by can could did do does for
    from had has have he her his how i if in into is it its me
    my of on or our she so than that the their them then there these they
    this to was we were what when where which who whom whose why will with would
    you your um uh no wait sorry mean say"""
_STOP = frozenset(_STOP_WORDS.split())
NEGATION = re.compile(
    r"\b(not|no|never|none|nobody|nothing|neither|nor|without|cannot|n't)\b|n't\b"
    r"|\bне\b|\bнет\b|\bникогда\b|不|没|無|无|\bلا\b|\bلم\b|\bليس\b|\bkein\w*|\bnicht\b|\bjamais\b|\bpas\b",
    re.IGNORECASE,
)
NUMBER = re.compile(r"\d")
_COUNTING = re.compile(
    r"\b(when|what year|how (many|much|long|old|far|tall|big)|which year|date)\b", re.IGNORECASE
)


def terms(text: str) -> list[str]:
    """Lower-cased word terms without stop words; CJK runs become character bigrams."""
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        if word in _STOP:
            continue
        if _CJK.fullmatch(word):
            out.extend(word[i : i + 2] for i in range(max(1, len(word) - 1)))
            continue
        # A tiny plural fold: "films" and "film" should meet.
        out.append(word[:-1] if len(word) > 4 and word.endswith("s") and not word.endswith("ss")
                   else word)
    return out


def bm25_scores(texts: Sequence[str], query: str) -> np.ndarray:
    """BM25 of each text against the query (bm25s), 0 where nothing matches."""
    import bm25s

    corpus = [terms(t) or ["\x00"] for t in texts]
    q = [t for t in dict.fromkeys(terms(query))]
    if not texts or not q:
        return np.zeros(len(texts), dtype=np.float32)
    index = bm25s.BM25()
    index.index(corpus, show_progress=False)
    vocab = index.vocab_dict
    q = [t for t in q if t in vocab]
    if not q:
        return np.zeros(len(texts), dtype=np.float32)
    return np.asarray(index.get_scores(q), dtype=np.float32)


def _minmax(x: np.ndarray) -> np.ndarray:
    if x.size == 0:
        return x
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < 1e-9:
        return np.zeros_like(x) if hi <= 0 else np.ones_like(x) * 0.5
    return (x - lo) / (hi - lo)


def hybrid_scores(
    texts: Sequence[str],
    query: str,
    *,
    bm25_weight: float = 0.45,
    cache: EmbeddingCache | None = None,
    embeddings: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores in [0, 1], embeddings) for each text; one batched embedding call."""
    if not texts:
        return np.zeros(0, dtype=np.float32), np.zeros((0, 384), dtype=np.float32)
    cache = cache or default_cache()
    if embeddings is None:
        embeddings = cache.embed(list(texts))
    qvec = cache.embed([query])[0]
    cosine = embeddings @ qvec
    lexical = bm25_scores(texts, query)
    scores = bm25_weight * _minmax(lexical) + (1 - bm25_weight) * _minmax(cosine)
    return scores.astype(np.float32), embeddings


def query_entities(query: str) -> list[str]:
    """What the question names: capitalised words (not the first), numbers, quoted phrases."""
    out: list[str] = [m.strip("\"'“”") for m in re.findall(r"[\"“][^\"”]{2,60}[\"”]", query)]
    words = re.findall(r"\w[\w'.-]*", query)
    for i, word in enumerate(words):
        if word[0].isdigit() or (i > 0 and word[0].isupper() and word.lower() not in _STOP):
            out.append(word)
    return [e for e in dict.fromkeys(out) if e]


def mentions(text: str, entities: Sequence[str]) -> int:
    low = text.lower()
    return sum(1 for e in entities if e.lower() in low)


def wants_number(query: str) -> bool:
    """Questions whose answer is usually a number or a date."""
    return bool(_COUNTING.search(query))
