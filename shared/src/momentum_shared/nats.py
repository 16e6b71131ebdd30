"""NATS JetStream helpers: connecting with sane defaults and declaring streams."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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


def inbox_prefix(user: str) -> str:
    """The inbox a user's replies and deliveries arrive on (the only one it may subscribe)."""
    return f"_INBOX.{user}"


@dataclass(frozen=True)
class NatsAuth:
    """Who a program is on NATS (user and password) and the CA it trusts for ``tls://``."""

    user: str | None = None
    password: str | None = None
    tls_ca_file: Path | None = None

    def options(self, url: str) -> dict[str, Any]:
        """``nats.connect`` options: the server, the credentials, the inbox, the TLS context.

        Credentials given here replace any in the URL. A user receives its replies on its own
        inbox prefix, the only one its permissions let it subscribe to.
        """
        options: dict[str, Any] = {"servers": [url]}
        if self.user:
            parts = urlsplit(url)
            netloc = parts.netloc.rpartition("@")[2]
            options["servers"] = [urlunsplit(parts._replace(netloc=netloc))]
            options.update(
                user=self.user, password=self.password or "", inbox_prefix=inbox_prefix(self.user)
            )
        if self.tls_ca_file is not None:
            options["tls"] = ssl.create_default_context(cafile=str(self.tls_ca_file))
        return options


Callback = Callable[[], Awaitable[None]]
ErrorCallback = Callable[[Exception], Awaitable[None]]


async def _log_error(exc: Exception) -> None:
    logger.warning("NATS error", extra={"error": f"{type(exc).__name__}: {exc}"})


async def _nothing() -> None:
    return None


async def connect(
    url: str,
    *,
    name: str,
    connect_timeout: float = 2.0,
    auth: NatsAuth | None = None,
    client: NATS | None = None,
    on_error: ErrorCallback | None = None,
    on_disconnected: Callback | None = None,
    on_reconnected: Callback | None = None,
    **kwargs: Any,
) -> NATS:
    """Connect with reconnects forever, so a NATS outage heals without restarting the program.

    ``client`` connects a client the caller made beforehand (a cancelled connect can then
    close its socket); the callbacks hear of errors, losses and reconnections.
    """
    options: dict[str, Any] = {
        **(auth or NatsAuth()).options(url),
        "name": name,
        "connect_timeout": connect_timeout,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 1,
        "allow_reconnect": True,
        "error_cb": on_error or _log_error,
        "disconnected_cb": on_disconnected or _nothing,
        "reconnected_cb": on_reconnected or _nothing,
    }
    options.update(kwargs)
    if client is None:
        return await nats.connect(**options)
    await client.connect(**options)
    return client


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


def _owned(config: StreamConfig) -> tuple[Any, ...]:
    """The parts of a stream's configuration that Momentum's code decides."""
    return (
        sorted(config.subjects or []),
        config.retention,
        config.storage,
        config.max_age,
        config.duplicate_window,
        config.num_replicas,
    )


async def ensure_stream(js: JetStreamContext, name: str, *, replicas: int = 1) -> None:
    """Create the stream when it is missing; update it only when the code's part of its
    configuration differs.

    Programs may create their own stream but not update it (a stream update can add a
    republish rule, which the server executes with no permission check): a difference is
    logged as an error for an operator to apply as the NATS ``operator`` user (``docs/deploy.md``).
    """
    config = stream_config(name, replicas=replicas)
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)
        logger.info("created stream", extra={"stream": name})
        return
    if _owned(info.config) == _owned(config):
        return
    logger.error(
        "stream configuration differs from the code's; update it as the NATS operator user",
        extra={"stream": name, "have": repr(_owned(info.config)), "want": repr(_owned(config))},
    )
