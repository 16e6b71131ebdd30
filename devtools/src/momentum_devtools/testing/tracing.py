"""Finished spans captured in memory for the test that asks for them (the ``traces`` fixture).

A process can install one tracer provider only. The first test that asks for ``traces``
installs it (with every instrumentation, as a program does when ``OTEL_TRACES_EXPORTER`` is
set); from then on spans finished outside a ``traces`` test are dropped, not kept.
Apps, engines and clients built after that install are traced like a program's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from momentum_shared import tracing


class _Capture(SpanProcessor):
    """Hands finished spans to the exporter of the test that is running, if any."""

    def __init__(self) -> None:
        self.exporter: InMemorySpanExporter | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        exporter = self.exporter
        if exporter is not None:
            exporter.export((span,))

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        del timeout_millis
        return True


_capture: _Capture | None = None


@contextmanager
def captured_spans() -> Iterator[InMemorySpanExporter]:
    """Spans finished while the block runs, in the order they finished."""
    global _capture
    if _capture is None:
        _capture = _Capture()
        provider = TracerProvider(resource=tracing.service_resource("tests"))
        provider.add_span_processor(_capture)
        tracing.install_provider(provider)
    exporter = InMemorySpanExporter()
    _capture.exporter = exporter
    try:
        yield exporter
    finally:
        _capture.exporter = None


async def spans_until(
    exporter: InMemorySpanExporter,
    done: Callable[[Sequence[ReadableSpan]], bool],
    *,
    timeout: float = 10.0,
) -> Sequence[ReadableSpan]:
    """The finished spans once ``done`` says they are complete, or whatever came in ``timeout``.

    A server in another thread ends its span after the last byte of its answer is sent, so
    the client may hold the answer before the span is finished.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    spans = exporter.get_finished_spans()
    while not done(spans) and loop.time() < deadline:
        await asyncio.sleep(0.02)
        spans = exporter.get_finished_spans()
    return spans
