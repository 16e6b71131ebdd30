"""What a user sees across services: auth → gateway → tasks → events → analytics."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
T = TypeVar("T")


@pytest.fixture(scope="module")
def gateway(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url(), timeout=10) as client:
        yield client


def register_and_login(
    gateway: httpx.Client, *, timezone: str = "Europe/Berlin", scope: str | None = None
) -> tuple[str, dict[str, Any]]:
    email = f"user-{uuid.uuid4().hex[:10]}@Example.com"
    created = gateway.post(
        "/auth/register", json={"email": email, "password": PASSWORD, "timezone": timezone}
    )
    assert created.status_code == 201, created.text
    form = {"grant_type": "password", "username": email.lower(), "password": PASSWORD}
    if scope:
        form["scope"] = scope
    token = gateway.post("/auth/token", data=form)
    assert token.status_code == 200, token.text
    return email, token.json()


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def eventually(probe: Callable[[], T | None], *, timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail("the condition did not hold in time")
        time.sleep(0.2)


def jwt_header(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return decoded


def test_a_completed_task_shows_up_in_streaks_and_the_weekly_report(
    gateway: httpx.Client,
) -> None:
    _, tokens = register_and_login(gateway)
    headers = bearer(tokens)
    me = gateway.get("/auth/me", headers=headers)
    assert me.status_code == 200
    user_id = me.json()["id"]

    created = gateway.post("/tasks", json={"title": "Write the report"}, headers=headers)
    assert created.status_code == 201, created.text
    task = created.json()
    assert created.headers["etag"] == '"1"'
    done = gateway.post(f"/tasks/{task['id']}/complete", headers=headers)
    assert done.status_code == 200
    assert done.json()["status"] == "done"

    def login_and_completion_counted() -> dict[str, Any] | None:
        response = gateway.get("/analytics/streaks", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        counted = body["completion"]["current"] == 1 and body["login"]["current"] == 1
        return body if counted else None

    streaks = eventually(login_and_completion_counted)
    assert streaks["user_id"] == user_id
    assert streaks["timezone"] == "Europe/Berlin"
    assert streaks["login"]["current"] == 1

    report = gateway.get("/analytics/reports/weekly", headers=headers)
    assert report.status_code == 200
    totals = report.json()["totals"]
    counts = ("logins", "tasks_created", "tasks_completed", "active_days")
    assert {name: totals[name] for name in counts} == dict.fromkeys(counts, 1)


def test_another_users_task_is_not_found_through_the_gateway(gateway: httpx.Client) -> None:
    _, alice = register_and_login(gateway)
    _, bob = register_and_login(gateway)
    task = gateway.post("/tasks", json={"title": "mine"}, headers=bearer(alice)).json()
    assert gateway.get(f"/tasks/{task['id']}", headers=bearer(bob)).status_code == 404
    listed = gateway.get("/tasks", headers=bearer(bob)).json()
    assert listed["items"] == []


def test_missing_token_and_missing_scope(gateway: httpx.Client) -> None:
    anonymous = gateway.get("/tasks")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    _, narrow = register_and_login(gateway, scope="tasks:read")
    forbidden = gateway.post("/tasks", json={"title": "x"}, headers=bearer(narrow))
    assert forbidden.status_code == 403
    assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]


def test_a_revoked_session_is_refused_by_the_gateway(gateway: httpx.Client) -> None:
    _, tokens = register_and_login(gateway)
    headers = bearer(tokens)
    assert gateway.get("/tasks", headers=headers).status_code == 200
    revoked = gateway.post("/auth/revoke", data={"token": tokens["refresh_token"]})
    assert revoked.status_code == 200

    def refused() -> bool | None:
        return True if gateway.get("/tasks", headers=headers).status_code == 401 else None

    eventually(refused, timeout=10)


def test_services_verify_tokens_themselves_and_ignore_identity_headers(
    stack: Stack, gateway: httpx.Client
) -> None:
    _, alice = register_and_login(gateway)
    task = gateway.post("/tasks", json={"title": "alice's"}, headers=bearer(alice)).json()
    with httpx.Client(base_url=stack.url("tasks"), timeout=10) as direct:
        assert direct.get("/tasks").status_code == 401
        forged = direct.get(f"/tasks/{task['id']}", headers={"X-User-Id": task["id"]})
        assert forged.status_code == 401
        assert direct.get(f"/tasks/{task['id']}", headers=bearer(alice)).status_code == 200


def test_key_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(
    stack: Stack, gateway: httpx.Client
) -> None:
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
    admin = gateway.post("/auth/token", data=form).json()
    assert "admin" in admin["scope"].split()
    old_kid = jwt_header(admin["access_token"])["kid"]

    rotated = gateway.post("/auth/admin/keys/rotate", headers=bearer(admin))
    assert rotated.status_code == 201, rotated.text
    new_kid = rotated.json()["kid"]
    assert new_kid != old_kid

    jwks = gateway.get("/.well-known/jwks.json").json()
    assert {old_kid, new_kid} <= {key["kid"] for key in jwks["keys"]}
    assert gateway.get("/tasks", headers=bearer(admin)).status_code == 200
    fresh = gateway.post("/auth/token", data=form).json()
    assert jwt_header(fresh["access_token"])["kid"] == new_kid

    # The promoted key was published before it signed, so the gateway already knows it.
    assert gateway.get("/tasks", headers=bearer(fresh)).status_code == 200


# What a signed-in user may read straight from each service, without the gateway.
_DIRECT_READS = {"tasks": "/tasks", "analytics": "/analytics/streaks", "auth": "/auth/me"}


def test_a_logged_out_session_is_refused_everywhere_even_bypassing_the_gateway(
    gateway: httpx.Client, stack: Stack
) -> None:
    _, tokens = register_and_login(gateway)
    _, other = register_and_login(gateway)
    headers = bearer(tokens)
    direct = {name: f"{stack.url(name)}{path}" for name, path in _DIRECT_READS.items()}
    for url in direct.values():
        assert httpx.get(url, headers=headers, timeout=5).status_code == 200
    revoked = gateway.post("/auth/revoke", data={"token": tokens["refresh_token"]})
    assert revoked.status_code == 200

    def refused_everywhere() -> bool | None:
        statuses = {
            httpx.get(url, headers=headers, timeout=5).status_code for url in direct.values()
        }
        at_gateway = gateway.get("/tasks", headers=headers).status_code
        return True if statuses == {401} and at_gateway == 401 else None

    eventually(refused_everywhere)
    # Another user's session is untouched, at the services and through the gateway.
    for url in direct.values():
        assert httpx.get(url, headers=bearer(other), timeout=5).status_code == 200
    assert gateway.get("/tasks", headers=bearer(other)).status_code == 200
