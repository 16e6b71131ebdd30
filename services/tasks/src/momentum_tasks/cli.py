"""Operator commands of the tasks service: run the outbox relay alone, purge old keys."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from datetime import timedelta

from momentum_shared.db import UnitOfWork, create_engine, create_session_factory
from momentum_shared.events import TASK_STREAM, utcnow
from momentum_shared.outbox import run_standalone
from momentum_tasks.repository import TaskRepository
from momentum_tasks.settings import TasksSettings


async def purge_idempotency_keys(settings: TasksSettings) -> int:
    engine = create_engine(settings.database_url)
    try:
        async with UnitOfWork(create_session_factory(engine)) as uow:
            cutoff = utcnow() - timedelta(seconds=settings.idempotency_ttl_seconds)
            return await TaskRepository(uow.session).purge_idempotency_keys(expired_before=cutoff)
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="momentum-tasks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("relay", help="run the outbox relay on its own (MOMENTUM_TASKS_* settings)")
    commands.add_parser("purge-idempotency-keys", help="delete keys older than their TTL")
    args = parser.parse_args(argv)
    settings = TasksSettings()
    if args.command == "relay":
        asyncio.run(
            run_standalone(
                service="tasks",
                database_url=settings.database_url,
                nats_url=settings.nats_url,
                streams=[TASK_STREAM],
                batch_size=settings.outbox_batch_size,
                poll_interval=settings.outbox_poll_interval,
                retention=timedelta(hours=settings.outbox_retention_hours),
                connect_timeout=settings.nats_connect_timeout,
                stream_replicas=settings.nats_stream_replicas,
                nats_auth=settings.nats_auth,
            )
        )
    else:
        print(f"deleted {asyncio.run(purge_idempotency_keys(settings))} idempotency keys")  # noqa: T201


if __name__ == "__main__":
    main()
