"""Operator command ``momentum-auth``: admin users, signing keys and sign-in locks, no HTTP."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from pydantic import ValidationError

from momentum_auth import accounts, attempts
from momentum_auth.app import build_context
from momentum_auth.pruning import pruner
from momentum_auth.publishing import STREAMS
from momentum_auth.schemas import UserCreate
from momentum_auth.settings import AuthSettings
from momentum_auth.signing_keys import rotation
from momentum_shared.db import UnitOfWork, create_engine, create_session_factory
from momentum_shared.errors import Conflict, UnprocessableEntity
from momentum_shared.events import format_utc, utcnow
from momentum_shared.outbox import run_service_relay
from momentum_shared.program import traced_program

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="momentum-auth",
        description="Momentum auth operator commands (database from MOMENTUM_AUTH_DATABASE_URL).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("create-admin", help="create a user with the admin scope")
    admin.add_argument("--email", required=True)
    admin.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the password from the first line of standard input (never an argument)",
    )
    admin.add_argument("--display-name", default=None)
    admin.add_argument("--timezone", default="UTC")
    commands.add_parser(
        "rotate-keys", help="promote the published next signing key; publish a new next key"
    )
    commands.add_parser("relay", help="run the outbox relay on its own (MOMENTUM_AUTH_* settings)")
    commands.add_parser(
        "prune",
        help="delete what is past its retention once, as the prune job does (JSON per table)",
    )
    locks = commands.add_parser("locks", help="list or clear sign-in throttling")
    actions = locks.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the throttling keys that refuse attempts now")
    listing.add_argument("--email", default=None, help="only this account's")
    clearing = actions.add_parser("clear", help="forget an account's or an address's attempts")
    target = clearing.add_mutually_exclusive_group(required=True)
    target.add_argument("--email", default=None)
    target.add_argument("--address", default=None)
    return parser


def _read_password(stream: TextIO) -> str:
    return stream.readline().rstrip("\r\n")


async def _create_admin(settings: AuthSettings, data: UserCreate) -> dict[str, str]:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        context = build_context(settings)
        async with UnitOfWork(create_session_factory(engine)) as uow:
            user = await accounts.create_admin(uow.session, context, data, now=utcnow())
        return {"id": str(user.id), "email": user.email, "created_at": format_utc(user.created_at)}
    finally:
        await engine.dispose()


async def _rotate_keys(settings: AuthSettings) -> dict[str, str]:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        context = build_context(settings)
        async with UnitOfWork(create_session_factory(engine)) as uow:
            key = await rotation.rotate_signing_key(uow.session, context, now=utcnow())
        return {"kid": key.kid, "alg": key.algorithm, "created_at": format_utc(key.created_at)}
    finally:
        await engine.dispose()


async def _locks(
    settings: AuthSettings, action: str, *, email: str | None, address: str | None
) -> dict[str, object]:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with UnitOfWork(create_session_factory(engine)) as uow:
            if action == "clear":
                cleared = await attempts.clear_locks(uow.session, email=email, address=address)
                return {"cleared": cleared}
            locks = await attempts.list_locks(uow.session, settings, email=email, now=utcnow())
        return {
            "locks": [
                {"key": lock.key, "entries": lock.entries, "retry_after": lock.retry_after}
                for lock in locks
            ]
        }
    finally:
        await engine.dispose()


async def _prune(settings: AuthSettings) -> dict[str, object]:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        result = await pruner(create_session_factory(engine), settings).prune()
        return result.as_document()
    finally:
        await engine.dispose()


def _explain(exc: ValidationError) -> str:
    # Only locations and messages: pydantic's own text would echo the input, the password too.
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )


@traced_program("auth")
def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = AuthSettings()
    except ValidationError as exc:
        sys.stderr.write(f"momentum-auth: invalid settings: {_explain(exc)}\n")
        return EXIT_USAGE
    result: dict[str, object]
    if args.command == "relay":
        run_service_relay(settings, service="auth", streams=STREAMS)
        return EXIT_OK
    if args.command == "rotate-keys":
        result = dict(asyncio.run(_rotate_keys(settings)))
    elif args.command == "prune":
        result = asyncio.run(_prune(settings))
    elif args.command == "locks":
        result = asyncio.run(
            _locks(settings, args.action, email=args.email, address=getattr(args, "address", None))
        )
    else:
        try:
            data = UserCreate(
                email=args.email,
                password=_read_password(stdin or sys.stdin),
                display_name=args.display_name,
                timezone=args.timezone,
            )
        except ValidationError as exc:
            sys.stderr.write(f"momentum-auth: {_explain(exc)}\n")
            return EXIT_USAGE
        try:
            result = dict(asyncio.run(_create_admin(settings, data)))
        except Conflict as exc:
            sys.stderr.write(f"momentum-auth: {exc.detail}\n")
            return EXIT_FAILED
        except UnprocessableEntity as exc:
            messages = [str(error["msg"]) for error in exc.extra.get("errors", [])]
            sys.stderr.write(f"momentum-auth: email: {'; '.join(messages) or exc.detail}\n")
            return EXIT_USAGE
    sys.stdout.write(json.dumps(result) + "\n")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
