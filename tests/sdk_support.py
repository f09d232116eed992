"""Shared helpers for the SDK tests: settings whose `echo` model is the test upstream,
with a real SQLite ledger in a temporary folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenomy.config import Settings
from tokenomy.testing.processes import Server, echo_config


def echo_settings(upstream: Server, folder: Path, **extra: Any) -> Settings:
    config = echo_config(upstream.v1, ledger={"url": f"sqlite:///{folder / 'ledger.db'}"},
                         **extra)
    return Settings.model_validate(config)


def ledger_steps(folder: Path) -> dict[str, dict[str, Any]]:
    """`tokenomy report --group-by step --format json` on the test ledger, keyed by step."""
    import json

    from click.testing import CliRunner

    from tokenomy.cli import main

    result = CliRunner().invoke(main, ["report", "--group-by", "step", "--format", "json",
                                       "--db", f"sqlite:///{folder / 'ledger.db'}"])
    assert result.exit_code == 0, (result.output, result.exception)
    return {group["key"]: group for group in json.loads(result.output)["groups"]}
