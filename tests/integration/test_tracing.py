"""One request's trace, end to end: gateway, tasks, the outbox relay's publish, analytics.

All four apps run in this process (real uvicorn servers on free ports, the tasks relay and
the analytics consumer on a real NATS), so that one in-memory exporter sees every span.
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from momentum_analytics.app import create_app as create_analytics
from momentum_analytics.settings import AnalyticsSettings
from momentum_auth.app import create_app as create_auth
from momentum_auth.settings import AuthSettings
from momentum_devtools.testing.databases import DatabaseTemplates
from momentum_devtools.testing.servers import serving
from momentum_devtools.testing.settings import make_settings
from momentum_gateway.app import create_app as create_gateway
from momentum_gateway.settings import GatewaySettings
from momentum_tasks.app import create_app as create_tasks
from momentum_tasks.settings import TasksSettings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ISSUER = "https://momentum.test"
PASSWORD = "correct horse battery staple"
CLIENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"
T = TypeVar("T")

# Quick enough for a test, and no revocation feed: this trace is about one task's events.
COMMON: dict[str, Any] = {"revocation_enabled": False, "log_level": "WARNING"}


def alembic_ini(service: str) -> Path:
    return REPO / "services" / service / "alembic.ini"


@pytest.fixture(params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest,
    traces: InMemorySpanExporter,
    database_templates: DatabaseTemplates,
    tmp_path: Path,
    nats_url: str,
) -> Iterator[dict[str, int]]:
    """auth, tasks, analytics and the gateway served from this process; their ports.

    Asks for ``traces`` first, so that the apps, engines and clients are built traced.
    """
    del traces
    dialect: str = request.param
    with ExitStack() as resources:
        urls = {
            name: resources.enter_context(
                database_templates.database(alembic_ini(name), dialect, tmp_path / name)
            )
            for name in ("auth", "tasks", "analytics")
        }
        auth = make_settings(
            AuthSettings,
            urls["auth"],
            issuer=ISSUER,
            nats_url=nats_url,
            password_memory_cost_kib=1024,
            password_time_cost=1,
            password_parallelism=1,
            **COMMON,
        )
        ports = {"auth": resources.enter_context(serving(create_auth(auth)))}
        verification: dict[str, Any] = {
            "nats_url": nats_url,
            "token_issuer": ISSUER,
            "jwks_url": f"http://127.0.0.1:{ports['auth']}/.well-known/jwks.json",
            **COMMON,
        }
        tasks = make_settings(
            TasksSettings,
            urls["tasks"],
            outbox_relay_enabled=True,
            outbox_poll_interval_seconds=0.05,
            **verification,
        )
        ports["tasks"] = resources.enter_context(serving(create_tasks(tasks)))
        analytics = make_settings(
            AnalyticsSettings,
            urls["analytics"],
            consumer_fetch_timeout_seconds=0.2,
            consumer_retry_interval_seconds=0.1,
            **verification,
        )
        ports["analytics"] = resources.enter_context(serving(create_analytics(analytics)))
        gateway = GatewaySettings(
            environment="test",
            log_json=False,
            auth_url=f"http://127.0.0.1:{ports['auth']}",
            tasks_url=f"http://127.0.0.1:{ports['tasks']}",
            analytics_url=f"http://127.0.0.1:{ports['analytics']}",
            metrics_port=0,
            **verification,
        )
        ports["gateway"] = resources.enter_context(serving(create_gateway(gateway)))
        yield ports


def eventually(probe: Callable[[], T | None], *, patience: float = 30.0) -> T:
    """Poll until ``probe`` returns something (patience only stops a broken test hanging)."""
    deadline = time.monotonic() + patience
    while (value := probe()) is None:
        if time.monotonic() > deadline:
            pytest.fail("the condition did not hold in time")
        time.sleep(0.1)
    return value


def sign_in(gateway: httpx.Client) -> dict[str, str]:
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    registered = gateway.post(
        "/auth/register", json={"email": email, "password": PASSWORD, "timezone": "UTC"}
    )
    assert registered.status_code == 201, registered.text
    form = {"grant_type": "password", "username": email, "password": PASSWORD}
    token = gateway.post("/auth/token", data=form)
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def complete_with_a_traceparent(port: int, task_id: str, headers: dict[str, str]) -> int:
    """POST the completion as a traced client would: its own ``traceparent``, sent as is.

    urllib, because this process's httpx clients are instrumented and would replace the
    header with a span of their own.
    """
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/tasks/{task_id}/complete",
        method="POST",
        headers={**headers, "traceparent": f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def port_of(span: ReadableSpan) -> int | None:
    """The local port a SERVER span was served on (by either semantic convention)."""
    attributes = span.attributes or {}
    for name in ("server.port", "net.host.port"):
        if name in attributes:
            return int(str(attributes[name]))
    return None


def test_completing_a_task_is_one_trace_from_the_gateway_to_the_analytics_report(
    traces: InMemorySpanExporter, stack: dict[str, int]
) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{stack['gateway']}", timeout=10) as gateway:
        headers = sign_in(gateway)
        created = gateway.post("/tasks", json={"title": "Write the report"}, headers=headers)
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        assert complete_with_a_traceparent(stack["gateway"], task_id, headers) == 200

        def completion_counted() -> bool | None:
            report = gateway.get("/analytics/reports/weekly", headers=headers)
            assert report.status_code == 200, report.text
            return True if report.json()["totals"]["tasks_completed"] == 1 else None

        eventually(completion_counted)

    trace_id = int(CLIENT_TRACE_ID, 16)

    def in_the_trace() -> list[ReadableSpan]:
        return [
            s
            for s in traces.get_finished_spans()
            if s.context is not None and s.context.trace_id == trace_id
        ]

    def processed() -> ReadableSpan | None:
        # Ended just after the commit that made the report count the task.
        for span in in_the_trace():
            if span.name == "analytics process tasks.task.completed":
                return span
        return None

    process = eventually(processed)
    spans = in_the_trace()
    servers = [s for s in spans if s.kind == trace.SpanKind.SERVER]
    gateway_span = [s for s in servers if port_of(s) == stack["gateway"]]
    tasks_span = [s for s in servers if port_of(s) == stack["tasks"]]
    assert gateway_span, f"no gateway server span in {[(s.name, s.attributes) for s in servers]}"
    assert tasks_span, f"no tasks server span in {[(s.name, s.attributes) for s in servers]}"
    # The client's span is the root the gateway continued.
    assert any(
        s.parent is not None and s.parent.span_id == int(CLIENT_SPAN_ID, 16) for s in gateway_span
    )

    [publish] = [s for s in spans if s.kind == trace.SpanKind.PRODUCER]
    assert publish.name == "publish tasks.task.completed"
    assert publish.attributes is not None
    assert publish.attributes["messaging.system"] == "nats"
    assert publish.context is not None
    # The publish descends from the tasks request that wrote the outbox row.
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    ancestors: list[ReadableSpan] = []
    parent = publish.parent
    while parent is not None and parent.span_id in by_id:
        ancestors.append(by_id[parent.span_id])
        parent = by_id[parent.span_id].parent
    assert any(a in tasks_span for a in ancestors)

    assert process.kind == trace.SpanKind.CONSUMER
    assert process.parent is not None
    assert process.parent.span_id == publish.context.span_id
    applies = [
        s
        for s in traces.get_finished_spans()
        if s.name == "analytics apply"
        and any(link.context.span_id == publish.context.span_id for link in s.links)
    ]
    assert len(applies) == 1
