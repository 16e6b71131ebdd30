"""``make up`` with ``OTEL_TRACES_EXPORTER=console``: every program's spans land in its log."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.conftest import SERVICES, start_stack

pytestmark = pytest.mark.integration

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_each_program_writes_its_spans_with_trace_ids_to_its_log_under_the_data_dir(
    tmp_path: Path, stack_resources: tuple[Path, str, dict[str, str]]
) -> None:
    _, nats_url, urls = stack_resources
    running = start_stack(
        tmp_path,
        nats_url,
        urls,
        env={"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "always_on"},
    )
    try:
        request = urllib.request.Request(
            f"{running.url()}/tasks",
            headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        refused.value.close()
        assert refused.value.code == 401
    finally:
        assert running.stop() == 0
    logs = tmp_path / "data" / "logs"
    for name in SERVICES:
        text = (logs / f"{name}.log").read_text()
        assert re.search(r'"trace_id": "0x[0-9a-f]{32}"', text), name
        assert f'"service.name": "momentum-{name}"' in text, name
    # The gateway's server span of the request (probes are not traced).
    assert '"kind": "SpanKind.SERVER"' in (logs / "gateway.log").read_text()
