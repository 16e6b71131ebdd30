"""Tracing: off unless configured; when on, requests are server spans named by their route."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from momentum_devtools.testing.apps import running_app
from momentum_shared.logs import JsonFormatter
from momentum_shared.tracing import exporter_names, load_exporter, otlp_exporter_name
from shared.tests.test_app import make_app


def test_tracing_is_off_unless_an_exporter_is_named() -> None:
    assert exporter_names({}) == []
    assert exporter_names({"OTEL_TRACES_EXPORTER": "none"}) == []
    assert exporter_names({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}) == []
    assert exporter_names({"OTEL_TRACES_EXPORTER": "otlp, console"}) == ["otlp", "console"]


def test_an_exporter_that_is_not_installed_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match=r"'carrier-pigeon'.*installed: .*console"):
        load_exporter("carrier-pigeon")


async def test_a_request_is_a_server_span_named_by_its_route_template(
    traces: InMemorySpanExporter,
) -> None:
    async with running_app(make_app()) as client:
        response = await client.get(
            "/items/7", headers={"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"}
        )
        assert response.status_code == 200
        await client.get("/healthz")
    servers = [s for s in traces.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    assert [s.name for s in servers] == ["GET /items/{item_id}"]
    assert format(servers[0].context.trace_id, "032x") == "ab" * 16
    assert servers[0].parent is not None
    assert format(servers[0].parent.span_id, "016x") == "cd" * 8


def test_log_lines_written_in_a_span_carry_its_ids(traces: InMemorySpanExporter) -> None:
    record = logging.makeLogRecord({"msg": "inside", "levelno": logging.INFO})
    with trace.get_tracer("test").start_as_current_span("work") as span:
        line = json.loads(JsonFormatter("demo").format(record))
    context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    outside = json.loads(JsonFormatter("demo").format(record))
    assert "trace_id" not in outside


@pytest.fixture
def demo_log_lines() -> Iterator[io.StringIO]:
    """What the demo app's logger writes, as the JSON lines a deployment would ship."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("demo"))
    logger = logging.getLogger("demo")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


async def test_log_lines_written_in_a_request_carry_its_trace_beside_its_request_id(
    traces: InMemorySpanExporter, demo_log_lines: io.StringIO
) -> None:
    async with running_app(make_app()) as client:
        response = await client.get("/items/7")
    assert response.status_code == 200
    (server,) = [s for s in traces.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    (line,) = [json.loads(text) for text in demo_log_lines.getvalue().splitlines()]
    assert line["message"] == "got item"
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert server.context is not None
    assert line["trace_id"] == format(server.context.trace_id, "032x")
    assert line["span_id"] == format(server.context.span_id, "016x")


def test_otlp_means_the_package_of_the_configured_protocol() -> None:
    assert otlp_exporter_name({}) == "otlp_proto_http"
    assert otlp_exporter_name({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) == "otlp_proto_grpc"
    traces_only = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
    }
    assert otlp_exporter_name(traces_only) == "otlp_proto_http"
    with pytest.raises(ValueError, match="'http/json'"):
        otlp_exporter_name({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
