"""The ``momentum-analytics`` operator command: rebuild projections, list and retry dead
letters, prune the inbox."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from momentum_analytics.app import pruner
from momentum_analytics.consumer import rebuild, retry_dead_letters
from momentum_analytics.repository import AnalyticsRepository
from momentum_analytics.settings import AnalyticsSettings
from momentum_shared.db import UnitOfWork, create_engine, create_session_factory
from momentum_shared.events import format_utc
from momentum_shared.program import traced_program


def _print(document: object) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


async def _run(command: str, settings: AnalyticsSettings, ids: Sequence[int] | None) -> int:
    engine = create_engine(settings.database_url, pool_size=2)
    session_factory = create_session_factory(engine)
    try:
        if command == "rebuild":
            replayed = await rebuild(session_factory, settings)
            _print({"rebuilt": True, "replayed": replayed})
            return 0
        if command == "prune":
            _print((await pruner(session_factory, settings).prune()).as_document())
            return 0
        if command == "dead-letters":
            async with UnitOfWork(session_factory) as uow:
                letters = await AnalyticsRepository(uow.session).dead_letters(ids)
            _print(
                [
                    {
                        "id": letter.id,
                        "stream": letter.stream,
                        "stream_sequence": letter.stream_sequence,
                        "subject": letter.subject,
                        "event_id": letter.event_id,
                        "deliveries": letter.deliveries,
                        "error": letter.error,
                        "failed_at": format_utc(letter.failed_at),
                        "payload": letter.payload.decode("utf-8", errors="replace"),
                    }
                    for letter in letters
                ]
            )
            return 0
        outcomes = await retry_dead_letters(session_factory, ids=ids)
        _print(
            [
                {"id": outcome.dead_letter_id, "applied": outcome.applied, "error": outcome.error}
                for outcome in outcomes
            ]
        )
        return 0 if all(outcome.applied for outcome in outcomes) else 1
    finally:
        await engine.dispose()


@traced_program("analytics")
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="momentum-analytics",
        description="Operate the analytics projections (settings from MOMENTUM_ANALYTICS_*).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "rebuild", help="empty the projections and the inbox, replay both streams from the start"
    )
    commands.add_parser(
        "prune", help="forget inbox ids older than the inbox retention once (JSON per table)"
    )
    for name, help_text in (
        ("dead-letters", "list the dead letters as JSON"),
        ("retry", "re-apply dead letters; those applied are removed (exit 1 if any failed)"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("ids", nargs="*", type=int, help="only these dead-letter ids")
    args = parser.parse_args(argv)
    ids: list[int] | None = getattr(args, "ids", None) or None
    try:
        return asyncio.run(_run(args.command, AnalyticsSettings(), ids))
    except Exception as exc:  # an operator wants one line, not a traceback
        sys.stderr.write(f"momentum-analytics {args.command}: {type(exc).__name__}: {exc}\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
