"""Tracing in the auth service: requests are server spans named by their route template."""

from __future__ import annotations

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.auth.tests.support import bearer, new_email, register, tokens


async def test_auth_requests_are_server_spans_named_by_route_template(
    traces: InMemorySpanExporter, client: httpx.AsyncClient
) -> None:
    email = new_email()
    await register(client, email)
    pair = await tokens(client, email)
    assert (await client.get("/auth/me", headers=bearer(pair["access_token"]))).is_success
    assert (await client.get("/auth/me")).status_code == 401
    assert (await client.get("/.well-known/jwks.json")).status_code == 200
    servers = [s for s in traces.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert [s.name for s in servers] == [
        "POST /auth/register",
        "POST /auth/token",
        "GET /auth/me",
        "GET /auth/me",
        "GET /.well-known/jwks.json",
    ]
