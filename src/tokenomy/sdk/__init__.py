"""The Python SDK: `@step` on agent steps, `Client` / `AsyncClient`, LangChain adapters.

Names load on first use so `import tokenomy.sdk` pulls in neither openai nor langchain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokenomy.sdk.client import AsyncClient, Client
    from tokenomy.sdk.context import StepContext, StepUsage, current_step
    from tokenomy.sdk.step import Step, step

_EXPORTS = {
    "step": "tokenomy.sdk.step",
    "Step": "tokenomy.sdk.step",
    "current_step": "tokenomy.sdk.context",
    "StepContext": "tokenomy.sdk.context",
    "StepUsage": "tokenomy.sdk.context",
    "Client": "tokenomy.sdk.client",
    "AsyncClient": "tokenomy.sdk.client",
}

__all__ = ["AsyncClient", "Client", "Step", "StepContext", "StepUsage", "current_step", "step"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tokenomy.sdk' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
