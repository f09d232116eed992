"""Finding compressors by method name, including the optional surprisal compressor.

`tokens` (token-level surprisal pruning with the local SmolLM2) lives in
`compressors/tokens.py` and needs the small LM; it is looked up lazily so the
rest works without it.
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from tokenomy.compressors.base import Compressor


@lru_cache(maxsize=1)
def tokens_compressor() -> Compressor | None:
    """The surprisal compressor, or None when `compressors/tokens.py` is absent."""
    try:
        module = importlib.import_module("tokenomy.compressors.tokens")
    except ImportError:
        return None
    for name in ("TokenCompressor", "TokensCompressor", "SurprisalCompressor"):
        cls = getattr(module, name, None)
        if cls is not None:
            return cls()
    for value in vars(module).values():
        if isinstance(value, type) and value.__name__.endswith("Compressor") \
                and value.__module__ == module.__name__ and hasattr(value, "compress"):
            return value()
    return None
