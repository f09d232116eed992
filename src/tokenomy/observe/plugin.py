"""The `[telemetry]` section."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokenomy.plugins import hookimpl


@hookimpl
def register_settings_sections(register: Callable[[str, Any], None]) -> None:
    from tokenomy.observe.settings import TelemetrySettings

    register("telemetry", TelemetrySettings)
