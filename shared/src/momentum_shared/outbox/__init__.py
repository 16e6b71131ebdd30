"""The transactional outbox: events written in the same transaction as the change they describe.

Each producing service declares the table on its own models' registry (``outbox_model``;
``outbox_table`` on a bare metadata), adds events with ``enqueue`` inside its unit of
work, and runs an ``OutboxRelay`` that publishes them to the streams the service names:
inside its web process, or on its own (``momentum-<service> relay``, or
``python -m momentum_shared.outbox --service … --stream …``). The package knows no
service: the table and the streams always come from the caller.
"""

from momentum_shared.outbox._claims import Claimed, Claims, RelayUnavailable, RowLocks, SqliteLease
from momentum_shared.outbox._metrics import (
    OUTBOX_BACKLOG,
    OUTBOX_FAILURES,
    OUTBOX_OLDEST_AGE,
    OUTBOX_PUBLISHED,
    OUTBOX_PURGED,
)
from momentum_shared.outbox._relay import (
    DEFAULT_POLL_INTERVAL_SECONDS,
    DEFAULT_RETENTION_SECONDS,
    Backoff,
    OutboxRelay,
    RelayConfigurable,
    RelaySettings,
    published_rows,
)
from momentum_shared.outbox._standalone import run_service_relay, run_standalone
from momentum_shared.outbox._table import OutboxEvent, enqueue, outbox_model, outbox_table

__all__ = [
    "DEFAULT_POLL_INTERVAL_SECONDS",
    "DEFAULT_RETENTION_SECONDS",
    "OUTBOX_BACKLOG",
    "OUTBOX_FAILURES",
    "OUTBOX_OLDEST_AGE",
    "OUTBOX_PUBLISHED",
    "OUTBOX_PURGED",
    "Backoff",
    "Claimed",
    "Claims",
    "OutboxEvent",
    "OutboxRelay",
    "RelayConfigurable",
    "RelaySettings",
    "RelayUnavailable",
    "RowLocks",
    "SqliteLease",
    "enqueue",
    "outbox_model",
    "outbox_table",
    "published_rows",
    "run_service_relay",
    "run_standalone",
]
