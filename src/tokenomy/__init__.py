"""tokenomy: token-economy middleware for LLM applications."""

from typing import Any

from tokenomy.assets import configure_offline

configure_offline()

__version__ = "0.1.0"

# The public API is imported lazily so `import tokenomy` stays fast (no torch, no models).
_LAZY = {
    "compress": ("tokenomy.compressors.api", "compress"),
    "CompressionResult": ("tokenomy.compressors.base", "CompressionResult"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tokenomy' has no attribute {name!r}")
