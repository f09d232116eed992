"""The `[prompt_cache]` section and the `prompt_cache` stage (after `compress`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokenomy.plugins import hookimpl


@hookimpl
def register_settings_sections(register: Callable[[str, Any], None]) -> None:
    from tokenomy.prompt_cache.settings import PromptCacheSettings

    register("prompt_cache", PromptCacheSettings)


@hookimpl
def register_stages(register: Callable[..., None]) -> None:
    from tokenomy.prompt_cache.stage import prompt_cache_stage

    register("prompt_cache", prompt_cache_stage, after="compress")
