"""The engine's one end-of-call hook: every request, from every way in, is observed here.

`Engine.run` calls `start` before the stages, `returned` when they return,
and `finish_soon` when the call ends: at once for a whole response or an
error, at the end of its stream otherwise (after the ledger settled it, so the
record has its cost); the records are then built and written in small batches
off the request's path. `rejected` covers requests refused before they became
a call (unreadable JSON, a bad body, an unknown model). One `CallRecord` is
built per call and handed to the request log and the metrics; the tracer
ends its spans with it. Telemetry never fails a request: a sink that raises
is logged and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from tokenomy.call import Call, Result
from tokenomy.config import Settings
from tokenomy.observe.record import CallRecord, build_record
from tokenomy.observe.settings import TelemetrySettings
from tokenomy.observe.tracing import Terminal, Tracing
from tokenomy.transcript import WireProtocol

log = logging.getLogger("tokenomy.observe")

BATCH_SECONDS = 0.01  # a finished call is logged and counted at most this much later
BATCH_SIZE = 64


class Sink(Protocol):
    name: str

    def finish(self, record: CallRecord, state: Any) -> None: ...


class Observer:
    def __init__(self, sinks: list[Sink], tracing: Tracing | None = None):
        self.sinks = sinks
        self.tracing = tracing
        self._pending: list[tuple[Call, Result | None, BaseException | None, Any, float]] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> Observer | None:
        """The observers `[telemetry]` turns on; None when all are off."""
        from tokenomy.observe.logs import RequestLog, register_secrets
        from tokenomy.observe.metrics import process_metrics

        telemetry = settings.section("telemetry", TelemetrySettings)
        register_secrets(settings)
        sinks: list[Sink] = []
        if telemetry.request_log:
            sinks.append(RequestLog())
        if telemetry.metrics:
            sinks.append(process_metrics())
        tracing = Tracing(settings, telemetry) if telemetry.traces else None
        if not sinks and tracing is None:
            return None
        return cls(sinks, tracing)

    # -- around the pipeline ------------------------------------------------------

    def start(self, call: Call) -> Any:
        return self.tracing.start(call) if self.tracing is not None else None

    def returned(self, state: Any) -> None:
        if state is not None and self.tracing is not None:
            self.tracing.detach(state)

    def finish(self, call: Call, result: Result | None, error: BaseException | None,
               state: Any = None, ended: float | None = None) -> CallRecord:
        record = build_record(call, result, error, now=ended)
        for sink in self.sinks:
            try:
                sink.finish(record, state)
            except Exception:
                log.exception("telemetry: %s failed for %s", sink.name, call.request_id)
        if state is not None and self.tracing is not None:
            try:
                self.tracing.end(state, record)
            except Exception:
                log.exception("telemetry: ending the span of %s failed", call.request_id)
        return record

    def finish_soon(self, call: Call, result: Result | None, error: BaseException | None,
                    state: Any = None) -> None:
        """`finish`, off the request's path: the call's end time is taken now; records
        are built and written in batches (every BATCH_SECONDS, or BATCH_SIZE calls), so
        the client never waits for telemetry and its cost is paid between requests."""
        ended = time.perf_counter()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.finish(call, result, error, state, ended)
            return
        pending = self._pending
        pending.append((call, result, error, state, ended))
        if len(pending) >= BATCH_SIZE:
            loop.call_soon(self.drain)
        elif len(pending) == 1:
            loop.call_later(BATCH_SECONDS, self.drain)

    def drain(self) -> None:
        """Observe every call that ended and is waiting (a scrape of /metrics and the
        engine's close call this first, so nothing is missed or left behind)."""
        pending, self._pending = self._pending, []
        for call, result, error, state, ended in pending:
            try:
                self.finish(call, result, error, state, ended)
            except Exception:  # a callback's exception would only reach the loop's handler
                log.exception("telemetry: observing %s failed", call.request_id)

    def watch_stream(self, call: Call, result: Result, state: Any) -> None:
        """Finish when the stream ends (last chunk, error, or a client that went away)."""
        assert result.chunks is not None

        async def ended(error: BaseException | None) -> None:
            self.finish_soon(call, result, error, state)

        result.chunks.on_end(ended)

    def rejected(self, error: BaseException, *, route: str, protocol: WireProtocol,
                 started: float | None = None) -> Call:
        """A request refused before it became a call: observed as a call with no body.
        Returns that call (its request id goes into the error response's headers)."""
        call = Call(body={}, protocol=protocol, route=route)
        if started is not None:
            call.started = started
        state = self.start(call)
        self.returned(state)
        self.finish(call, None, error, state)
        return call

    # -- what the engine builds ---------------------------------------------------

    def wrap_stages(self, stages: list[Any]) -> list[Any]:
        if self.tracing is None:
            return stages
        return [self.tracing.wrap_stage(stage) for stage in stages]

    def wrap_terminal(self, terminal: Terminal) -> Terminal:
        return terminal if self.tracing is None else self.tracing.wrap_terminal(terminal)

    def close(self) -> None:
        self.drain()
        if self.tracing is not None:
            self.tracing.close()
