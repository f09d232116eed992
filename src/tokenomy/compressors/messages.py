"""Compressing a chat request: segment, compress the changing tail, reassemble.

The stable prefix and the question are never touched (the prefix gets only
lossless whitespace/JSON work, and only when `keep_prefix` is off). The
compressible tail (documents, tool outputs, code, old turns) first gets
lossless treatment and cross-message dedup, then shares the remaining budget:
documents and tool outputs form one extractive pool (so the best sentences of
all retrieved documents compete), code goes through the code compressor and
old turns through the history compressor, each with a share proportional to
its size. JSON is never cut (only minified), so it always stays valid.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from tokenomy.compressors.auto import TOLERANCE, compress_code
from tokenomy.compressors.base import BUILT_IN
from tokenomy.compressors.extractive import ExtractiveCompressor
from tokenomy.compressors.history import HistoryCompressor
from tokenomy.compressors.lossless import (
    LosslessCompressor,
    TableFormat,
    minify_json,
    normalize_text,
)
from tokenomy.compressors.registry import tokens_compressor
from tokenomy.compressors.segments import COMPRESSIBLE, Segment, reassemble, segment_messages
from tokenomy.plugins import registry
from tokenomy.tokenizers import count_messages, count_text

OMITTED = "(omitted: not relevant to the question)"
_LABEL = re.compile(r"^(context|question|query|q)\s*[:：]\s*", re.IGNORECASE | re.MULTILINE)


@dataclass
class TechniqueStat:
    technique: str
    tokens_before: int = 0
    tokens_after: int = 0
    ms: float = 0.0
    segments: int = 0


@dataclass
class MessagesResult:
    messages: list[dict[str, Any]]
    tokens_before: int
    tokens_after: int
    stats: list[TechniqueStat] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)  # segment counts per kind


class _Stats:
    def __init__(self) -> None:
        self.by: dict[str, TechniqueStat] = {}

    def add(self, technique: str, before: int, after: int, ms: float, n: int = 1) -> None:
        stat = self.by.setdefault(technique, TechniqueStat(technique))
        stat.tokens_before += before
        stat.tokens_after += after
        stat.ms += ms
        stat.segments += n


def compress_messages(
    messages: list[dict[str, Any]],
    *,
    model: str,
    target_ratio: float | None = None,
    target_tokens: int | None = None,
    method: str = "auto",
    keep_prefix: bool = True,
    reorder: bool = False,
    documents: list[int] | None = None,
    keep_last_turns: int = 2,
    table_format: TableFormat = "json",
    tools: list[dict[str, Any]] | None = None,
) -> MessagesResult:
    """Compress the changing tail of `messages`; `target_ratio` applies to that tail,
    `target_tokens` to the whole prompt (as the provider counts it)."""
    before_total = count_messages(messages, model, tools)
    segments = segment_messages(messages, documents=documents, keep_last_turns=keep_last_turns)
    texts = [s.text for s in segments]
    kinds: dict[str, int] = {}
    for s in segments:
        kinds[s.kind] = kinds.get(s.kind, 0) + 1
    tail = [k for k, s in enumerate(segments) if s.kind in COMPRESSIBLE]
    stats = _Stats()
    if not tail:
        return MessagesResult(messages, before_total, before_total, [], kinds)
    tokens = {k: count_text(texts[k], model) for k in tail}
    tail_before = sum(tokens.values())
    if target_tokens is not None:
        budget = max(0, target_tokens - (before_total - tail_before))
    else:
        budget = int(tail_before / (target_ratio or 1.0))

    # 1. Lossless on the tail (and on the prefix only when the caller allows it).
    frozen: set[int] = set()
    if method in ("auto", "lossless", "extractive", "tokens"):
        lossless = LosslessCompressor(table_format=table_format)
        targets = tail + ([] if keep_prefix else
                          [k for k, s in enumerate(segments) if s.kind == "prefix"])
        for k in targets:
            if segments[k].kind == "code":
                continue
            t0 = time.perf_counter()
            was_json = minify_json(texts[k], model=model, table_format="off") is not None
            result = lossless.compress(texts[k], model=model)
            if result.text != texts[k]:
                stats.add("lossless", result.original_tokens, result.compressed_tokens,
                          (time.perf_counter() - t0) * 1000)
                texts[k] = result.text
            if was_json:
                frozen.add(k)
        _dedup_across_messages(segments, texts, tail, stats, model)
        tokens = {k: count_text(texts[k], model) for k in tail}
    if method != "lossless":
        movable = [k for k in tail if k not in frozen]
        room = budget - sum(tokens[k] for k in tail if k in frozen)
        if movable and sum(tokens[k] for k in movable) > max(room, 0):
            _fit(messages, segments, texts, movable, tokens, max(room, 0), stats,
                 method=method, model=model, reorder=reorder)
    for k in tail:
        seg = segments[k]
        if texts[k] == seg.text:
            continue
        if not texts[k].strip() and _whole_message(segments, seg):
            # The marker keeps the turn order readable, but never at a cost: a
            # message shorter than the marker is kept as it was.
            texts[k] = OMITTED if len(seg.text) > len(OMITTED) else seg.text
        elif texts[k].strip():
            # Keep the whitespace that separated this piece from its neighbours.
            core = seg.text.strip()
            lead = seg.text[: len(seg.text) - len(seg.text.lstrip())]
            trail = seg.text[len(seg.text.rstrip()) :] if core else ""
            texts[k] = lead + texts[k].strip() + trail
    new_messages = reassemble(messages, segments, texts)
    after_total = count_messages(new_messages, model, tools)
    return MessagesResult(new_messages, before_total, after_total, list(stats.by.values()), kinds)


def _whole_message(segments: list[Segment], seg: Segment) -> bool:
    return sum(1 for s in segments if s.key == seg.key) == 1


def _dedup_across_messages(segments: list[Segment], texts: list[str], tail: list[int],
                           stats: _Stats, model: str) -> None:
    """A document or tool output repeated verbatim becomes a pointer to its first copy."""
    first: dict[str, int] = {}
    t0 = time.perf_counter()
    for k in tail:
        key = " ".join(texts[k].split())
        if len(key) < 200:
            continue
        if key in first:
            where = segments[first[key]]
            marker = f"[same content as message {where.message} above]"
            before = count_text(texts[k], model)
            texts[k] = marker
            stats.add("lossless", before, count_text(marker, model),
                      (time.perf_counter() - t0) * 1000)
        else:
            first[key] = k


def _fit(messages: list[dict[str, Any]], segments: list[Segment], texts: list[str],
         movable: list[int], tokens: dict[int, int], room: int, stats: _Stats, *,
         method: str, model: str, reorder: bool) -> None:
    """Share `room` across the movable segments and run each group's compressor."""
    question = " ".join(segments[k].text for k in range(len(segments))
                        if segments[k].kind == "question").strip()
    # "Question: ..." -> "...": the label only dilutes the query (and its cache key).
    question = _LABEL.sub("", question).strip()
    groups: dict[str, list[int]] = {"pool": [], "code": [], "history": []}
    for k in movable:
        kind = segments[k].kind
        if method in ("auto", "code") and kind == "code":
            groups["code"].append(k)
        elif method in ("auto", "history") and kind == "history":
            groups["history"].append(k)
        elif method != "code" or kind == "code":
            groups["pool"].append(k)
    total = sum(tokens[k] for k in movable) or 1

    def share(ks: list[int]) -> int:
        return int(room * sum(tokens[k] for k in ks) / total)

    if groups["code"]:
        for k in groups["code"]:
            result = compress_code(texts[k], query=question, target_tokens=share([k]), model=model)
            stats.add("code", result.original_tokens, result.compressed_tokens, result.ms)
            texts[k] = result.text
    if groups["history"]:
        ks = groups["history"]
        t0 = time.perf_counter()
        outs = HistoryCompressor().compress_segments(
            messages, [segments[k] for k in ks], query=question, budget=share(ks), model=model)
        after = sum(count_text(t, model) for t in outs)
        stats.add("history", sum(tokens[k] for k in ks), after,
                  (time.perf_counter() - t0) * 1000, len(ks))
        for k, out in zip(ks, outs, strict=True):
            texts[k] = out
    if groups["pool"]:
        _fit_pool(groups["pool"], texts, tokens, share(groups["pool"]), stats, question=question,
                  method=method, model=model, reorder=reorder)


