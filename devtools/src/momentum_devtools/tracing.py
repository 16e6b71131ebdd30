"""A span exporter that accepts every span and keeps none: ``OTEL_TRACES_EXPORTER=discard``.

It measures what tracing costs a program (spans started, ended, batched and handed to an
exporter by the SDK's batch processor) without the cost of any destination; bench/tracing
runs the hot path with it. Registered in the ``opentelemetry_traces_exporter`` entry-point
group by devtools' pyproject, so only a workspace (never an image) has it.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class DiscardSpanExporter(SpanExporter):
    """Counts the spans it is handed and drops them."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        del timeout_millis
        return True
