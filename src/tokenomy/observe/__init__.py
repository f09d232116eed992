"""Observability: the request log, Prometheus metrics and OpenTelemetry traces.

All three read one `CallRecord` per request, built where the engine sees the
call end (`Observer`), so every way in reports the same fields.
"""

from tokenomy.observe.observer import Observer
from tokenomy.observe.record import CallRecord, build_record
from tokenomy.observe.settings import TelemetrySettings

__all__ = ["CallRecord", "Observer", "TelemetrySettings", "build_record"]
