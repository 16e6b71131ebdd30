"""Tracing through the gateway: one trace from the client's traceparent down to the service.

The upstream of the end-to-end test is the real tasks service under uvicorn; the tests of
what the upstream receives use the echoing stand-ins of ``gateway/tests/support.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway.tests.support import UvicornThread, header_values
from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.databases import database_fixture
from momentum_devtools.testing.issuer import TestIssuer
from momentum_devtools.testing.settings import make_settings
from momentum_devtools.testing.tracing import spans_until
from momentum_gateway.routing import TABLE, TEMPLATES, match, route_template
from momentum_tasks.app import create_app as create_tasks_app
from momentum_tasks.settings import TasksSettings

ROOT = Path(__file__).resolve().parents[2]

database_url = database_fixture(ROOT / "services" / "tasks" / "alembic.ini")

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"


def trace_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def span_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.span_id, "016x")


def parent_id(span: ReadableSpan) -> str | None:
    return None if span.parent is None else format(span.parent.span_id, "016x")


def in_trace(spans: Sequence[ReadableSpan], trace: str) -> list[ReadableSpan]:
    return [s for s in spans if trace_id(s) == trace]


def only(spans: Sequence[ReadableSpan], name: str, kind: SpanKind | None = None) -> ReadableSpan:
    found = [s for s in spans if s.name == name and (kind is None or s.kind == kind)]
    assert len(found) == 1, [(s.name, s.kind) for s in spans]
    return found[0]


def servers(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.kind == SpanKind.SERVER]


# --- naming by template ------------------------------------------------------------------


def test_the_route_templates_are_the_paths_the_services_document() -> None:
    documented = set()
    for service in ("auth", "tasks", "analytics"):
        document = json.loads((ROOT / "services" / service / "openapi.json").read_text())
        documented |= set(document["paths"])
    assert sorted(TEMPLATES) == sorted(documented)


def test_a_path_is_named_by_its_template_and_an_unknown_one_by_its_rule() -> None:
    def template(method: str, path: str) -> str:
        rule = match(method, path, TABLE)
        assert rule is not None
        return route_template(rule, path)

    task = str(uuid.uuid4())
    assert template("GET", f"/tasks/{task}") == "/tasks/{task_id}"
    assert template("POST", f"/tasks/{task}/complete") == "/tasks/{task_id}/complete"
    assert template("GET", "/tasks") == "/tasks"
    assert template("GET", "/auth/me") == "/auth/me"
    assert template("GET", "/analytics/streaks") == "/analytics/streaks"
    # Paths no upstream documents: the table's pattern, never the path a client made up.
    assert template("GET", f"/tasks/{task}/no/such/route") == "/tasks/*"
    assert template("POST", "/tasks//complete") == "/tasks/*"
    assert template("GET", "/analytics/x") == "/analytics/*"


# --- one trace from the client to the service ----------------------------------------------


async def test_a_request_through_the_gateway_is_one_trace_down_to_the_tasks_service(
    traces: InMemorySpanExporter,
    database_url: str,
    app_factory: Callable[..., FastAPI],
    issuer: TestIssuer,
) -> None:
    settings = make_settings(TasksSettings, database_url, revocation_enabled=False)
    tasks_app = create_tasks_app(settings, jwks_client=issuer.client())
    with UvicornThread(tasks_app) as tasks:
        async with running_app(app_factory(tasks_url=tasks.url)) as gateway:
            alice = issuer.bearer(uuid.uuid4())
            created = await gateway.post("/tasks", json={"title": "Trace me"}, headers=alice)
            assert created.status_code == 201, created.text
            task_id = created.json()["id"]
            read = await gateway.get(
                f"/tasks/{task_id}", headers={**alice, "traceparent": CLIENT_TRACEPARENT}
            )
            assert read.status_code == 200, read.text
        spans = await spans_until(
            traces, lambda spans: len(servers(in_trace(spans, CLIENT_TRACE))) >= 2
        )

    # The client's trace is continued: every span of the read carries its trace id.
    read_spans = in_trace(spans, CLIENT_TRACE)
    gateway_server = only(
        [s for s in servers(read_spans) if parent_id(s) == CLIENT_SPAN], "GET /tasks/{task_id}"
    )
    assert gateway_server.attributes is not None
    assert gateway_server.attributes["http.route"] == "/tasks/{task_id}"
    verify = only(read_spans, "gateway.verify_token")
    limit = only(read_spans, "gateway.rate_limit")
    # The upstream call is one client span, the gateway's own: no second span of aiohttp's.
    proxy = only([s for s in read_spans if s.kind == SpanKind.CLIENT], "gateway.proxy")
    for step in (verify, limit, proxy):
        assert parent_id(step) == span_id(gateway_server), step.name
    assert proxy.attributes is not None
    assert proxy.attributes["http.request.method"] == "GET"
    assert proxy.attributes["server.address"] == "127.0.0.1"
    assert proxy.attributes["http.response.status_code"] == 200
    # The service's server span is a child of the gateway's call, named by its own template.
    tasks_server = only(
        [s for s in servers(read_spans) if parent_id(s) == span_id(proxy)],
        "GET /tasks/{task_id}",
    )
    assert tasks_server.attributes is not None
    assert tasks_server.attributes["http.route"] == "/tasks/{task_id}"
    # The service's statements are in the same trace, below its server span.
    statements = [s for s in read_spans if parent_id(s) == span_id(tasks_server)]
    assert statements, [(s.name, parent_id(s)) for s in read_spans]
    assert str(task_id) not in gateway_server.name + tasks_server.name

    # A request without a traceparent starts a trace at the gateway, which the service joins.
    create_server = only(
        [s for s in servers(spans) if s.parent is None and s.name == "POST /tasks"], "POST /tasks"
    )
    created_trace = in_trace(spans, trace_id(create_server))
    assert [s.name for s in servers(created_trace)] == ["POST /tasks", "POST /tasks"]


async def test_the_upstream_gets_the_gateways_trace_context_in_place_of_the_clients(
    traces: InMemorySpanExporter, client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    response = await client.get(
        "/tasks/1",
        headers={
            **issuer.bearer(),
            "traceparent": CLIENT_TRACEPARENT,
            "tracestate": "vendor=opaque",
            "baggage": "tenant=acme",
        },
    )
    assert response.status_code == 200
    echoed = response.json()
    call = only(
        [s for s in traces.get_finished_spans() if s.kind == SpanKind.CLIENT],
        "gateway.proxy",
        SpanKind.CLIENT,
    )
    # One traceparent, in the client's trace, naming the gateway's call as the parent.
    assert header_values(echoed, "traceparent") == [f"00-{CLIENT_TRACE}-{span_id(call)}-01"]
    assert header_values(echoed, "tracestate") == ["vendor=opaque"]
    assert header_values(echoed, "baggage") == ["tenant=acme"]


async def test_a_malformed_traceparent_starts_a_new_trace_and_its_tracestate_is_dropped(
    traces: InMemorySpanExporter, client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    response = await client.get(
        "/tasks/1",
        headers={**issuer.bearer(), "traceparent": "00-not-a-trace-01", "tracestate": "a=b"},
    )
    assert response.status_code == 200
    echoed = response.json()
    # The gateway's server span starts the trace: it has no parent.
    roots = [s for s in servers(traces.get_finished_spans()) if s.parent is None]
    server = only(roots, "GET /tasks/{task_id}")
    (traceparent,) = header_values(echoed, "traceparent")
    assert traceparent.split("-")[1] == trace_id(server)
    assert header_values(echoed, "tracestate") == []


async def test_a_refused_token_is_a_verify_span_that_says_so_and_nothing_goes_upstream(
    traces: InMemorySpanExporter, client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    expired = issuer.bearer(lifetime=-600)
    response = await client.get("/tasks/7", headers=expired)
    assert response.status_code == 401
    spans = traces.get_finished_spans()
    server = only([s for s in servers(spans) if s.parent is None], "GET /tasks/{task_id}")
    verify = only(spans, "gateway.verify_token")
    assert parent_id(verify) == span_id(server)
    assert verify.attributes is not None
    assert verify.attributes["momentum.gateway.refused"] == 401
    # A refusal is the verification's answer, not a failure of the gateway.
    assert verify.status.status_code == StatusCode.UNSET
    assert not [s for s in spans if s.name == "gateway.proxy" or s.kind == SpanKind.CLIENT]


async def test_an_address_limited_route_has_a_rate_limit_span_and_a_refusal_marks_it(
    traces: InMemorySpanExporter, app_factory: Callable[..., FastAPI]
) -> None:
    app = app_factory(rate_limit_address_per_second=0.01, rate_limit_address_burst=1)
    async with running_app(app) as client:
        statuses = [
            (await client.post("/auth/register", json={"name": "x"})).status_code for _ in range(2)
        ]
    assert statuses == [201, 429]
    spans = traces.get_finished_spans()
    gateway_servers = [s for s in servers(spans) if s.parent is None]
    assert [s.name for s in gateway_servers] == ["POST /auth/register", "POST /auth/register"]
    limits = [s for s in spans if s.name == "gateway.rate_limit"]
    assert [(s.attributes or {}).get("momentum.gateway.refused") for s in limits] == [None, 429]
    assert [(s.attributes or {}).get("momentum.rate_limit.key") for s in limits] == [
        "address",
        "address",
    ]


async def test_an_upstream_that_cannot_be_reached_marks_the_proxy_span_as_failed(
    traces: InMemorySpanExporter, app_factory: Callable[..., FastAPI], issuer: TestIssuer
) -> None:
    from gateway.tests.support import closed_port

    app = app_factory(tasks_url=f"http://127.0.0.1:{closed_port()}")
    async with running_app(app) as client:
        response = await client.get("/tasks/1", headers=issuer.bearer())
    assert response.status_code == 503
    proxy = only(traces.get_finished_spans(), "gateway.proxy")
    assert proxy.status.status_code == StatusCode.ERROR
    assert proxy.attributes is not None
    assert proxy.attributes["http.response.status_code"] == 503
    assert proxy.attributes["momentum.upstream"] == "tasks"


# --- tracing off -------------------------------------------------------------------------

# Tracing is a process-wide switch, and the ``traces`` fixture turns it on for the rest of
# the test session: the gateway with tracing off runs in a process of its own.
UNTRACED_GATEWAY = """
import asyncio, json, sys
from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.issuer import TestIssuer
from momentum_gateway.app import create_app
from momentum_gateway.settings import GatewaySettings
from momentum_shared import tracing

