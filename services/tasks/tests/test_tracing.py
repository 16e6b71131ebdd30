"""Tracing in the tasks service: requests named by route template, statements below them."""

from __future__ import annotations

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.tasks.tests.support import Headers, NewTask


async def test_task_requests_are_server_spans_named_by_route_template_with_their_statements(
    traces: InMemorySpanExporter, client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice)
    assert (await client.get(f"/tasks/{task['id']}", headers=alice)).status_code == 200
    completed = await client.post(f"/tasks/{task['id']}/complete", headers=alice)
    assert completed.status_code == 200, completed.text
    spans = traces.get_finished_spans()
    servers = [s for s in spans if s.kind == SpanKind.SERVER]
    assert [s.name for s in servers] == [
        "POST /tasks",
        "GET /tasks/{task_id}",
        "POST /tasks/{task_id}/complete",
    ]
    assert [(s.attributes or {}).get("http.route") for s in servers] == [
        "/tasks",
        "/tasks/{task_id}",
        "/tasks/{task_id}/complete",
    ]
    read = servers[1]
    assert read.context is not None
    # The read's statements are spans of the same trace, below the request's span.
    statements = [
        s for s in spans if s.parent is not None and s.parent.span_id == read.context.span_id
    ]
    assert statements
    assert {s.context.trace_id for s in statements if s.context} == {read.context.trace_id}
