"""Compressors: lossless, extractive (query-aware), tokens (surprisal), code, history.

Each is a `Compressor` with one `compress(text, *, query, target_tokens, model)`;
`compress_messages` applies them to a chat request segment by segment, and
`CompressStage` does that inside the proxy pipeline. Names load lazily so the
CLI starts fast.
"""

from typing import Any

from tokenomy.compressors.base import CompressionResult, Compressor, target_tokens_for

__all__ = ["CompressionResult", "Compressor", "compress", "target_tokens_for"]


def __getattr__(name: str) -> Any:
    if name == "compress":
        from tokenomy.compressors.api import compress

        return compress
    raise AttributeError(f"module 'tokenomy.compressors' has no attribute {name!r}")
