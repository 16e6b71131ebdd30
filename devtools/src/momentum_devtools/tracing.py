"""A span exporter that accepts every span and keeps none: ``OTEL_TRACES_EXPORTER=discard``.

It measures what tracing costs a program (spans started, ended, batched and handed to an
exporter by the SDK's batch processor) without the cost of any destination; bench/tracing
runs the hot path with it. Registered in the ``opentelemetry_traces_exporter`` entry-point
group by devtools' pyproject, so only a workspace (never an image) has it.

When ``MOMENTUM_DISCARD_TALLY`` names a directory, each program's exporter keeps there a file
(named by its process id) with the number of spans it has dropped so far, rewritten at each
batch: proof that spans were made, and how many. (A file per batch of up to 512 spans, off
the request path: the batch processor exports from its own thread.)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

TALLY_VARIABLE = "MOMENTUM_DISCARD_TALLY"


class DiscardSpanExporter(SpanExporter):
    """Counts the spans it is handed and drops them."""

    def __init__(self) -> None:
        self.exported = 0
        tally = os.environ.get(TALLY_VARIABLE)
        self.tally = Path(tally) / str(os.getpid()) if tally else None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        if self.tally is not None:
            self.tally.write_text(f"{self.exported}\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        del timeout_millis
        return True


def tallied(directory: Path) -> int:
    """The spans dropped by every program that kept its tally in ``directory``."""
    if not directory.is_dir():
        return 0
    return sum(int(path.read_text()) for path in directory.iterdir())
