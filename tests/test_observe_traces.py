"""OpenTelemetry spans: collected in process with the SDK's in-memory exporter, and
exported over OTLP/HTTP by a real `tokenomy serve` to a receiver in this test.

A request is one SERVER span named after the GenAI conventions ("chat echo"),
each stage a child span nested as the stages are, and the backend call a CLIENT
span (for a stream it lasts until the stream ends); usage, model, provider and
tokenomy's own attributes (team, savings, technique, tokens) are on them. A
client's `traceparent` makes the request span its child.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tokenomy
from tokenomy.config import Settings
from tokenomy.engine import Engine
from tokenomy.testing.processes import Server, echo_config, run_proxy

MESSAGES = [{"role": "user", "content": "Trace this request, please."}]
_exporter = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """The process's tracer provider (set once per process) with an in-memory exporter;
    `[telemetry] exporter = "none"` makes tokenomy use it."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        trace.set_tracer_provider(provider)
    return _exporter


def _settings(upstream: Server, folder: Path) -> Settings:
    config = echo_config(upstream.v1, ledger={"url": f"sqlite:///{folder / 'ledger.db'}"},
                         telemetry={"traces": True, "exporter": "none"})
    return Settings.model_validate(config)


def _by_name(found: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in found}


def _trace_of(exporter: InMemorySpanExporter, request_span: ReadableSpan) -> list[ReadableSpan]:
    trace_id = request_span.context.trace_id
    return [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]


def test_a_request_is_a_span_tree_with_genai_attributes(
        spans: InMemorySpanExporter, upstream: Server, tmp_path: Path) -> None:
    spans.clear()
    client = tokenomy.Client(_settings(upstream, tmp_path))
    try:
        rows = [{"id": i, "name": f"item {i}", "price": i * 1.5} for i in range(60)]
        content = "Which item is the dearest?\n" + json.dumps(rows, indent=4)
        completion = client.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": content}],
            tokenomy={"compress": {"method": "lossless", "target_ratio": 1.5}, "step": "plan"})
    finally:
        client.close()
    request = next(s for s in spans.get_finished_spans() if s.kind is trace.SpanKind.SERVER)
    found = _trace_of(spans, request)
    named = _by_name(found)
    assert request.name == "chat echo"
    attrs = dict(request.attributes or {})
    assert completion.usage is not None
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "echo"
    assert attrs["gen_ai.response.model"] == "echo-model"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    assert attrs["tokenomy.team"] == "default" and attrs["tokenomy.step"] == "plan"
    assert attrs["tokenomy.route"] == "sdk"
    assert attrs["tokenomy.saved_tokens"] > 0
    assert attrs["tokenomy.tokens.original"] - attrs["tokenomy.tokens.sent"] == attrs[
        "tokenomy.saved_tokens"]
    assert attrs["tokenomy.technique"] == ("json_compact",)
    # Stages nest as they run: each stage span's parent is the one before it.
    stages = [s for s in found if s.name.startswith("tokenomy.")]
    assert {"tokenomy.identify", "tokenomy.budget", "tokenomy.codify",
            "tokenomy.compress"} <= set(named)
    parents = {s.context.span_id: s for s in found}
    identify = named["tokenomy.identify"]
    assert identify.parent is not None and identify.parent.span_id == request.context.span_id
    for span in stages:
        assert span.parent is not None and span.parent.span_id in parents
    # The stage that saved says so on its own span (the JSON went compact in codify).
    codify = dict(named["tokenomy.codify"].attributes or {})
    assert codify["tokenomy.saved_tokens"] == attrs["tokenomy.saved_tokens"]
    assert codify["tokenomy.technique"] == ("json_compact",)
    backend = named["chat echo-model"]
    assert backend.kind is trace.SpanKind.CLIENT
    backend_attrs = dict(backend.attributes or {})
    assert backend_attrs["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert parents[backend.parent.span_id].name.startswith("tokenomy.")  # type: ignore[union-attr]


def test_a_stream_span_ends_with_the_stream(spans: InMemorySpanExporter, upstream: Server,
                                            tmp_path: Path) -> None:
    spans.clear()
    client = tokenomy.Client(_settings(upstream, tmp_path))
    try:
        stream = client.chat.completions.create(model="echo", messages=MESSAGES, stream=True,
                                                stream_options={"include_usage": True})
        first = next(iter(stream))
        assert first.choices
        assert not [s for s in spans.get_finished_spans() if s.kind is trace.SpanKind.SERVER]
        chunks = [first, *stream]
    finally:
        client.close()
    usage = chunks[-1].usage
    assert usage is not None
    request = next(s for s in spans.get_finished_spans() if s.kind is trace.SpanKind.SERVER)
    attrs = dict(request.attributes or {})
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.usage.output_tokens"] == usage.completion_tokens
    backend = _by_name(_trace_of(spans, request))["chat echo-model"]
    assert backend.end_time is not None and request.end_time is not None
    assert backend.end_time <= request.end_time


async def test_traceparent_and_errors(spans: InMemorySpanExporter, upstream: Server,
                                      tmp_path: Path) -> None:
    spans.clear()
    engine = Engine(_settings(upstream, tmp_path))
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    try:
        call = engine.prepare({"model": "fault:503", "messages": MESSAGES},
                              headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
        with pytest.raises(tokenomy.errors.UpstreamError):
            await engine.run(call)
    finally:
        await engine.aclose()
        if engine.budgets is not None:
            engine.budgets.close()
    request = next(s for s in spans.get_finished_spans() if s.kind is trace.SpanKind.SERVER)
    assert format(request.context.trace_id, "032x") == trace_id
    assert request.parent is not None and format(request.parent.span_id, "016x") == parent_id
    assert request.status.status_code is trace.StatusCode.ERROR
    attrs = dict(request.attributes or {})
    assert attrs["http.response.status_code"] == 502
    assert attrs["tokenomy.upstream_status"] == 503
    assert attrs["error.type"] == "bad_gateway"


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        _Receiver.bodies.append(self.rfile.read(length))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture()
def receiver() -> Iterator[str]:
    _Receiver.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    finally:
        server.shutdown()


def test_serve_exports_spans_over_otlp(upstream: Server, tmp_path: Path, receiver: str) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    config = echo_config(upstream.v1, telemetry={"traces": True, "endpoint": receiver,
                                                  "service_name": "tokenomy-test"})
    with run_proxy(config, folder=tmp_path, env={"OTEL_BSP_SCHEDULE_DELAY": "100"}) as proxy:
        response = httpx.post(proxy.v1 + "/chat/completions",
                              json={"model": "echo", "messages": MESSAGES}, timeout=30)
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        names: dict[str, dict[str, Any]] = {}
        service = None
        while time.monotonic() < deadline and "chat echo" not in names:
            for body in list(_Receiver.bodies):
                export = ExportTraceServiceRequest.FromString(body)
                for resource in export.resource_spans:
                    service = {a.key: a.value.string_value
                               for a in resource.resource.attributes}["service.name"]
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            names[span.name] = {a.key: a.value for a in span.attributes}
            time.sleep(0.1)
    assert service == "tokenomy-test"
    assert {"chat echo", "chat echo-model", "tokenomy.identify", "tokenomy.budget"} <= set(names)
    request = names["chat echo"]
    usage = response.json()["usage"]
    assert request["gen_ai.usage.input_tokens"].int_value == usage["prompt_tokens"]
    assert request["gen_ai.request.model"].string_value == "echo"
    assert request["tokenomy.request_id"].string_value == response.headers[
        "x-tokenomy-request-id"]
