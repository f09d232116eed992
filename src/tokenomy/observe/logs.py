"""The request log and the log format of a tokenomy process.

One line per request on the `tokenomy.request` logger: info when it answered,
warning when it failed, was refused or fell back. `tokenomy serve` formats
every logger's lines (uvicorn's too) as JSON by default, or as text for
people (`--log-format text`):

    {"time":"2026-05-04T10:15:02.114Z","level":"info","logger":"tokenomy.request",
     "msg":"request","request_id":"tk-...","route":"/v1/chat/completions",...}

No secret reaches a line: the request record holds no header or body, and
every formatted line (any logger) passes `redact`, which masks the configured
credentials (backend api keys, the admin key, the key pepper) and anything
shaped like a tokenomy key, a bearer token or an `sk-` key.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from tokenomy.config import Settings
from tokenomy.observe.record import CallRecord

LogFormat = Literal["json", "text"]
REQUEST_LOGGER = "tokenomy.request"
MASK = "***"

_secrets: set[str] = set()
_PATTERN = re.compile(
    r"(?P<tkn>tkn_[0-9a-f]{6,32}_)[A-Za-z0-9_\-]{8,}"
    r"|(?P<bearer>[Bb]earer\s+)[A-Za-z0-9._~+/=\-]{8,}"
    r"|(?P<sk>sk-(?:ant-|proj-)?)[A-Za-z0-9_\-]{12,}"
    r"|(?P<named>(?:api[_-]?key|x-api-key|authorization|password|secret)[\"']?\s*[:=]\s*[\"']?)"
    r"(?!\*\*\*)[^\s\"',;}<>]{12,}",
    re.IGNORECASE,
)


def _mask(match: re.Match[str]) -> str:
    prefix = next(value for value in match.groupdict().values() if value is not None)
    return prefix + MASK


def register_secrets(settings: Settings) -> None:
    """Remember the configured credentials so no log line of this process shows them."""
    values: list[str | None] = [settings.server.admin_key]
    for backend in settings.backends.values():
        values.append(backend.resolved_api_key())
        values.extend(backend.headers.values())
    ledger = settings.raw_section("ledger")
    values.append(ledger.get("key_pepper"))
    url = ledger.get("url")
    if isinstance(url, str) and "@" in url and ":" in url.split("@", 1)[0]:
        values.append(url.split("@", 1)[0].rsplit(":", 1)[-1])  # the database password
    telemetry = settings.raw_section("telemetry")
    values.extend(str(v) for v in (telemetry.get("headers") or {}).values())
    # Short values (a port, "on") would mask ordinary words: only real secrets count.
    _secrets.update(v for v in values if isinstance(v, str) and len(v) >= 8)


def _suspect(line: str) -> bool:
    """A substring every pattern needs: most lines have none and skip the full pattern
    (plain `in` tests are C-fast; an alternation regex costs a hundred times more)."""
    low = line.lower()
    return ("tkn_" in low or "bearer" in low or "sk-" in low or "api_key" in low
            or "api-key" in low or "apikey" in low or "authorization" in low
            or "password" in low or "secret" in low)


def redact(line: str) -> str:
    for secret in _secrets:
        if secret in line:
            line = line.replace(secret, MASK)
    return _PATTERN.sub(_mask, line) if _suspect(line) else line


def _clean(text: str) -> bool:
    """Nothing in `text` needs masking (checked on a request's free text, which is much
    shorter than its line)."""
    return not _suspect(text) and not any(secret in text for secret in _secrets)


_second: tuple[int, str] = (-1, "")


def _time(created: float) -> str:
    """ISO 8601 UTC with milliseconds; the date and time of day are built once a second."""
    global _second
    whole = int(created)
    if _second[0] != whole:
        _second = (whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second[1]}.{int((created - whole) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a request's record contributes its fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {"time": _time(record.created),
                                "level": record.levelname.lower(), "logger": record.name}
        request = getattr(record, "request", None)
        if isinstance(request, CallRecord):
            data["msg"] = "request"
            data.update(request.fields())
            if getattr(record, "stages", False):
                data["stages"] = request.stages()
            line = orjson.dumps(data, default=str).decode()
            # Only the free text can hold a secret (the rest is tokenomy's own numbers
            # and names): the whole line is redacted only when that text needs it.
            return line if _clean(request.free_text()) else redact(line)
        data["msg"] = record.getMessage()
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(data, default=str).decode())


class TextFormatter(logging.Formatter):
    """`time level logger message`, a request as one readable summary."""

    def format(self, record: logging.LogRecord) -> str:
        request = getattr(record, "request", None)
        message = summary(request) if isinstance(request, CallRecord) else record.getMessage()
        line = f"{_time(record.created)} {record.levelname:<7} {record.name} {message}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


def summary(r: CallRecord) -> str:
    """A request for people: who, what went where, how it ended, how long, tokens, money."""
    who = " ".join(f"{k}={v}" for k, v in (("team", r.team), ("key", r.key), ("step", r.step))
                   if v)
    where = f"{r.model} -> {r.backend}/{r.upstream_model}" if r.backend else r.model or "-"
    parts = [r.request_id, r.route, who, where]
    if r.fallback:
        parts.append(f"(fallback {r.fallback})")
    parts.append(f"{r.status} {r.outcome}")
    if r.upstream_status:
        parts.append(f"upstream {r.upstream_status}")
    parts.append(f"{r.latency_ms:.1f} ms (upstream {r.upstream_ms:.1f}, added {r.added_ms:.1f})")
    if r.tokens_original is not None:
        parts.append(f"prompt {r.tokens_original}->{r.tokens_sent}")
    if r.tokens_input or r.tokens_output:
        parts.append(f"in {r.tokens_input} (cache read {r.tokens_cache_read}, write "
                     f"{r.tokens_cache_write}) out {r.tokens_output} "
                     f"(reasoning {r.tokens_reasoning})")
    if r.cost_usd is not None:
        parts.append(f"${r.cost_usd:.6f}")
    if r.savings:
        saved = ", ".join(f"{k} {v}" for k, v in sorted(r.savings.items()))
        parts.append(f"saved {r.saved_tokens} [{saved}]")
    if r.mode:
        parts.append(f"mode={r.mode}")
    if r.error:
        parts.append(f"error: {r.error}")
    return " ".join(part for part in parts if part)


class _Summary:
    """The log message of a request: formatted only if some handler writes it (a process
    with no logging set up still gets a readable line from logging's last resort)."""

    __slots__ = ("record",)

    def __init__(self, record: CallRecord):
        self.record = record

    def __str__(self) -> str:
        return summary(self.record)


class RequestLog:
    """The observer that writes one line per request."""

    name = "request_log"

    def __init__(self) -> None:
        self.log = logging.getLogger(REQUEST_LOGGER)

    def finish(self, record: CallRecord, state: Any) -> None:
        log = self.log
        level = logging.WARNING if record.level_warning else logging.INFO
        if log.isEnabledFor(level):
            # At debug level the line also lists what each stage did. The record is
            # made directly: `log.log` would walk the stack for a caller nobody prints.
            extra = {"request": record, "stages": log.isEnabledFor(logging.DEBUG)}
            log.handle(log.makeRecord(log.name, level, "", 0, _Summary(record), (), None,
                                      extra=extra))


def logging_config(level: str = "info", fmt: LogFormat = "json") -> dict[str, Any]:
    """A `logging.config.dictConfig` for a tokenomy process (uvicorn takes it as
    `log_config`, so every worker applies it): tokenomy's and uvicorn's loggers in
    one format on stderr; uvicorn's access log stays off (the request log replaces it)."""
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"tokenomy": {"()": f"{formatter.__module__}.{formatter.__name__}"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "tokenomy",
                                "stream": "ext://sys.stderr"}},
        "loggers": {
            "tokenomy": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "py.warnings": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


def configure_logging(level: str = "info", fmt: LogFormat = "json") -> None:
    import logging.config

    logging.config.dictConfig(logging_config(level, fmt))
    server_process()


def server_process() -> None:
    """What a serving process sets once (uvicorn applies `log_config` itself in each
    worker): Python warnings become lines in the log's format, and log records skip
    the thread and process names no tokenomy format prints (a few µs per line)."""
    logging.captureWarnings(True)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
