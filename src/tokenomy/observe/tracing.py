"""OpenTelemetry traces: a span per request, per stage and per backend call.

Off by default; `[telemetry] traces = true` turns it on (OTLP over HTTP, or
`exporter = "none"` to use the tracer provider the process set up itself).
The spans follow the GenAI semantic conventions:

    chat gpt-4o-mini            SERVER  the request (ends when its stream ends)
      tokenomy.identify         INTERNAL  one per stage, nested as the stages are
        tokenomy.budget
          ...
            chat gpt-4o-mini-2024-07-18  CLIENT  the backend call (a stream: until its end)

Attributes: `gen_ai.operation.name`, `gen_ai.provider.name` (and the older
`gen_ai.system`), `gen_ai.request.model`, `gen_ai.response.model`,
`gen_ai.request.max_tokens`, `gen_ai.request.stream`, `gen_ai.usage.input_tokens`,
`gen_ai.usage.output_tokens`, the cache and reasoning usage; tokenomy's own:
`tokenomy.team`, `tokenomy.key`, `tokenomy.step`, `tokenomy.tokens.original`,
`tokenomy.tokens.sent`, `tokenomy.saved_tokens`, `tokenomy.technique`,
`tokenomy.mode`, `tokenomy.cost_usd`, `tokenomy.fallback`. A stage's span says
what the stage did (tokens before and after, technique, time). Never the
prompt or the answer: spans carry counts, not content.

A `traceparent` header from the client makes the request span its child.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tokenomy import __version__
from tokenomy.call import Call, Result
from tokenomy.config import Settings
from tokenomy.observe.record import CallRecord
from tokenomy.observe.settings import TelemetrySettings

if TYPE_CHECKING:
    from tokenomy.pipeline import Next, Stage

OPERATION = "chat"  # every wire protocol tokenomy serves is a chat-style generation
Terminal = Callable[[Call], Awaitable[Result]]


def provider_name(kind: str | None, model: str | None) -> str:
    """`gen_ai.provider.name` for a backend kind (litellm: the model's provider prefix)."""
    if kind == "litellm" and model and "/" in model:
        return model.split("/", 1)[0]
    return {"openai": "openai", "anthropic": "anthropic", "local": "tokenomy.local"}.get(
        kind or "", kind or "unknown")


def build_provider(settings: TelemetrySettings) -> Any:
    """A TracerProvider exporting in batches to OTLP/HTTP (or the console)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    resource = Resource.create({"service.name": settings.service_name,
                                "service.version": __version__})
    provider = TracerProvider(resource=resource,
                              sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)))
    exporter: Any
    if settings.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # endpoint None: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / _ENDPOINT, else localhost:4318.
        exporter = OTLPSpanExporter(endpoint=settings.endpoint, headers=settings.headers or None)
    else:
        exporter = ConsoleSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class Tracing:
    """Starts the request span, wraps stages and the backend call, ends spans with usage."""

    name = "traces"

    def __init__(self, settings: Settings, telemetry: TelemetrySettings):
        from opentelemetry import trace

        self._kinds = {name: backend.kind for name, backend in settings.backends.items()}
        self._provider = None if telemetry.exporter == "none" else build_provider(telemetry)
        source = self._provider or trace.get_tracer_provider()
        self.tracer = source.get_tracer("tokenomy", __version__)

    # -- the request span ------------------------------------------------------

    def start(self, call: Call) -> tuple[Any, Any]:
        """Open the request span and make it current for the stages (see `detach`)."""
        from opentelemetry import context, trace
        from opentelemetry.propagate import extract

        parent = extract({"traceparent": call.traceparent}) if call.traceparent else None
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.request.model": call.model,
            "gen_ai.request.stream": call.stream,
            "tokenomy.request_id": call.request_id,
            "tokenomy.route": call.route or call.protocol.name,
            "tokenomy.protocol": call.protocol.name,
        }
        max_tokens = call.protocol.max_output_tokens(call.body)
        if max_tokens:
            attributes["gen_ai.request.max_tokens"] = int(max_tokens)
        span = self.tracer.start_span(f"{OPERATION} {call.model}", context=parent,
                                      kind=trace.SpanKind.SERVER, attributes=attributes)
        token = context.attach(trace.set_span_in_context(span))
        return span, token

    def detach(self, state: tuple[Any, Any]) -> None:
        """The pipeline returned: the request span stops being current in this task
        (it stays open until the call ends, e.g. at the end of its stream)."""
        from opentelemetry import context

        context.detach(state[1])

    def end(self, state: tuple[Any, Any], record: CallRecord) -> None:
        from opentelemetry.trace import Status, StatusCode

        span = state[0]
        span.set_attributes(self._record_attributes(record))
        if record.status >= 500:
            span.set_status(Status(StatusCode.ERROR, record.error or str(record.status)))
        span.end()

    def _record_attributes(self, r: CallRecord) -> dict[str, Any]:
        found: dict[str, Any] = {
            "http.response.status_code": r.status,
            "tokenomy.outcome": r.outcome,
            "tokenomy.team": r.team,
            "tokenomy.saved_tokens": r.saved_tokens,
            "tokenomy.latency.upstream_ms": round(r.upstream_ms, 3),
            "tokenomy.latency.added_ms": round(r.added_ms, 3),
        }
        optional: dict[str, Any] = {
            "gen_ai.response.model": r.upstream_model,
            "gen_ai.provider.name": self.provider(r.backend, r.upstream_model),
            "gen_ai.system": self.provider(r.backend, r.upstream_model),
            "tokenomy.backend": r.backend,
            "tokenomy.key": r.key,
            "tokenomy.step": r.step,
            "tokenomy.user": r.user,
            "tokenomy.mode": r.mode,
            "tokenomy.fallback": r.fallback,
            "tokenomy.cost_usd": r.cost_usd,
            "tokenomy.saved_usd": r.saved_usd,
            "tokenomy.tokens.original": r.tokens_original,
            "tokenomy.tokens.sent": r.tokens_sent,
            "tokenomy.upstream_status": r.upstream_status,
            "error.type": r.error_type,
        }
        found.update({k: v for k, v in optional.items() if v is not None})
        if r.savings:
            found["tokenomy.technique"] = sorted(r.savings)
        if r.tokens_input or r.tokens_output:
            found.update(_usage_attributes(r))
        return found

    def provider(self, backend: str | None, model: str | None) -> str | None:
        return provider_name(self._kinds.get(backend or ""), model) if backend else None

    # -- stages and the backend call -----------------------------------------------

    def wrap_stage(self, stage: Stage) -> Stage:
        return TracedStage(stage, self.tracer)

    def wrap_terminal(self, terminal: Terminal) -> Terminal:
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        tracer = self.tracer

        async def upstream(call: Call) -> Result:
            span = tracer.start_span(f"{OPERATION} {call.upstream_model}",
                                     kind=trace.SpanKind.CLIENT,
                                     attributes={"gen_ai.operation.name": OPERATION,
                                                 "gen_ai.request.model": call.upstream_model
                                                 or call.model})
            try:
                result = await terminal(call)
            except BaseException as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                self._backend_attributes(span, call)
                span.end()
                raise
            self._backend_attributes(span, call)
            if result.chunks is None:
                _set_usage(span, result)
                span.end()
            else:
                async def ended(error: BaseException | None) -> None:
                    _set_usage(span, result)
                    if error is not None and not isinstance(error, GeneratorExit):
                        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                    span.end()

                result.chunks.on_end(ended)
            return result

        return upstream

    def _backend_attributes(self, span: Any, call: Call) -> None:
        span.update_name(f"{OPERATION} {call.upstream_model}")
        attributes: dict[str, Any] = {"gen_ai.response.model": call.upstream_model or "",
                                      "tokenomy.backend": call.backend or ""}
        provider = self.provider(call.backend, call.upstream_model)
        if provider:
            attributes["gen_ai.provider.name"] = attributes["gen_ai.system"] = provider
        if call.upstream_status:
            attributes["tokenomy.upstream_status"] = call.upstream_status
        if call.fallback:
            attributes["tokenomy.fallback"] = call.fallback
        span.set_attributes(attributes)

    def close(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()


def _usage_attributes(r: CallRecord) -> dict[str, Any]:
    return {
        "gen_ai.usage.input_tokens": r.tokens_input,
        "gen_ai.usage.output_tokens": r.tokens_output,
        "gen_ai.usage.cache_read.input_tokens": r.tokens_cache_read,
        "gen_ai.usage.cache_creation.input_tokens": r.tokens_cache_write,
        "gen_ai.usage.reasoning.output_tokens": r.tokens_reasoning,
    }


def _set_usage(span: Any, result: Result) -> None:
    usage = result.usage
    if usage is not None:
        span.set_attributes({"gen_ai.usage.input_tokens": usage.prompt_tokens,
                             "gen_ai.usage.output_tokens": usage.completion_tokens})


class TracedStage:
    """A stage in its own span; what the stage recorded becomes the span's attributes."""

    def __init__(self, stage: Stage, tracer: Any):
        self.stage = stage
        self.name = stage.name
        self.tracer = tracer
        self.span_name = f"tokenomy.{stage.name}"

    def __getattr__(self, name: str) -> Any:  # the stage's own attributes (e.g. `budgets`)
        return getattr(self.stage, name)

    async def __call__(self, call: Call, next: Next) -> Result:
        with self.tracer.start_as_current_span(self.span_name) as span:
            first = len(call.events)
            try:
                return await self.stage(call, next)
            finally:
                _stage_attributes(span, self.name, call, first)


def _stage_attributes(span: Any, stage: str, call: Call, first: int) -> None:
    before = after = None
    techniques: list[str] = []
    ms = 0.0
    for event in call.events[first:]:
        if event.stage != stage:
            continue
        if event.tokens_before is not None and before is None:
            before = event.tokens_before
        if event.tokens_after is not None:
            after = event.tokens_after
        if event.technique and event.technique not in techniques:
            techniques.append(event.technique)
        ms += event.ms
    attributes: dict[str, Any] = {"tokenomy.stage": stage}
    if before is not None and after is not None:
        attributes.update({"tokenomy.tokens_before": before, "tokenomy.tokens_after": after,
                           "tokenomy.saved_tokens": max(0, before - after)})
    if techniques:
        attributes["tokenomy.technique"] = techniques
    if ms:
        attributes["tokenomy.stage_ms"] = round(ms, 3)
    span.set_attributes(attributes)