def _fit_pool(ks: list[int], texts: list[str], tokens: dict[int, int], budget: int,
              stats: _Stats, *, question: str, method: str, model: str, reorder: bool) -> None:
    """Documents and tool outputs: one extractive pool, then token pruning if needed/asked."""
    if method not in BUILT_IN:  # a plugin's compressor, each piece with its share
        _plugin_pool(ks, texts, tokens, budget, stats, question=question, method=method,
                     model=model)
        return
    fine = tokens_compressor() if method in ("auto", "tokens") else None
    before = sum(tokens[k] for k in ks)
    coarse = min(before, int(budget * 1.6)) if method == "tokens" else budget
    t0 = time.perf_counter()
    outs = ExtractiveCompressor(reorder=reorder).compress_many(
        [texts[k] for k in ks], query=question, budget=coarse, model=model)
    new = [normalize_text(out) for out, _ in outs]
    after = sum(count_text(t, model) for t in new)
    stats.add("extractive", before, after, (time.perf_counter() - t0) * 1000, len(ks))
    if fine is not None and after > budget * (1 + TOLERANCE):
        t1 = time.perf_counter()
        pruned_total = 0
        for i, text in enumerate(new):
            if not text:
                continue
            n = count_text(text, model)
            result = fine.compress(text, query=question, target_tokens=max(1, n * budget // after),
                                   model=model)
            new[i] = result.text
            pruned_total += result.compressed_tokens
        stats.add("tokens", after, pruned_total, (time.perf_counter() - t1) * 1000, len(ks))
    for k, text in zip(ks, new, strict=True):
        texts[k] = text


def _plugin_pool(ks: list[int], texts: list[str], tokens: dict[int, int], budget: int,
                 stats: _Stats, *, question: str, method: str, model: str) -> None:
    compressor = registry().compressors[method]
    total = sum(tokens[k] for k in ks) or 1
    for k in ks:
        share = max(1, int(budget * tokens[k] / total))
        result = compressor.compress(texts[k], query=question or None, target_tokens=share,
                                     model=model)
        if result.compressed_tokens < tokens[k]:
            stats.add(method, tokens[k], result.compressed_tokens, result.ms)
            texts[k] = result.text
