"""Operator commands of the tasks service: run the outbox relay alone, prune published
outbox rows, purge old keys and tombstones."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence

from momentum_shared.db import create_engine, create_session_factory
from momentum_shared.outbox import run_service_relay
from momentum_shared.program import traced_program
from momentum_tasks.app import prune_tombstones, pruner, purge_expired_idempotency_keys
from momentum_tasks.publishing import STREAMS
from momentum_tasks.settings import TasksSettings


async def purge_idempotency_keys(settings: TasksSettings) -> int:
    engine = create_engine(settings.database_url)
    try:
        return await purge_expired_idempotency_keys(create_session_factory(engine), settings)
    finally:
        await engine.dispose()


async def prune_old_tombstones(settings: TasksSettings) -> int:
    engine = create_engine(settings.database_url)
    try:
        return await prune_tombstones(create_session_factory(engine), settings)
    finally:
        await engine.dispose()


async def prune(settings: TasksSettings) -> dict[str, object]:
    engine = create_engine(settings.database_url)
    try:
        return (await pruner(create_session_factory(engine), settings).prune()).as_document()
    finally:
        await engine.dispose()


@traced_program("tasks")
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="momentum-tasks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("relay", help="run the outbox relay on its own (MOMENTUM_TASKS_* settings)")
    commands.add_parser(
        "prune", help="delete published outbox rows past their retention once (JSON per table)"
    )
    commands.add_parser("purge-idempotency-keys", help="delete keys older than their TTL")
    commands.add_parser(
        "prune-tombstones", help="forget deleted tasks older than the changes feed's retention"
    )
    args = parser.parse_args(argv)
    settings = TasksSettings()
    if args.command == "relay":
        run_service_relay(settings, service="tasks", streams=STREAMS)
    elif args.command == "prune":
        print(json.dumps(asyncio.run(prune(settings))))  # noqa: T201
    elif args.command == "prune-tombstones":
        print(f"deleted {asyncio.run(prune_old_tombstones(settings))} tombstones")  # noqa: T201
    else:
        print(f"deleted {asyncio.run(purge_idempotency_keys(settings))} idempotency keys")  # noqa: T201


if __name__ == "__main__":
    main()
