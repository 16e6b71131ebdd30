"""The relay's Prometheus metrics, labelled by the service whose outbox it relays."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from momentum_shared.metrics import REGISTRY

OUTBOX_BACKLOG = Gauge(
    "momentum_outbox_backlog",
    "Outbox rows not yet published to JetStream",
    ["service"],
    registry=REGISTRY,
)
OUTBOX_OLDEST_AGE = Gauge(
    "momentum_outbox_oldest_unpublished_age_seconds",
    "Age of the oldest unpublished outbox row (0 when the backlog is empty)",
    ["service"],
    registry=REGISTRY,
)
OUTBOX_PUBLISHED = Counter(
    "momentum_outbox_published_total",
    "Outbox rows published to JetStream and acknowledged",
    ["service"],
    registry=REGISTRY,
)
OUTBOX_FAILURES = Counter(
    "momentum_outbox_publish_failures_total",
    "Failed relay rounds or rows, by reason",
    ["service", "reason"],
    registry=REGISTRY,
)
OUTBOX_PURGED = Counter(
    "momentum_outbox_purged_total",
    "Published outbox rows deleted after the retention period",
    ["service"],
    registry=REGISTRY,
)
OUTBOX_REFUSING = Gauge(
    "momentum_outbox_publish_refused",
    "1 while JetStream refuses every event the relay sends (an outage: events wait in the outbox)",
    ["service"],
    registry=REGISTRY,
)