async def main():
    settings = GatewaySettings(**json.loads(sys.argv[1]))
    app = create_app(settings, jwks_client=TestIssuer().client())
    layers, layer = [], app.build_middleware_stack()
    while layer is not None and len(layers) < 50:
        layers.append(type(layer).__module__)
        layer = getattr(layer, "app", None)
    headers = json.loads(sys.argv[2])
    async with running_app(app) as client:
        response = await client.get("/.well-known/echo", headers=headers)
    print(json.dumps({"on": tracing.tracing_enabled(), "layers": layers, "echo": response.json()}))

asyncio.run(main())
"""


def test_with_tracing_off_nothing_is_instrumented_and_the_clients_trace_context_passes(
    upstreams: dict[str, str],
) -> None:
    settings: dict[str, Any] = {
        "auth_url": upstreams["auth"],
        "tasks_url": upstreams["tasks"],
        "analytics_url": upstreams["analytics"],
        "jwks_url": "http://auth.test/.well-known/jwks.json",
        "revocation_enabled": False,
        "metrics_port": 0,
        "log_json": False,
        "log_level": "WARNING",
    }
    sent = {"traceparent": CLIENT_TRACEPARENT, "tracestate": "vendor=opaque"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", UNTRACED_GATEWAY, json.dumps(settings), json.dumps(sent)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["on"] is False
    assert "momentum_gateway.pipeline" in result["layers"]
    assert not [m for m in result["layers"] if m.startswith("opentelemetry")], result["layers"]
    # A hop that takes no part in the trace forwards the client's fields unchanged.
    assert header_values(result["echo"], "traceparent") == [CLIENT_TRACEPARENT]
    assert header_values(result["echo"], "tracestate") == ["vendor=opaque"]
