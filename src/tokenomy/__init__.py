"""tokenomy: token-economy middleware for LLM applications."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from tokenomy.compressors.api import compress
    from tokenomy.compressors.base import CompressionResult
    from tokenomy.sdk.client import AsyncClient, Client
    from tokenomy.sdk.step import step

__all__ = ["AsyncClient", "Client", "CompressionResult", "__version__", "compress", "step"]

# The public API is imported lazily so `import tokenomy` stays fast (no torch, no
# models, no langchain).
_LAZY = {
    "compress": ("tokenomy.compressors.api", "compress"),
    "CompressionResult": ("tokenomy.compressors.base", "CompressionResult"),
    "step": ("tokenomy.sdk.step", "step"),
    "Client": ("tokenomy.sdk.client", "Client"),
    "AsyncClient": ("tokenomy.sdk.client", "AsyncClient"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tokenomy' has no attribute {name!r}")
