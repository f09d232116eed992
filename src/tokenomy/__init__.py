"""tokenomy: token-economy middleware for LLM applications."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tokenomy.assets import configure_offline

configure_offline()

__version__ = "0.1.0"

if TYPE_CHECKING:
    from tokenomy.sdk.client import AsyncClient, Client
    from tokenomy.sdk.step import step

__all__ = ["AsyncClient", "Client", "__version__", "step"]

# Public names load on first use, so `import tokenomy` stays fast and pulls in
# neither langchain nor torch.
_LAZY = {
    "step": "tokenomy.sdk.step",
    "Client": "tokenomy.sdk.client",
    "AsyncClient": "tokenomy.sdk.client",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tokenomy' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
