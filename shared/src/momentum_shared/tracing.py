"""Distributed tracing with OpenTelemetry, configured by the standard ``OTEL_*`` variables.

Tracing is off unless ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console`` or
any other registered in the ``opentelemetry_traces_exporter`` entry-point group, several
separated by commas); ``none``, an empty value or ``OTEL_SDK_DISABLED=true`` keep it off.
Off means no SDK provider and no instrumentation at all, so a request pays nothing for it.
(The SDK's own default exporter is ``otlp``; Momentum's is none, so that a laptop or a test
run never tries to reach a collector that is not there.)

Everything else is the SDK's: ``OTEL_SERVICE_NAME`` (default: the program's name),
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG`` (default
``parentbased_always_on``), ``OTEL_EXPORTER_OTLP_PROTOCOL``/``OTEL_EXPORTER_OTLP_ENDPOINT``
and the batch processor's ``OTEL_BSP_*``.

Once a provider is installed (by :func:`configure_tracing` in a program, or by the test
plugin's ``traces`` fixture) the instrumentations are switched on process-wide: httpx and
aiohttp's client at once, each FastAPI app by :func:`server_telemetry` (FastAPI's own
server spans) and each
SQLAlchemy engine in :func:`instrument_engine`.

Code on a hot path asks :func:`tracer` once, at construction: ``None`` means tracing is off
and the code takes its untraced path, with no span, context or propagation work at all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from importlib.metadata import entry_points
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger("momentum.tracing")

EXPORTER_GROUP = "opentelemetry_traces_exporter"

# Probes and scrapes are polled every few seconds by every kubelet and Prometheus: tracing
# them would bury the requests that matter.
EXCLUDED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

_provider: TracerProvider | None = None


def tracing_enabled() -> bool:
    """A provider is installed in this process: spans are recorded and exported."""
    return _provider is not None


def tracer(name: str) -> trace.Tracer | None:
    """A tracer of the installed provider, ``None`` when tracing is off."""
    if _provider is None:
        return None
    return _provider.get_tracer(name)


def name_server_span(method: str, route: str) -> None:
    """Name the current request's server span ``METHOD route`` and set its ``http.route``.

    For code that routes requests itself, in front of the framework's router (the
    gateway), where the instrumentation cannot know the template.
    """
    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)


def propagation_fields() -> frozenset[bytes]:
    """The header names the configured propagators write (``OTEL_PROPAGATORS``; by default
    ``traceparent``, ``tracestate`` and ``baggage``), lower-case, as ASGI spells them.

    A hop that takes part in the trace writes these itself instead of copying a caller's.
    """
    return frozenset(
        name.lower().encode("latin-1") for name in propagate.get_global_textmap().fields
    )


def inject_context(headers: list[tuple[str, str]], context: Context | None = None) -> None:
    """Append the propagation fields (see :func:`propagation_fields`) of ``context``, by
    default the current one."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    headers.extend(carrier.items())


def exporter_names(environ: os._Environ[str] | dict[str, str] | None = None) -> list[str]:
    """The exporters ``OTEL_TRACES_EXPORTER`` asks for; empty when tracing stays off."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    return [] if not names or "none" in names else names


# ``otlp`` is not an entry point of its own: as in the SDK's auto-configuration, the protocol
# variables choose the package (the specification's default protocol is http/protobuf).
_OTLP_BY_PROTOCOL = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}


def otlp_exporter_name(environ: os._Environ[str] | dict[str, str] | None = None) -> str:
    """The registered exporter ``otlp`` stands for under ``OTEL_EXPORTER_OTLP_*PROTOCOL``."""
    env = os.environ if environ is None else environ
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol not in _OTLP_BY_PROTOCOL:
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL is {protocol!r}; Momentum's images carry "
            f"{' and '.join(sorted(_OTLP_BY_PROTOCOL))}"
        )
    return _OTLP_BY_PROTOCOL[protocol]


def load_exporter(name: str) -> SpanExporter:
    """The exporter registered under ``name``, as the SDK's own auto-configuration finds it."""
    if name == "otlp":
        name = otlp_exporter_name()
    found = entry_points(group=EXPORTER_GROUP, name=name)
    if not found:
        available = sorted(ep.name for ep in entry_points(group=EXPORTER_GROUP))
        raise ValueError(
            f"OTEL_TRACES_EXPORTER names {name!r}, which is not installed "
            f"(installed: {', '.join(available)})"
        )
    exporter_class = next(iter(found)).load()
    exporter: SpanExporter = exporter_class()
    return exporter


