"""`tokenomy serve`: check the config, say what is wrong with it, run uvicorn.

One process by default. With `--workers N` uvicorn starts N processes that
each build the app from the environment (`app.app_from_env`); this process
gives them a fresh Prometheus multiprocess directory, so /metrics in any
worker sums all of them, and migrates the ledger once before they start.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from tokenomy import __version__
from tokenomy.budgets.settings import LedgerSettings, require_keys_off_loopback
from tokenomy.config import Settings, load_settings
from tokenomy.observe.logs import LogFormat, configure_logging, logging_config
from tokenomy.observe.metrics import MULTIPROC_ENV
from tokenomy.plugins import registry
from tokenomy.server.app import SERVE_HOST_ENV
from tokenomy.server.connections import ConfiguredHttp, bounded_protocol
from tokenomy.server.startup import start_warnings

log = logging.getLogger("tokenomy.serve")


def checked_settings(config_path: str | None) -> Settings:
    """The settings with every section validated now: an error names file and line."""
    settings = load_settings(config_path)
    settings.check_sections(registry().sections)
    return settings


def run_server(config_path: str | None, *, host: str | None, port: int | None,
               log_level: str = "info", log_format: LogFormat = "json", workers: int = 1) -> None:
    import uvicorn

    configure_logging(log_level, log_format)  # this process's own lines, in the same format
    settings = checked_settings(config_path)
    host = host or settings.server.host
    port = port if port is not None else settings.server.port
    notice = require_keys_off_loopback(settings, host)
    if notice is not None:
        log.warning(notice)
    for warning in start_warnings(settings):
        log.warning(warning)
    options = {
        "host": host, "port": port, "log_level": log_level, "access_log": False,
        "log_config": logging_config(log_level, log_format), "loop": "uvloop",
        # uvicorn's httptools protocol with header/body/write clocks and a connection cap.
        "http": bounded_protocol(settings.server) if workers == 1 else ConfiguredHttp,
        "lifespan": "on", "timeout_keep_alive": settings.server.keepalive_timeout,
        "timeout_graceful_shutdown": int(settings.server.drain_seconds) or None,
    }
    backends = ", ".join(f"{n} ({b.kind})" for n, b in settings.backends.items())
    if workers == 1:
        from tokenomy.server.app import create_app

        app = create_app(settings)
        log.info("tokenomy %s listening on http://%s:%s/v1  backends: %s",
                 __version__, host, port, backends)
        uvicorn.run(app, **options)  # type: ignore[arg-type]
        return
    _migrate_once(settings)
    metrics_dir = tempfile.mkdtemp(prefix="tokenomy-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir  # before any worker imports prometheus_client
    os.environ[SERVE_HOST_ENV] = host
    if config_path:
        os.environ["TOKENOMY_CONFIG"] = str(Path(config_path).resolve())
    else:
        os.environ.pop("TOKENOMY_CONFIG", None)
    log.info("tokenomy %s listening on http://%s:%s/v1 with %d workers  backends: %s",
             __version__, host, port, workers, backends)
    try:
        uvicorn.run("tokenomy.server.app:app_from_env", factory=True, workers=workers,
                    **options)  # type: ignore[arg-type]
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _migrate_once(settings: Settings) -> None:
    """Workers starting at once must not race to create the ledger's tables (SQLite has
    no advisory lock): bring the database up to date before any of them starts."""
    ledger = settings.section("ledger", LedgerSettings)
    if not ledger.enabled:
        return
    from tokenomy.budgets.db import make_engine
    from tokenomy.budgets.migrations import migrate

    engine = make_engine(ledger.resolved_url())
    try:
        migrate(engine)
    finally:
        engine.dispose()
