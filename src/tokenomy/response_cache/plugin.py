"""The `[response_cache]` section and the `response_cache` stage (innermost, after plan)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokenomy.plugins import hookimpl


@hookimpl
def register_settings_sections(register: Callable[[str, Any], None]) -> None:
    from tokenomy.response_cache.settings import ResponseCacheSettings

    register("response_cache", ResponseCacheSettings)


@hookimpl
def register_stages(register: Callable[..., None]) -> None:
    from tokenomy.response_cache.stage import build

    register("response_cache", build, after="plan")
