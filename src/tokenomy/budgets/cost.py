"""What a call costs in USD: litellm's model cost map, overridable in config.

Lookup order: `[ledger.prices.MODEL]`, then the model alias's
`input_cost_per_token`/`output_cost_per_token` in `[models]`, then litellm's
cost map. Reading the map straight from litellm's bundled JSON avoids a ~10 s
`import litellm` in processes that only need prices (the CLI, the ledger); if
litellm is already imported its live `model_cost` is used, so both agree.
Unknown models (the embedded local model included) cost nothing.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tokenomy.budgets.settings import LedgerSettings, ModelPrice
from tokenomy.call import Usage
from tokenomy.config import Settings


class Price(BaseModel):
    input: float = 0.0
    output: float = 0.0
    cache_read: float | None = None

    def cost(self, usage: Usage) -> float:
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cache_rate = self.input if self.cache_read is None else self.cache_read
        return (
            (usage.prompt_tokens - cached) * self.input
            + cached * cache_rate
            + usage.completion_tokens * self.output
        )

    def estimate(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.input + completion_tokens * self.output


FREE = Price()


@cache
def _bundled_cost_map() -> dict[str, Any]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or spec.origin is None:
        return {}
    path = Path(spec.origin).parent / "model_prices_and_context_window_backup.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        return {}


def _cost_map() -> dict[str, Any]:
    litellm = sys.modules.get("litellm")
    live = getattr(litellm, "model_cost", None) if litellm is not None else None
    return live if isinstance(live, dict) and live else _bundled_cost_map()


def _from_map(model: str) -> Price | None:
    table = _cost_map()
    candidates = [model]
    if "/" in model:
        candidates.append(model.split("/", 1)[1])
    for name in candidates:
        entry = table.get(name)
        if isinstance(entry, dict) and "input_cost_per_token" in entry:
            return Price(
                input=float(entry.get("input_cost_per_token") or 0.0),
                output=float(entry.get("output_cost_per_token") or 0.0),
                cache_read=entry.get("cache_read_input_token_cost"),
            )
    return None


class Pricer:
    """Resolves a model name to a Price once and remembers it."""

    def __init__(self, ledger: LedgerSettings, settings: Settings | None = None):
        self._overrides: dict[str, ModelPrice] = dict(ledger.prices)
        self._settings = settings
        self._cache: dict[str, Price] = {}

    def price(self, model: str | None, alias: str | None = None) -> Price:
        key = f"{alias}\x00{model}"
        found = self._cache.get(key)
        if found is None:
            found = self._resolve(model or "", alias or "")
            self._cache[key] = found
        return found

    def _resolve(self, model: str, alias: str) -> Price:
        for name in (alias, model):
            override = self._overrides.get(name) if name else None
            if override is not None:
                return Price(
                    input=override.input_cost_per_token,
                    output=override.output_cost_per_token,
                    cache_read=override.cache_read_input_token_cost,
                )
        if self._settings is not None and alias in self._settings.models:
            target = self._settings.models[alias]
            if target.input_cost_per_token is not None or target.output_cost_per_token is not None:
                return Price(
                    input=target.input_cost_per_token or 0.0,
                    output=target.output_cost_per_token or 0.0,
                )
        for name in (model, alias):
            if name:
                found = _from_map(name)
                if found is not None:
                    return found
        return FREE
