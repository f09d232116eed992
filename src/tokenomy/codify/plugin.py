"""The `[codify]` section, the `codify` stage and the `tokenomy contract` command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokenomy.plugins import hookimpl


@hookimpl
def register_settings_sections(register: Callable[[str, Any], None]) -> None:
    from tokenomy.codify.settings import CodifySettings

    register("codify", CodifySettings)


@hookimpl
def register_stages(register: Callable[..., None]) -> None:
    from tokenomy.codify.stage import CodifyStage

    register("codify", lambda services: CodifyStage(services.settings))


@hookimpl
def register_commands(cli: Any) -> None:
    from tokenomy.codify.cli import contract

    cli.add_command(contract)
