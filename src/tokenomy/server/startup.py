"""What `tokenomy serve` says at start: the problems a config has before any request.

- a backend whose `api_key_env` names an unset variable (its calls would fail);
- a non-loopback bind (keys are then required, or, if the config turned them
  off, anyone who reaches the address spends the backends' credentials);
- compression, or a local backend the config serves, without the local model files.
"""

from __future__ import annotations

import os

from tokenomy import assets
from tokenomy.config import Settings
from tokenomy.server.health import SMOLLM, models_needed


def start_warnings(settings: Settings) -> list[str]:
    """Warnings about the config itself (the bind address is `bind_notice`'s)."""
    found = []
    for name, backend in settings.backends.items():
        if backend.api_key_env and not backend.api_key and not os.environ.get(backend.api_key_env):
            found.append(f"backend '{name}' reads its API key from ${backend.api_key_env}, "
                         "which is not set: its calls will be refused by the provider")
    prepared = {item.name: item for item in assets.status()}
    for model in models_needed(settings):
        item = prepared.get(model)
        if item is not None and not item.ready:
            why = "a local backend" if model == SMOLLM else "compression"
            found.append(f"{why} is configured but the {model} files are missing at "
                         f"{item.path}: run `tokenomy assets install`; /readyz stays 503 "
                         "until they load")
    return found
