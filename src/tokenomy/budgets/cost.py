"""What a call costs in USD: litellm's model cost map, overridable in config.

Lookup order: `[ledger.prices.MODEL]`, then the model alias's
`input_cost_per_token`/`output_cost_per_token` in `[models]`, then litellm's
cost map. Cache rates use litellm's names: `cache_read_input_token_cost`,
`cache_creation_input_token_cost` (5-minute writes) and
`cache_creation_input_token_cost_above_1hr` (1-hour writes). Reading the map
straight from litellm's bundled JSON avoids a ~10 s `import litellm` in
processes that only need prices (the CLI, the ledger); if litellm is already
imported its live `model_cost` is used, so both agree.
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
    """USD per token for each bucket. An unset cache rate costs what it replaces:
    a read or a write at the input rate, a 1-hour write at the 5-minute rate."""

    input: float = 0.0
    output: float = 0.0
    cache_read: float | None = None
    cache_write: float | None = None  # 5-minute TTL writes
    cache_write_1h: float | None = None
    max_output: int | None = None  # the model's documented output limit per call, if known

    def _rates(self) -> tuple[float, float, float]:
        read = self.input if self.cache_read is None else self.cache_read
        write = self.input if self.cache_write is None else self.cache_write
        write_1h = write if self.cache_write_1h is None else self.cache_write_1h
        return read, write, write_1h

    def cost(self, usage: Usage) -> float:
        """Each input bucket at its own rate, plus output (reasoning included)."""
        read, write, write_1h = self._rates()
        w1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
        return (
            usage.uncached_tokens * self.input
            + usage.cached_tokens * read
            + (usage.cache_write_tokens - w1h) * write
            + w1h * write_1h
            + usage.completion_tokens * self.output
        )

    def cache_saving(self, usage: Usage) -> float:
        """What the provider's prompt cache saved on this request, in USD.

        Cache reads at the full input price minus what they cost, minus the
        premium the writes paid over the input price. Negative when a request
        wrote more to the cache than it read back (later reads repay it).
        """
        read, write, write_1h = self._rates()
        w1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
        return (
            usage.cached_tokens * (self.input - read)
            - (usage.cache_write_tokens - w1h) * (write - self.input)
            - w1h * (write_1h - self.input)
        )

    def estimate(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.input + completion_tokens * self.output

    def bound(self, prompt_tokens: int, completion_tokens: int) -> float:
        """The most these tokens can cost: input at the dearest input rate (a cache write
        costs more than a plain read), so a reservation is never below the charge."""
        dearest = max(self.input, *(r for r in self._rates()))
        return prompt_tokens * dearest + completion_tokens * self.output


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
                cache_read=_rate(entry, "cache_read_input_token_cost"),
                cache_write=_rate(entry, "cache_creation_input_token_cost"),
                cache_write_1h=_rate(entry, "cache_creation_input_token_cost_above_1hr"),
                max_output=_limit(entry),
            )
    return None


def model_info(model: str) -> dict[str, Any] | None:
    """litellm's entry for `model` (context window, prices), with or without a provider
    prefix; None when the map does not know it."""
    table = _cost_map()
    for name in (model, model.split("/", 1)[1] if "/" in model else None):
        entry = table.get(name) if name else None
        if isinstance(entry, dict):
            return entry
    return None


def _limit(entry: dict[str, Any]) -> int | None:
    # Only `max_output_tokens`: the legacy `max_tokens` key may hold the input size.
    value = entry.get("max_output_tokens")
    return int(value) if isinstance(value, int) and value > 0 else None


def _map_limit(*names: str) -> int | None:
    table = _cost_map()
    for name in names:
        for candidate in (name, name.split("/", 1)[-1]):
            entry = table.get(candidate) if candidate else None
            if isinstance(entry, dict) and _limit(entry) is not None:
                return _limit(entry)
    return None


def _rate(entry: dict[str, Any], key: str) -> float | None:
    value = entry.get(key)
    return float(value) if isinstance(value, int | float) else None


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
            if found.max_output is None:  # prices from the config, limits from the map
                limit = _map_limit(model or "", alias or "")
                if limit is not None:
                    found = found.model_copy(update={"max_output": limit})
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
                    cache_write=override.cache_creation_input_token_cost,
                    cache_write_1h=override.cache_creation_input_token_cost_above_1hr,
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
