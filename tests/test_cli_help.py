"""Every command and option of the `tokenomy` CLI explains itself (issue 15, item 12),
and config errors name file and line instead of printing a traceback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from tokenomy.cli import main


def _commands(group: click.Command, path: str = "tokenomy") -> Iterator[tuple[str, click.Command]]:
    yield path, group
    if isinstance(group, click.Group):
        for name, command in group.commands.items():
            yield from _commands(command, f"{path} {name}")


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, command in _commands(main):
        if not (command.help or command.short_help):
            missing.append(path)
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                missing.append(f"{path} {'/'.join(param.opts)}")
    assert not missing, "no help text: " + ", ".join(missing)


def test_team_config_errors_name_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "tokenomy.toml"
    config.write_text('[compression]\nenabled = false\n\n[teams.acme]\ntokens = "lots"\n')
    for args in (["serve"], ["report"]):
        out = subprocess.run([sys.executable, "-m", "tokenomy.cli", *args, "--config",
                              str(config)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 1, out
        assert "Traceback" not in out.stderr
        assert f"{config}:5: teams.acme.tokens" in out.stderr, out.stderr
    bad = tmp_path / "team-section.toml"
    bad.write_text('[teams.acme]\ntokens = 100\n\n[teams.acme.compression]\nenabled = "maybe"\n')
    out = subprocess.run([sys.executable, "-m", "tokenomy.cli", "serve", "--config", str(bad)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"{bad}:5: teams.acme.compression.enabled" in out.stderr, out.stderr
