"""Compressors: lossless, extractive (query-aware), tokens (surprisal), code, history.

Each is a `Compressor` with one `compress(text, *, query, target_tokens, model)`;
`compress_messages` applies them to a chat request segment by segment, and
`CompressStage` does that inside the proxy pipeline.
"""

from tokenomy.compressors.api import compress
from tokenomy.compressors.base import CompressionResult, Compressor, target_tokens_for

__all__ = ["CompressionResult", "Compressor", "compress", "target_tokens_for"]
