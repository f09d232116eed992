"""The surprisal compressor, loaded on first use (it needs torch and the small LM)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from tokenomy.compressors.base import CompressionResult


@lru_cache(maxsize=1)
def tokens_compressor() -> Any:
    """The token-level surprisal compressor (imports torch on first call)."""
    from tokenomy.compressors.tokens import TokenCompressor

    return TokenCompressor()


class LazyTokensCompressor:
    """`tokens` in the plugin registry without importing torch until it compresses."""

    name = "tokens"

    def compress(self, text: str, *, query: str | None, target_tokens: int,
                 model: str) -> CompressionResult:
        result: CompressionResult = tokens_compressor().compress(
            text, query=query, target_tokens=target_tokens, model=model)
        return result
