"""NATS JetStream helpers: connecting with sane defaults and declaring streams."""

from __future__ import annotations

import logging
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from momentum_shared.events import STREAM_SUBJECTS

logger = logging.getLogger("momentum.nats")

# Streams keep a year of history so analytics can rebuild from the start.
STREAM_MAX_AGE_SECONDS = 365 * 24 * 3600
DUPLICATE_WINDOW_SECONDS = 120


async def connect(url: str, *, name: str, connect_timeout: float = 2.0, **kwargs: Any) -> NATS:
    """Connect with reconnects forever, so a NATS outage heals without restarting the service."""

    async def _error(exc: Exception) -> None:
        logger.warning("NATS error", extra={"error": f"{type(exc).__name__}: {exc}"})

    options: dict[str, Any] = {
        "servers": [url],
        "name": name,
        "connect_timeout": connect_timeout,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 1,
        "allow_reconnect": True,
        "error_cb": _error,
    }
    options.update(kwargs)
    return await nats.connect(**options)


def stream_config(name: str, *, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=STREAM_SUBJECTS[name],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=STREAM_MAX_AGE_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=replicas,
    )


async def ensure_stream(js: JetStreamContext, name: str, *, replicas: int = 1) -> None:
    """Create the stream, or update it when it exists (its config may have changed)."""
    config = stream_config(name, replicas=replicas)
    try:
        await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)
        logger.info("created stream", extra={"stream": name})
        return
    await js.update_stream(config)
