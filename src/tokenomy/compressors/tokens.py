"""Token-level surprisal pruning (LLMLingua-1 / Selective-Context style).

The small LM reads the question, then the context, and every context token gets
its self-information `-log p(token | question, preceding text)`. Words the model
could have guessed carry little information; we drop the least informative
*whole words* (the sum of their sub-word pieces' surprisal, as Selective-Context
does for lexical units) until the text fits the budget in the target model's
tokens. Dropping whole words keeps the output made of the original characters,
so nothing is re-tokenised into garbage (non-Latin scripts included; CJK and
other unspaced scripts are cut per character, which is their word unit here).

Never dropped: words with digits, negations, entity-like capitalised words, the
question's content words, code fences, and the sentence that best matches the
question (where an extractive answer usually sits).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np

from tokenomy.compressors.base import CompressionResult, count_or_skip, make_result
from tokenomy.compressors.sentences import split_sentences
from tokenomy.scoring.surprisal import SurprisalScorer, TokenSurprisal, get_surprisal_scorer
from tokenomy.tokenizers import get_encoder

# One unit per CJK / kana / hangul / Thai character, else a run of non-space.
_UNSPACED = "\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_UNIT = re.compile(rf"[{_UNSPACED}]|[^\s{_UNSPACED}]+")
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")

def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


NEGATIONS = _words(
    "not no never n't nor neither none nobody nothing nowhere without cannot can't won't "
    "don't doesn't didn't isn't aren't wasn't weren't shouldn't wouldn't couldn't hasn't "
    "haven't hadn't mustn't unless nein nicht kein keine pas jamais non nunca ni"
)
# Capitalised function words are sentence starts, not entities.
STOPWORDS = _words(
    "a an the and or but if then so of in on at to for from by with as is are was were be been "
    "being it its this that these those there here he she they we you i his her their our your "
    "my me him them us what which who whom whose when where why how do does did has have had "
    "will would can could should may might must shall also however after before during while "
    "into onto over under about than such some any each all both more most other many much one "
    "um uh oh no wait rather sorry mean say"
) - NEGATIONS

# Texts this short are left whole: there is no word left to drop that is not the point.
# (It was 16, which returned a 7-token sentence untouched against a 3-token target.)
MIN_TOKENS = 4


@dataclass
class Unit:
    start: int
    end: int
    protected: bool
    score: float = 0.0


def _bare(word: str) -> str:
    return _EDGE_PUNCT.sub("", word).lower()


def question_words(query: str | None) -> set[str]:
    if not query:
        return set()
    words = {_bare(w) for w in _UNIT.findall(query)}
    return {w for w in words if w and w not in STOPWORDS}


def is_protected(word: str, qwords: set[str]) -> bool:
    bare = _bare(word)
    if any(ch.isdigit() for ch in word) or "```" in word:
        return True
    if bare in NEGATIONS or word.lower().endswith("n't"):
        return True
    if bare and bare in qwords:
        return True
    first = next((ch for ch in word if ch.isalpha()), "")
    return bool(first) and first.isupper() and bare not in STOPWORDS


def split_units(text: str, qwords: set[str]) -> list[Unit]:
    return [Unit(m.start(), m.end(), is_protected(m.group(), qwords)) for m in _UNIT.finditer(text)]


def protect_answer_sentence(text: str, units: list[Unit], qwords: set[str]) -> None:
    """Keep the sentence that shares most content words with the question verbatim.

    That sentence is where an extractive answer usually sits, and answers are
    phrases ("whether the bill is within the competence of the Parliament")
    whose function words a reader needs; pruning them there costs more than the
    few tokens it saves. Only when the overlap is real (two words or more)."""
    if len(qwords) < 2:
        return
    best, best_overlap = None, 1
    for sentence in split_sentences(text):
        words = {_bare(w) for w in _UNIT.findall(sentence.text)}
        overlap = len(words & qwords)
        if overlap > best_overlap:
            best, best_overlap = sentence, overlap
    if best is not None:
        for unit in units:
            if best.start <= unit.start and unit.end <= best.end:
                unit.protected = True


def score_units(text: str, units: list[Unit], surprisal: TokenSurprisal) -> None:
    """Each unit's score is the summed surprisal of the tokens that end inside it."""
    owner = np.full(len(text) + 1, -1, dtype=np.int64)
    for i, unit in enumerate(units):
        owner[unit.start : unit.end] = i
    totals = np.zeros(len(units), dtype=np.float64)
    for (start, end), nll in zip(surprisal.spans, surprisal.nll, strict=True):
        if end <= start:
            continue
        i = owner[end - 1]
        if i < 0:  # a token of pure whitespace: charge the next unit's start
            i = owner[min(end, len(text))]
        if i >= 0:
            totals[i] += float(nll)
    for unit, total in zip(units, totals, strict=True):
        unit.score = total


