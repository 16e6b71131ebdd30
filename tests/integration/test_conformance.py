"""The merged OpenAPI document holds for the running system: schemathesis, through the gateway.

Schemathesis (a third-party property-based API tester) reads the gateway's merged document
and sends every operation its examples, coverage cases and fuzzed requests, with a real
token that has every scope (an admin's), and runs every check it has (``--checks all``):
statuses, content types, headers and bodies must be the ones the document declares,
requests valid by the schema must be accepted and invalid ones rejected, ``Allow`` must
list the methods the document has, and so on. No check and no operation is left out.

Deliberate configuration (``schemathesis.toml`` and ``schemathesis_hooks.py`` beside this
file, each entry with its reason):

- ``--phases examples,coverage,fuzzing``: the stateful phase is off because the document
  declares no OpenAPI links, so that phase would only repeat the fuzzing with random ids.
- ``--max-examples`` bounds the fuzzing so the run stays near a minute; the ``--seed`` is
  fixed so a failure can be reproduced with the same command; the cache of earlier
  failures is off, so every run starts afresh.
- "valid data is accepted" also accepts 412 (a well-formed If-Match that is stale), and
  for ``analytics.weekly_report`` 422 (a well-formed week that starts after today) and
  for ``tasks.list`` 400 (a cursor the list did not issue): each depends on state or the
  date, which no schema can say, and docs/spec says so. Invalid data must still be refused.
- The hooks teach the generator two formats the schema names (IANA time zones, email
  addresses at real domains) and give each valid request its own Idempotency-Key.
- ``--workers 1`` and a generous gateway burst: the gateway's rate limits would otherwise
  answer 429 to a fast fuzzer. 429 is documented, so that would still conform, but it
  would hide the services' own answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Stack, start_stack

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
# A longer or another run: MOMENTUM_CONFORMANCE_MAX_EXAMPLES=200 MOMENTUM_CONFORMANCE_SEED=7.
MAX_EXAMPLES = int(os.environ.get("MOMENTUM_CONFORMANCE_MAX_EXAMPLES", "12"))
SEED = int(os.environ.get("MOMENTUM_CONFORMANCE_SEED", "20261202"))
ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module")
def roomy_stack(
    stack_resources: tuple[Path, str, dict[str, str]], monkeypatch_module: pytest.MonkeyPatch
) -> Iterator[Stack]:
    tmp_path, nats_url, urls = stack_resources
    # A fuzzer is one fast client: lift the per-user and per-address limits for this stack.
    monkeypatch_module.setenv("MOMENTUM_GATEWAY_RATE_LIMIT_USER_BURST", "100000")
    monkeypatch_module.setenv("MOMENTUM_GATEWAY_RATE_LIMIT_ADDRESS_BURST", "100000")
    running = start_stack(tmp_path, nats_url, urls)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def admin_token(stack: Stack) -> str:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    created = subprocess.run(
        [
            str(Path(sys.executable).parent / "momentum-auth"),
            "create-admin",
            "--email",
            email,
            "--password-stdin",
        ],
        input=PASSWORD,
        capture_output=True,
        text=True,
        env=stack.env,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    form = {"grant_type": "password", "username": email, "password": PASSWORD}
    response = httpx.post(f"{stack.url()}/auth/token", data=form, timeout=10)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert set(tokens["scope"].split()) >= {"profile", "tasks:read", "tasks:write", "admin"}
    token: str = tokens["access_token"]
    return token


def test_schemathesis_finds_no_failure_through_the_gateway(
    roomy_stack: Stack, tmp_path: Path
) -> None:
    token = admin_token(roomy_stack)
    command = [
        str(Path(sys.executable).parent / "st"),
        "--config-file",
        str(CONFIG),
        "run",
        f"{roomy_stack.url()}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--header",
        f"Authorization: Bearer {token}",
        "--no-color",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output.replace(token, "<token>")[-20000:]
