"""The relay's PRODUCER spans: each traced row is published in the trace that wrote it.

Only rows that carry a trace context (written inside a span, with tracing on) pay for any
of this; the others are published exactly as they were stored.
"""

from __future__ import annotations

import contextlib
import json

from opentelemetry import propagate, trace
from opentelemetry.semconv._incubating.attributes.messaging_attributes import (
    MESSAGING_DESTINATION_NAME,
    MESSAGING_MESSAGE_BODY_SIZE,
    MESSAGING_MESSAGE_ID,
    MESSAGING_OPERATION_NAME,
    MESSAGING_OPERATION_TYPE,
    MESSAGING_SYSTEM,
    MessagingOperationTypeValues,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from momentum_shared.outbox._claims import Claimed

tracer = trace.get_tracer("momentum.outbox")

# The CloudEvents Distributed Tracing extension attributes, as W3C Trace Context names them.
TRACE_ATTRIBUTES = ("traceparent", "tracestate")


def start_publish_span(row: Claimed, headers: dict[str, str]) -> tuple[Span, bytes]:
    """Start the row's PRODUCER span, a child of the stored context; the payload to send.

    The span's context goes into ``headers`` (as the propagators write it) and into the
    CloudEvent as its ``traceparent``/``tracestate`` attributes, so that a consumer that
    sees only the payload (a replay, a dead letter) still finds the trace.
    """
    assert row.trace_context is not None
    parent = None
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        parent = propagate.extract(json.loads(row.trace_context))
    span = tracer.start_span(
        f"publish {row.subject}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes={
            MESSAGING_SYSTEM: "nats",
            MESSAGING_DESTINATION_NAME: row.subject,
            MESSAGING_OPERATION_NAME: "publish",
            MESSAGING_OPERATION_TYPE: MessagingOperationTypeValues.SEND.value,
            MESSAGING_MESSAGE_ID: row.id,
        },
    )
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    headers.update(carrier)
    payload = with_trace_attributes(row.payload, carrier)
    span.set_attribute(MESSAGING_MESSAGE_BODY_SIZE, len(payload))
    return span, payload


def with_trace_attributes(payload: bytes, carrier: dict[str, str]) -> bytes:
    """The CloudEvent ``payload`` with the carrier's trace attributes (unchanged without)."""
    attributes = {name: carrier[name] for name in TRACE_ATTRIBUTES if carrier.get(name)}
    if not attributes:
        return payload
    try:
        envelope = json.loads(payload)
    except ValueError:
        return payload
    if not isinstance(envelope, dict):
        return payload
    for name in TRACE_ATTRIBUTES:
        envelope.pop(name, None)
    envelope.update(attributes)
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def end_publish_span(span: Span, error: BaseException | str | None = None) -> None:
    """End ``span`` once the server has answered (or the publish was given up)."""
    if error is not None:
        description = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        span.set_status(Status(StatusCode.ERROR, description))
        if isinstance(error, BaseException):
            span.record_exception(error)
    span.end()