def configure_tracing(service: str) -> bool:
    """Install a provider from the environment, once per process; True when tracing is on.

    ``service`` names the program in ``service.name`` unless ``OTEL_SERVICE_NAME`` does.
    """
    if _provider is not None:
        return True
    names = exporter_names()
    if not names:
        return False
    provider = TracerProvider(resource=service_resource(service))
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(load_exporter(name)))
    install_provider(provider)
    logger.info("tracing on", extra={"exporters": names})
    return True


def service_resource(service: str) -> Resource:
    attributes: dict[str, Any] = {}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = f"momentum-{service}"
    return Resource.create(attributes)


def install_provider(provider: TracerProvider) -> None:
    """Make ``provider`` the process's and switch on the process-wide instrumentations."""
    global _provider
    if _provider is not None:
        raise RuntimeError("a tracer provider is already installed in this process")
    trace.set_tracer_provider(provider)
    _provider = provider
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    AioHttpClientInstrumentor().instrument(tracer_provider=provider)
    # No asyncpg instrumentation: SQLAlchemy's spans already cover every statement on both
    # databases, and asyncpg's would repeat each one on PostgreSQL (ADR 0012).


def server_telemetry() -> TelemetryConfig:
    """What a FastAPI app is built with: its native server spans when tracing is on.

    FastAPI (0.165 and later) traces its own requests: one SERVER span per request, started
    before the middleware stack and renamed ``METHOD /route/{template}`` (with
    ``http.route``) when its router selects the route, so no route table is scanned again
    per request. Metrics, logs, operation spans and auto-configuration stay off: the metrics
    are Momentum's own (Prometheus), and ``OTEL_TRACES_EXPORTER`` is the one switch, so
    ``FASTAPI_OTEL_AUTO_CONFIGURE`` cannot start an exporter behind its back. Probes and
    scrapes are not traced. Tracing off, the same settings with tracing off too: the app's
    middleware stack is the one it would have without OpenTelemetry installed.
    """
    config: TelemetryConfig = {
        "tracing": _provider is not None,
        "metrics": False,
        "logs": False,
        "operation_spans": False,
        "auto_configure": False,
    }
    if _provider is not None:
        config["tracer_provider"] = _provider
        config["exclude"] = _untraced
    return config


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in EXCLUDED_PATHS


def instrument_engine(engine: AsyncEngine) -> None:
    """A span per statement on ``engine`` when tracing is on.

    The engine's listeners are attached directly (what ``SQLAlchemyInstrumentor`` does for an
    ``engine=`` argument): the instrumentor is a singleton that instruments its first
    engine only, and refuses SQLAlchemy releases newer than those it names.
    """
    if _provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__
    from opentelemetry.metrics import get_meter

    name = "opentelemetry.instrumentation.sqlalchemy"
    connections = get_meter(name, __version__).create_up_down_counter(
        name="db.client.connections.usage",
        unit="connections",
        description="The number of connections that are currently in state described by the "
        "state attribute.",
    )
    statement_tracer = _provider.get_tracer(name, __version__)
    EngineTracer(statement_tracer, engine.sync_engine, connections)  # type: ignore[no-untyped-call]


def shutdown_tracing() -> None:
    """Export what is buffered (at a program's exit)."""
    if _provider is not None:
        _provider.force_flush()
