"""The one interface every compressor implements, and the result it returns.

A compressor takes a piece of context, the question it serves and a budget in
the *target model's* tokens, and returns a `CompressionResult`. Budgets are
always in the target model's tokens because that is what the caller pays for.
"""

from __future__ import annotations

import math
import time
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from tokenomy.tokenizers import count_text

DEFAULT_MODEL = "gpt-4o"
# The methods with their own flow in `compress_text`; any other registered name is
# a plugin compressor, called as it is.
BUILT_IN = ("auto", "lossless", "extractive", "tokens", "code", "history")

Span = tuple[int, int]


class CompressionResult(BaseModel):
    """What a compressor did: the new text and how many tokens it saved."""

    text: str
    original_tokens: int
    compressed_tokens: int
    ratio: float = Field(description="original_tokens / compressed_tokens (1.0 when untouched)")
    kept_spans: list[Span] = Field(
        default_factory=list,
        description="(start, end) character offsets into the original text that were kept",
    )
    method: str
    ms: float = 0.0
    detail: dict[str, object] = Field(default_factory=dict)

    @property
    def saved_tokens(self) -> int:
        return max(0, self.original_tokens - self.compressed_tokens)


@runtime_checkable
class Compressor(Protocol):
    """One `compress()`; `target_tokens` is a budget in `model`'s tokens."""

    name: str

    def compress(
        self, text: str, *, query: str | None, target_tokens: int, model: str
    ) -> CompressionResult: ...


def ratio_of(original: int, compressed: int) -> float:
    if compressed <= 0:
        return float(original) if original else 1.0
    return round(original / compressed, 4)


def target_tokens_for(
    original_tokens: int, *, target_ratio: float | None = None, target_tokens: int | None = None
) -> int:
    """The token budget from either a ratio (4.0 = a quarter) or an absolute count.

    An explicit `target_tokens` wins; with neither, the text is left as it is.
    """
    if target_tokens is not None:
        return max(1, int(target_tokens))
    if target_ratio is not None:
        if target_ratio <= 0:
            raise ValueError("target_ratio must be positive")
        return max(1, math.floor(original_tokens / target_ratio))
    return original_tokens


def make_result(
    original: str,
    text: str,
    *,
    model: str,
    method: str,
    started: float,
    kept_spans: list[Span] | None = None,
    original_tokens: int | None = None,
    detail: dict[str, object] | None = None,
) -> CompressionResult:
    """Count both sides in the target model's tokens and package the result."""
    before = count_text(original, model) if original_tokens is None else original_tokens
    after = count_text(text, model) if text != original else before
    return CompressionResult(
        text=text,
        original_tokens=before,
        compressed_tokens=after,
        ratio=ratio_of(before, after),
        kept_spans=kept_spans if kept_spans is not None else _whole(original, text),
        method=method,
        ms=round((time.perf_counter() - started) * 1000, 3),
        detail=detail or {},
    )


def _whole(original: str, text: str) -> list[Span]:
    return [(0, len(original))] if text == original and original else []


def count_or_skip(text: str, *, model: str, method: str, started: float,
                  budget: int) -> tuple[int, CompressionResult | None]:
    """Count `text` in `model`'s tokens; when it already fits `budget`, the untouched result."""
    original_tokens = count_text(text, model)
    if original_tokens <= budget:
        return original_tokens, untouched(text, model=model, method=method, started=started,
                                          reason="within budget",
                                          original_tokens=original_tokens)
    return original_tokens, None


def untouched(text: str, *, model: str, method: str, started: float, reason: str,
              original_tokens: int | None = None) -> CompressionResult:
    """The result for text a compressor decided to leave alone (and why)."""
    return make_result(text, text, model=model, method=method, started=started,
                       original_tokens=original_tokens, detail={"skipped": reason})
