"""One relay as its own process: what `momentum-<service> relay` and `-m` entries run."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence
from typing import Protocol

import sqlalchemy as sa

from momentum_shared.db import create_engine, create_session_factory
from momentum_shared.outbox._relay import OutboxRelay, RelayConfigurable, RelaySettings
from momentum_shared.outbox._table import outbox_table
from momentum_shared.tracing import configure_tracing, shutdown_tracing


async def run_standalone(
    *, service: str, database_url: str, streams: Sequence[str], settings: RelaySettings
) -> None:
    """Relay ``service``'s outbox at ``database_url`` to ``streams`` until SIGINT or SIGTERM.

    ``settings.stream_replicas`` must match the in-process relays': a relay creates the
    streams it publishes to when they are missing, with that replication.
    """
    if not streams:
        raise ValueError("a relay publishes to at least one stream")
    configure_tracing(service)  # before the engine, which is instrumented when tracing is on
    engine = create_engine(database_url)
    relay = OutboxRelay(
        create_session_factory(engine),
        outbox_table(sa.MetaData()),
        service=service,
        streams=streams,
        settings=settings,
    )
    task = asyncio.create_task(relay.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, task.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        task.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
        await relay.aclose()
        await engine.dispose()
        shutdown_tracing()


class ServiceRelaySettings(RelayConfigurable, Protocol):
    """A producing service's settings: the relay's, and its database."""

    @property
    def database_url(self) -> str: ...


def run_service_relay(
    settings: ServiceRelaySettings, *, service: str, streams: Sequence[str]
) -> None:
    """The body of every service's ``relay`` command: its settings, its streams."""
    asyncio.run(
        run_standalone(
            service=service,
            database_url=settings.database_url,
            streams=streams,
            settings=RelaySettings.of(settings),
        )
    )
