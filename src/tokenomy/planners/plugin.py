"""The `[planner]` section, the `plan` stage and the `tokenomy planners` commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokenomy.plugins import hookimpl


@hookimpl
def register_settings_sections(register: Callable[[str, Any], None]) -> None:
    from tokenomy.planners.policy import PlannerPolicy

    register("planner", PlannerPolicy)


@hookimpl
def register_stages(register: Callable[..., None]) -> None:
    from tokenomy.planners.stage import PlanStage

    register("plan", lambda services: PlanStage(services.settings))


@hookimpl
def register_commands(cli: Any) -> None:
    from tokenomy.planners.cli import planners

    cli.add_command(planners)
