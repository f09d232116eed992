"""Choosing a compressor for a piece of text, and chaining coarse -> fine.

`auto`: JSON -> lossless; source code -> code; prose -> extractive (then
whitespace normalisation of what was kept), and the surprisal `tokens` pass
only when extractive alone cannot get within 10% of the budget (long single
sentences) and that compressor is installed. `tokens` asked explicitly means
extractive down to a looser budget first, then token pruning to the target.
"""

from __future__ import annotations

import re
import time

from tokenomy.compressors.base import BUILT_IN, CompressionResult, make_result, untouched
from tokenomy.compressors.code import CodeCompressor
from tokenomy.compressors.extractive import ExtractiveCompressor
from tokenomy.compressors.history import HistoryCompressor
from tokenomy.compressors.lossless import (
    LosslessCompressor,
    TableFormat,
    minify_json,
    normalize_text,
)
from tokenomy.compressors.registry import tokens_compressor
from tokenomy.compressors.segments import looks_like_code
from tokenomy.plugins import check_method, registry
from tokenomy.tokenizers import count_text

TOLERANCE = 0.10  # budgets are honoured within 10%
COARSE_SLACK = 1.6  # extractive keeps this much more than the budget before token pruning

_SINGLE_FENCE = re.compile(r"^\s*(```|~~~)([^\n]*)\n(.*?)\n?\1\s*$", re.DOTALL)


def compress_text(
    text: str,
    *,
    query: str | None,
    target_tokens: int,
    model: str,
    method: str = "auto",
    reorder: bool = False,
    table_format: TableFormat = "json",
) -> CompressionResult:
    started = time.perf_counter()
    check_method(method)
    original_tokens = count_text(text, model)
    if method == "lossless" or (method == "auto" and minify_json(text, model=model) is not None):
        return LosslessCompressor(table_format=table_format).compress(text, model=model)
    if original_tokens <= target_tokens:
        return untouched(text, model=model, method=method, started=started,
                         reason="within budget", original_tokens=original_tokens)
    if method == "code" or (method == "auto" and looks_like_code(text)):
        return compress_code(text, query=query, target_tokens=target_tokens, model=model)
    if method == "history":
        return HistoryCompressor().compress(text, query=query, target_tokens=target_tokens,
                                            model=model)
    if method not in BUILT_IN:  # a plugin's compressor
        return registry().compressors[method].compress(text, query=query,
                                                       target_tokens=target_tokens, model=model)
    extractive = ExtractiveCompressor(reorder=reorder)
    fine = tokens_compressor() if method in ("tokens", "auto") else None
    coarse_budget = target_tokens
    if method == "tokens":
        coarse_budget = min(original_tokens, int(target_tokens * COARSE_SLACK))
    result = extractive.compress(text, query=query, target_tokens=coarse_budget, model=model)
    kept = normalize_text(result.text)
    steps = ["extractive"]
    if kept != result.text:
        steps.append("lossless")
    after = count_text(kept, model)
    if fine is not None and after > target_tokens * (1 + TOLERANCE) and kept:
        pruned = fine.compress(kept, query=query, target_tokens=target_tokens, model=model)
        if pruned.text != kept:
            kept, after = pruned.text, pruned.compressed_tokens
            steps.append("tokens")
    return make_result(text, kept, model=model,
                       method="+".join(steps) if method == "auto" else method,
                       started=started, kept_spans=result.kept_spans,
                       original_tokens=original_tokens, detail={"steps": steps})


def compress_code(text: str, *, query: str | None, target_tokens: int,
                  model: str) -> CompressionResult:
    """Code, possibly inside one fence: compress the body, keep the fence."""
    started = time.perf_counter()
    fence = _SINGLE_FENCE.match(text)
    if not fence:
        return CodeCompressor().compress(text, query=query, target_tokens=target_tokens,
                                         model=model)
    wrapper = count_text(f"{fence.group(1)}{fence.group(2)}\n\n{fence.group(1)}", model)
    inner = CodeCompressor().compress(fence.group(3), query=query,
                                      target_tokens=max(1, target_tokens - wrapper), model=model)
    body = inner.text.rstrip("\n")
    out = f"{fence.group(1)}{fence.group(2)}\n{body}\n{fence.group(1)}"
    return make_result(text, out, model=model, method="code", started=started,
                       detail=dict(inner.detail))
