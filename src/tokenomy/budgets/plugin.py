"""The `[ledger]` and `[dashboard]` sections, the `budget` stage and the ledger commands
(report, keys, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokenomy.plugins import hookimpl


@hookimpl
def register_settings_sections(register: Callable[[str, Any], None]) -> None:
    from tokenomy.budgets.settings import DashboardSettings, LedgerSettings

    register("ledger", LedgerSettings)
    register("dashboard", DashboardSettings)


@hookimpl
def register_stages(register: Callable[..., None]) -> None:
    from tokenomy.budgets.stage import BudgetStage

    # No ledger (`[ledger] enabled = false`): nothing to reserve against.
    register("budget", lambda services: BudgetStage(services.budgets)
             if services.budgets is not None else None)


@hookimpl
def register_commands(cli: Any) -> None:
    from tokenomy.budgets.cli import COMMANDS

    for command in COMMANDS:
        cli.add_command(command)
