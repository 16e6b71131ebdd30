"""The operator command ``momentum-auth``: create-admin, rotate-keys and locks, without HTTP."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from momentum_auth.app import create_app
from momentum_auth.cli import main
from momentum_devtools.testing.apps import running_app
from services.auth.tests.conftest import FAST_HASHING, make_settings
from services.auth.tests.support import PASSWORD, kid_of, new_email, sign_in, tokens


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MOMENTUM_AUTH_DATABASE_URL", database_url)
    for name, value in FAST_HASHING.items():
        monkeypatch.setenv(f"MOMENTUM_AUTH_{name.upper()}", str(value))
    return database_url


def run(argv: list[str], stdin: str = "") -> int:
    return main(argv, stdin=io.StringIO(stdin))


async def sign_in_scopes_and_kid(database_url: str, email: str) -> tuple[str, str]:
    app = create_app(make_settings(database_url))
    async with running_app(app) as client:
        pair = await tokens(client, email)
    return pair["scope"], kid_of(pair["access_token"])


async def published_kids(database_url: str) -> set[str]:
    app = create_app(make_settings(database_url))
    async with running_app(app) as client:
        keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    return {key["kid"] for key in keys}


def test_create_admin_then_rotate_keys(cli_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    email = new_email()
    assert run(["create-admin", "--email", email, "--password-stdin"], PASSWORD + "\n") == 0
    created = json.loads(capsys.readouterr().out)
    assert created["email"] == email
    scope, first_kid = asyncio.run(sign_in_scopes_and_kid(cli_env, email))
    assert "admin" in scope.split()

    published = asyncio.run(published_kids(cli_env))
    assert run(["rotate-keys"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["alg"] == "RS256"
    assert rotated["kid"] != first_kid
    # The command promotes the key that was already in the JWKS.
    assert rotated["kid"] in published
    _, kid = asyncio.run(sign_in_scopes_and_kid(cli_env, email))
    assert kid == rotated["kid"]


def test_create_admin_refuses_duplicates_and_weak_passwords(
    cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    email = new_email()
    assert run(["create-admin", "--email", email, "--password-stdin"], PASSWORD) == 0
    capsys.readouterr()
    assert run(["create-admin", "--email", email.upper(), "--password-stdin"], PASSWORD) == 1
    assert "exists" in capsys.readouterr().err
    assert run(["create-admin", "--email", new_email(), "--password-stdin"], "seven7\n") == 2
    output = capsys.readouterr()
    assert "password" in output.err
    assert "seven7" not in output.err + output.out
    assert run(["create-admin", "--email", "nobody", "--password-stdin"], PASSWORD) == 2
    # Valid, but too long once case-folded (each U+0390 folds to three characters).
    folded = "\u0390" * 32 + "@" + ".".join(["\u0390" * 20] * 4) + ".gr"
    capsys.readouterr()
    assert run(["create-admin", "--email", folded, "--password-stdin"], PASSWORD) == 2
    assert "too long" in capsys.readouterr().err


def test_the_console_script_is_installed(cli_env: str, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("momentum-auth")
    assert script.exists()
    result = subprocess.run(
        [str(script), "rotate-keys"],
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["alg"] == "RS256"


async def sign_in_statuses(database_url: str, email: str, passwords: list[str]) -> list[int]:
    app = create_app(make_settings(database_url))
    async with running_app(app) as client:
        return [(await sign_in(client, email, password=p)).status_code for p in passwords]


def test_locks_are_listed_and_cleared(cli_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    email = new_email()
    assert run(["create-admin", "--email", email, "--password-stdin"], f"{PASSWORD}\n") == 0
    wrong = ["not the password"] * 5
    assert asyncio.run(sign_in_statuses(cli_env, email, [*wrong, PASSWORD])) == [401] * 5 + [429]
    capsys.readouterr()

    assert run(["locks", "list", "--email", email]) == 0
    locks = json.loads(capsys.readouterr().out)["locks"]
    assert {lock["key"].partition(":")[0] for lock in locks} == {"pair", "acct"}
    assert all(lock["entries"] == 5 and lock["retry_after"] >= 1 for lock in locks)
    assert run(["locks", "list"]) == 0
    everything = json.loads(capsys.readouterr().out)["locks"]
    assert {lock["key"].partition(":")[0] for lock in everything} == {"pair", "acct", "addr"}
    assert run(["locks", "list", "--email", new_email()]) == 0
    assert json.loads(capsys.readouterr().out) == {"locks": []}

    assert run(["locks", "clear", "--email", email.upper()]) == 0
    assert json.loads(capsys.readouterr().out)["cleared"] >= 10
    # The address is still locked for every account ...
    assert asyncio.run(sign_in_statuses(cli_env, email, [PASSWORD])) == [429]
    assert run(["locks", "clear", "--address", "127.0.0.1"]) == 0
    assert json.loads(capsys.readouterr().out)["cleared"] >= 5
    # ... until it is cleared too.
    assert asyncio.run(sign_in_statuses(cli_env, email, [PASSWORD])) == [200]
    assert run(["locks", "list"]) == 0
    assert json.loads(capsys.readouterr().out) == {"locks": []}


def test_locks_clear_needs_one_target(cli_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["locks", "clear"], ["locks", "clear", "--email", "a@b.c", "--address", "::1"]):
        with pytest.raises(SystemExit) as exited:
            run(argv)
        assert exited.value.code == 2
        assert "--email" in capsys.readouterr().err
