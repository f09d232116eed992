"""The `[telemetry]` section: the request log, /metrics and OpenTelemetry traces.

    [telemetry]
    request_log = true            # one line per request (logger tokenomy.request)
    metrics = true                # GET /metrics (Prometheus)
    metrics_require_admin = false # /metrics only with the admin key
    traces = false                # OpenTelemetry spans, off by default
    exporter = "otlp"             # otlp | console | none (the process's own tracer provider)
    endpoint = "http://collector:4318/v1/traces"   # default: OTEL_EXPORTER_OTLP_* or localhost
    service_name = "tokenomy"
    sample_ratio = 1.0

The log's format and level are options of `tokenomy serve` (`--log-format json|text`,
`--log-level`), since they are about the process, not the engine.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TelemetrySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_log: bool = True
    metrics: bool = True
    metrics_require_admin: bool = False
    traces: bool = False
    # none: use the tracer provider the process set up itself (an app embedding the SDK
    # that already exports its own traces; tests with the in-memory exporter).
    exporter: Literal["otlp", "console", "none"] = "otlp"
    endpoint: str | None = None  # the OTLP/HTTP traces URL
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. an auth header for the collector
    service_name: str = Field(default="tokenomy", min_length=1)
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
