"""Tracing in the analytics service: requests are server spans named by their route template."""

from __future__ import annotations

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from momentum_devtools.testing.issuer import TestIssuer


async def test_analytics_requests_are_server_spans_named_by_route_template(
    traces: InMemorySpanExporter, client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    headers = issuer.bearer()
    assert (await client.get("/analytics/streaks", headers=headers)).status_code == 200
    weekly = await client.get("/analytics/reports/weekly", headers=headers)
    assert weekly.status_code == 200, weekly.text
    assert (await client.get("/analytics/streaks")).status_code == 401
    servers = [s for s in traces.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert [s.name for s in servers] == [
        "GET /analytics/streaks",
        "GET /analytics/reports/weekly",
        "GET /analytics/streaks",
    ]
