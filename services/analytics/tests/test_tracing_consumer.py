"""Tracing the consumer: a batch span linked to every event, a span per event in its trace."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from momentum_devtools.testing.apps import running_app
from momentum_shared.events import AUTH_STREAM, CLOUDEVENTS_CONTENT_TYPE, TASK_STREAM, CloudEvent
from momentum_shared.nats import connect, ensure_stream
from services.analytics.tests.support import (
    at,
    completed,
    created,
    logged_in,
    publish,
    wait_drained,
)

tracer = trace.get_tracer("tests")


async def publish_traced(
    nats_url: str, events: Sequence[CloudEvent], *, headers: bool = True
) -> list[ReadableSpan]:
    """Publish each event in a PRODUCER span of its own trace, as the relay does; the spans.

    The span's context goes into the CloudEvent's ``traceparent``/``tracestate`` and, unless
    ``headers`` is false, into the message's headers too.
    """
    spans: list[ReadableSpan] = []
    nc = await connect(nats_url, name="analytics-tests")
    try:
        js = nc.jetstream()
        for stream in (AUTH_STREAM, TASK_STREAM):
            await ensure_stream(js, stream)
        for event in events:
            with tracer.start_as_current_span(
                f"publish {event.type}", kind=trace.SpanKind.PRODUCER
            ) as span:
                carrier: dict[str, str] = {}
                propagate.inject(carrier)
                traced = event.model_copy(update={"traceparent": carrier["traceparent"]})
                message_headers = {
                    "Content-Type": CLOUDEVENTS_CONTENT_TYPE,
                    "Nats-Msg-Id": event.id,
                    **(carrier if headers else {}),
                }
                await js.publish(event.type, traced.to_json(), headers=message_headers)
            assert isinstance(span, ReadableSpan)
            spans.append(span)
    finally:
        await nc.close()
    return spans


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    value: int = span.context.span_id
    return value


def named(traces: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    return [s for s in traces.get_finished_spans() if s.name.startswith(prefix)]


def some_events() -> list[CloudEvent]:
    user, task = uuid.uuid4(), uuid.uuid4()
    return [
        logged_in(user, at("2026-11-24T08:00:00Z"), usertz="UTC"),
        created(user, at("2026-11-24T09:00:00Z"), task, usertz="UTC"),
        completed(user, at("2026-11-24T10:00:00Z"), task, usertz="UTC"),
    ]


async def test_a_batch_is_one_apply_span_linked_to_the_publish_of_every_event_in_it(
    traces: InMemorySpanExporter, app: FastAPI, nats_url: str
) -> None:
    # Published before the consumer starts, so that its first fetch takes all three.
    published = await publish_traced(nats_url, some_events())
    async with running_app(app):
        await wait_drained(nats_url)

    applies = named(traces, "analytics apply")
    assert applies, "no batch was traced"
    linked = [link.context.span_id for apply in applies for link in apply.links]
    assert sorted(linked) == sorted(span_id(span) for span in published)
    for apply in applies:
        assert apply.kind == trace.SpanKind.CONSUMER
        assert apply.attributes is not None
        assert apply.attributes["messaging.system"] == "nats"
        assert apply.attributes["messaging.batch.message_count"] == len(apply.links)


async def test_each_event_shows_in_its_own_trace_until_its_batch_has_committed(
    traces: InMemorySpanExporter, app: FastAPI, nats_url: str
) -> None:
    events = some_events()
    published = await publish_traced(nats_url, events)
    async with running_app(app):
        await wait_drained(nats_url)

    processed = {s.name: s for s in named(traces, "analytics process ")}
    assert sorted(processed) == sorted(f"analytics process {e.type}" for e in events)
    # One batch per stream: the apply span that links to the event's publish is its batch's.
    batch_of = {
        link.context.span_id: apply
        for apply in named(traces, "analytics apply")
        for link in apply.links
    }
    for event, producer in zip(events, published, strict=True):
        span = processed[f"analytics process {event.type}"]
        apply = batch_of[span_id(producer)]
        assert span.kind == trace.SpanKind.CONSUMER
        assert span.parent is not None
        assert span.parent.span_id == span_id(producer)
        assert span.context is not None
        assert producer.context is not None
        assert span.context.trace_id == producer.context.trace_id
        assert span.attributes is not None
        assert span.attributes["messaging.message.id"] == event.id
        # Taken into the batch before it was applied, ended once it had committed.
        assert span.start_time is not None
        assert apply.start_time is not None
        assert span.start_time <= apply.start_time
        assert span.end_time is not None
        assert apply.end_time is not None
        assert span.end_time >= apply.end_time


async def test_an_event_without_trace_headers_is_traced_from_its_cloudevent_attributes(
    traces: InMemorySpanExporter, app: FastAPI, nats_url: str
) -> None:
    [event] = some_events()[:1]
    [producer] = await publish_traced(nats_url, [event], headers=False)
    async with running_app(app):
        await wait_drained(nats_url)

    [span] = named(traces, "analytics process ")
    assert span.parent is not None
    assert span.parent.span_id == span_id(producer)
    [apply] = named(traces, "analytics apply")
    assert [link.context.span_id for link in apply.links] == [span_id(producer)]


async def test_untraced_events_are_applied_in_a_batch_span_with_no_links(
    traces: InMemorySpanExporter, app: FastAPI, nats_url: str
) -> None:
    await publish(nats_url, some_events())
    async with running_app(app):
        await wait_drained(nats_url)

    assert named(traces, "analytics process ") == []
    applies = named(traces, "analytics apply")
    assert applies
    assert all(not apply.links for apply in applies)
