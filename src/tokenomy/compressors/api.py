"""`tokenomy.compress(...)`: compress a context for a question, in the target model's tokens."""

from __future__ import annotations

import time
from collections.abc import Sequence

from tokenomy.compressors.auto import compress_text
from tokenomy.compressors.base import (
    DEFAULT_MODEL,
    CompressionResult,
    target_tokens_for,
    untouched,
)
from tokenomy.compressors.lossless import TableFormat
from tokenomy.plugins import check_method
from tokenomy.tokenizers import count_text

DEFAULT_MIN_TOKENS = 300


def compress(
    context: str | Sequence[str],
    *,
    query: str | None = None,
    target_ratio: float | None = None,
    target_tokens: int | None = None,
    model: str = DEFAULT_MODEL,
    method: str = "auto",
    reorder: bool = False,
    min_tokens: int = DEFAULT_MIN_TOKENS,
    table_format: TableFormat = "json",
) -> CompressionResult:
    """Compress `context` (a string, or a list of documents) for `query`.

    Give `target_ratio` (4.0 keeps about a quarter) or `target_tokens` (a budget
    in `model`'s tokens); with neither, a 2x ratio. Contexts under `min_tokens`
    are returned unchanged (`detail["skipped"]` says why). `method` is `auto` or
    a registered compressor (built in: lossless, extractive, tokens, code, history).
    """
    started = time.perf_counter()
    check_method(method)
    if target_ratio is not None and target_ratio < 1.0:
        raise ValueError("target_ratio must be >= 1 (4.0 keeps about a quarter)")
    if target_tokens is not None and target_tokens < 1:
        raise ValueError("target_tokens must be >= 1")
    text = context if isinstance(context, str) else "\n\n".join(
        f"[{i + 1}] {doc.strip()}" for i, doc in enumerate(context)
    )
    original = count_text(text, model)
    if original < min_tokens and method != "lossless":
        return untouched(text, model=model, method=method, started=started,
                         reason=f"shorter than min_tokens={min_tokens}", original_tokens=original)
    if target_ratio is None and target_tokens is None:
        target_ratio = 2.0
    budget = target_tokens_for(original, target_ratio=target_ratio, target_tokens=target_tokens)
    result = compress_text(text, query=query, target_tokens=budget, model=model, method=method,
                           reorder=reorder, table_format=table_format)
    if result.compressed_tokens > original:  # e.g. minified JSON that tokenizes worse
        return untouched(text, model=model, method=method, started=started,
                         reason="compressing made it longer", original_tokens=original)
    if text.strip() and not result.text.strip():  # any compressor, plugins' included
        return untouched(text, model=model, method=method, started=started,
                         reason="compressing left nothing", original_tokens=original)
    result.ms = round((time.perf_counter() - started) * 1000, 3)
    result.detail.setdefault("target_tokens", budget)
    return result
