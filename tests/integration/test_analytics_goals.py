"""Analytics second edition across services: the user's timezone and goals, via the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.integration.conftest import Stack
from tests.integration.test_flows import bearer, eventually, register_and_login

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url(), timeout=10) as client:
        yield client


def test_a_timezone_change_reaches_analytics_without_a_new_token(gateway: httpx.Client) -> None:
    _, tokens = register_and_login(gateway, timezone="Europe/Berlin")
    old_token = bearer(tokens)

    def streaks_in(zone: str) -> dict[str, Any] | None:
        response = gateway.get("/analytics/streaks", headers=old_token)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if body["timezone"] == zone else None

    eventually(lambda: streaks_in("Europe/Berlin"))
    changed = gateway.patch("/auth/me", json={"timezone": "Pacific/Kiritimati"}, headers=old_token)
    assert changed.status_code == 200, changed.text

    body = eventually(lambda: streaks_in("Pacific/Kiritimati"))
    # The answer's "today" is Kiritimati's, unless local midnight passed in between.
    before, after = (datetime.now(UTC) - timedelta(seconds=30), datetime.now(UTC))
    kiritimati = ZoneInfo("Pacific/Kiritimati")
    assert body["today"] in {
        moment.astimezone(kiritimati).date().isoformat() for moment in (before, after)
    }
    report = gateway.get("/analytics/reports/monthly", headers=old_token)
    assert report.status_code == 200, report.text
    assert report.json()["timezone"] == "Pacific/Kiritimati"


def test_a_daily_goal_is_met_by_completing_tasks(gateway: httpx.Client) -> None:
    _, tokens = register_and_login(gateway, timezone="UTC")
    headers = bearer(tokens)
    assert "analytics:write" in tokens["scope"].split()
    response = gateway.put("/analytics/goals", json={"daily_tasks": 2}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["daily_goal"] == {"current": 0, "longest": 0, "met_today": False}

    for title in ("First", "Second"):
        task = gateway.post("/tasks", json={"title": title, "priority": "high"}, headers=headers)
        assert task.status_code == 201, task.text
        done = gateway.post(f"/tasks/{task.json()['id']}/complete", headers=headers)
        assert done.status_code == 200, done.text

    def met() -> dict[str, Any] | None:
        body: dict[str, Any] = gateway.get("/analytics/goals", headers=headers).json()
        return body if body["daily_goal"]["met_today"] else None

    assert eventually(met)["daily_goal"]["current"] == 1
    weekly = gateway.get("/analytics/reports/weekly", headers=headers).json()
    assert weekly["totals"]["completed_by_priority"]["high"] == 2
    assert weekly["totals"]["completed_undated"] == 2


def test_setting_goals_needs_the_write_scope_at_the_gateway(gateway: httpx.Client) -> None:
    _, tokens = register_and_login(gateway, scope="analytics:read")
    response = gateway.put("/analytics/goals", json={"daily_tasks": 2}, headers=bearer(tokens))
    assert response.status_code == 403
    assert 'scope="analytics:write"' in response.headers["www-authenticate"]
    assert gateway.get("/analytics/goals", headers=bearer(tokens)).status_code == 200
