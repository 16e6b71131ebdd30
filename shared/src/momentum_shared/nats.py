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
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

from momentum_shared.events import STREAM_SUBJECTS

logger = logging.getLogger("momentum.nats")

# A stream's limits when it is created (the relay passes its service's settings): past
# either, JetStream discards the oldest events, so a full stream never refuses a publish.
STREAM_MAX_AGE_SECONDS = 90 * 24 * 3600
STREAM_MAX_BYTES = 1024**3
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


class PublishingContext(JetStreamContext):
    """nats-py's JetStream context, with the server's refusal of an async publish delivered.

    nats-py (nats-io/nats.py#985, fix proposed in #994) raises the error a server answers
    to ``publish_async`` (``maximum messages exceeded``, ``insufficient resources``) inside
    its reply handler instead of setting it on the publish's future: the error goes to the
    error callback and the future never resolves, so a refusal would look like a timeout.
    This handler sets the error on the future; everything else is nats-py's.
    """

    async def _handle_async_reply(self, msg: Msg) -> None:
        token = msg.subject[len(self._nc._inbox_prefix) + 22 + 2 :]
        future = self._publish_async_futures.get(token)
        if future is None or future.done():
            return
        try:
            await super()._handle_async_reply(msg)
        except APIError as refused:
            if not future.done():
                future.set_exception(refused)


def jetstream(nc: NATS, **options: Any) -> JetStreamContext:
    """``nc.jetstream(**options)`` whose ``publish_async`` futures carry the server's refusals."""
    return PublishingContext(nc, **options)


def stream_config(
    name: str,
    *,
    replicas: int = 1,
    max_bytes: int = STREAM_MAX_BYTES,
    max_age_seconds: int = STREAM_MAX_AGE_SECONDS,
) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=STREAM_SUBJECTS[name],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=max_age_seconds,
        max_bytes=max_bytes,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=replicas,
    )


def _owned(config: StreamConfig) -> tuple[Any, ...]:
    """The parts of a stream's configuration that Momentum's code decides.

    Not the limits (``max_age``, ``max_bytes``, ``max_msgs``, ``discard``): the code sets
    them when it creates a stream, and from then on they are the operator's to size.
    """
    return (
        sorted(config.subjects or []),
        config.retention,
        config.storage,
        config.duplicate_window,
        config.num_replicas,
    )


def _limits(config: StreamConfig) -> dict[str, Any]:
    """The limits as the server reports them (unset is -1 for a count, 0 for an age)."""

    def count(value: int | None) -> int:
        return -1 if value is None else value

    return {
        "max_age_seconds": float(config.max_age or 0),
        "max_bytes": count(config.max_bytes),
        "max_msgs": count(config.max_msgs),
        "discard": DiscardPolicy(config.discard or DiscardPolicy.OLD).value,
    }


async def ensure_stream(
    js: JetStreamContext,
    name: str,
    *,
    replicas: int = 1,
    max_bytes: int = STREAM_MAX_BYTES,
    max_age_seconds: int = STREAM_MAX_AGE_SECONDS,
) -> None:
    """Create the stream when it is missing, with the given limits; never update it.

    Programs may create their own stream but not update it (a stream update can add a
    republish rule, which the server executes with no permission check). A difference in
    the code's part of the configuration is logged as an error for an operator to apply as
    the NATS ``operator`` user (``docs/deploy.md``); different limits are the operator's
    sizing and are kept as they are.
    """
    config = stream_config(
        name, replicas=replicas, max_bytes=max_bytes, max_age_seconds=max_age_seconds
    )
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)
        logger.info("created stream", extra={"stream": name, **_limits(config)})
        return
    if _owned(info.config) != _owned(config):
        logger.error(
            "stream configuration differs from the code's; update it as the NATS operator user",
            extra={
                "stream": name,
                "have": repr(_owned(info.config)),
                "want": repr(_owned(config)),
            },
        )
    if _limits(info.config) != _limits(config):
        logger.info(
            "stream limits differ from this service's settings; the stream's are kept",
            extra={"stream": name, "have": _limits(info.config), "settings": _limits(config)},
        )