def _gap_rank(gap: str) -> int:
    return 2 if "\n\n" in gap else 1 if "\n" in gap else 0


def render(text: str, units: list[Unit], dropped: set[int]) -> str:
    """The kept units with sane whitespace: the strongest gap of a dropped run survives."""
    parts: list[str] = []
    pending: str | None = None  # the gap to use before the next kept unit
    prev_end = 0
    for i, unit in enumerate(units):
        gap = text[prev_end : unit.start]
        prev_end = unit.end
        if pending is None or _gap_rank(gap) > _gap_rank(pending):
            pending = gap
        if i in dropped:
            continue
        if parts:
            parts.append(pending)
        elif i == 0:
            parts.append(text[: unit.start])  # the text's own leading whitespace
        parts.append(text[unit.start : unit.end])
        pending = None
    parts.append(text[prev_end:])  # trailing whitespace
    return "".join(parts)


def choose_drops(
    text: str, units: list[Unit], target_tokens: int, model: str
) -> tuple[set[int], str]:
    """The fewest lowest-information droppable units that bring `text` to the budget."""
    droppable = (i for i, u in enumerate(units) if not u.protected)
    order = sorted(droppable, key=lambda i: units[i].score)
    encoder = get_encoder(model)

    def build(k: int) -> tuple[set[int], str, int]:
        dropped = set(order[:k])
        out = render(text, units, dropped)
        return dropped, out, encoder.count(out)

    lo, hi = 0, len(order)
    best = build(hi)
    if best[2] > target_tokens:
        return best[0], best[1]  # the protected words alone exceed the budget
    while lo < hi:  # smallest k whose rendering fits
        mid = (lo + hi) // 2
        candidate = build(mid)
        if candidate[2] <= target_tokens:
            best, hi = candidate, mid
        else:
            lo = mid + 1
    return best[0], best[1]


class TokenCompressor:
    """Drops low-surprisal words inside already-selected text; a `Compressor`."""

    name = "tokens"

    def __init__(self, scorer: SurprisalScorer | None = None, *, device: str | None = None):
        self._scorer = scorer
        self._device = device

    @property
    def scorer(self) -> SurprisalScorer:
        if self._scorer is None:
            self._scorer = get_surprisal_scorer(self._device)
        return self._scorer

    def compress(
        self, text: str, *, query: str | None, target_tokens: int, model: str
    ) -> CompressionResult:
        started = time.perf_counter()
        before, skipped = count_or_skip(text, model=model, method=self.name, started=started,
                                        budget=max(target_tokens, MIN_TOKENS))
        if skipped is not None:
            return skipped
        units = self._units(text, query)
        score_units(text, units, self.scorer.score(text, query))
        return self._finish(text, units, before, target_tokens, model, started)

    async def acompress(
        self, text: str, *, query: str | None, target_tokens: int, model: str
    ) -> CompressionResult:
        """The same from async code: scoring awaits the batcher, the loop stays free."""
        started = time.perf_counter()
        before, skipped = count_or_skip(text, model=model, method=self.name, started=started,
                                        budget=max(target_tokens, MIN_TOKENS))
        if skipped is not None:
            return skipped
        units = self._units(text, query)
        score_units(text, units, await self.scorer.ascore(text, query))
        return self._finish(text, units, before, target_tokens, model, started)

    @staticmethod
    def _units(text: str, query: str | None) -> list[Unit]:
        qwords = question_words(query)
        units = split_units(text, qwords)
        protect_answer_sentence(text, units, qwords)
        return units

    def _finish(self, text: str, units: list[Unit], before: int, target_tokens: int,
                model: str, started: float) -> CompressionResult:
        dropped, out = choose_drops(text, units, target_tokens, model)
        kept = [(u.start, u.end) for i, u in enumerate(units) if i not in dropped]
        return make_result(
            text, out, model=model, method=self.name, started=started, kept_spans=_merge(kept),
            original_tokens=before,
            detail={"words": len(units), "dropped_words": len(dropped),
                    "protected_words": sum(u.protected for u in units)},
        )


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Adjacent kept words (only whitespace between them) as one span."""
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start - merged[-1][1] <= 1:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
