"""The CloudEvents envelope and every event type survive a JSON round trip."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from momentum_shared.events import (
    EVENT_TYPES,
    CloudEvent,
    EventData,
    ProjectCreated,
    ProjectDeleted,
    ProjectUpdated,
    SessionRevoked,
    TaskCompleted,
    TaskCreated,
    TaskDeleted,
    TaskReopened,
    TaskUpdated,
    UserLoggedIn,
    UserRegistered,
    UserUpdated,
)

USER = uuid.uuid4()
TASK = uuid.uuid4()
PROJECT = uuid.uuid4()
WHEN = datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)

SAMPLES: list[EventData] = [
    UserRegistered(user_id=USER, timezone="Europe/Berlin"),
    UserUpdated(user_id=USER, timezone="America/New_York"),
    UserLoggedIn(user_id=USER, method="password"),
    UserLoggedIn(user_id=USER, method="refresh"),
    SessionRevoked(user_id=USER, session_id=uuid.uuid4(), expires_at=WHEN),
    TaskCreated(task_id=TASK, user_id=USER, priority="high", due_at=None, created_at=WHEN),
    TaskUpdated(task_id=TASK, user_id=USER, changed=["title", "tags"], version=3),
    TaskCompleted(task_id=TASK, user_id=USER, completed_at=WHEN, due_at=WHEN),
    TaskReopened(task_id=TASK, user_id=USER),
    TaskDeleted(task_id=TASK, user_id=USER),
    TaskDeleted(task_id=TASK, user_id=USER, project_id=PROJECT),
    ProjectCreated(project_id=PROJECT, user_id=USER),
    ProjectUpdated(project_id=PROJECT, user_id=USER),
    ProjectDeleted(project_id=PROJECT, user_id=USER),
]


def test_every_contract_type_has_a_model() -> None:
    assert set(EVENT_TYPES) == {
        "auth.user.registered",
        "auth.user.updated",
        "auth.user.logged_in",
        "auth.session.revoked",
        "tasks.task.created",
        "tasks.task.updated",
        "tasks.task.completed",
        "tasks.task.reopened",
        "tasks.task.deleted",
        "tasks.project.created",
        "tasks.project.updated",
        "tasks.project.deleted",
    }


@pytest.mark.parametrize("data", SAMPLES, ids=lambda d: d.event_type)
def test_round_trip(data: EventData) -> None:
    event = CloudEvent.of(
        data, source="/momentum/test", subject=str(USER), usertz="Europe/Berlin", time=WHEN
    )
    raw = event.to_json()
    parsed = CloudEvent.from_json(raw)
    assert parsed == event
    assert parsed.typed_data() == data
    body = json.loads(raw)
    assert body["specversion"] == "1.0"
    assert body["type"] == data.event_type
    assert body["time"] == "2026-11-26T10:00:00.123456Z"
    assert body["usertz"] == "Europe/Berlin"
    assert body["datacontenttype"] == "application/json"


def test_timestamps_in_data_are_utc_with_z() -> None:
    event = CloudEvent.of(
        TaskCompleted(task_id=TASK, user_id=USER, completed_at=WHEN, due_at=None), source="/t"
    )
    body = json.loads(event.to_json())
    assert body["data"]["completed_at"] == "2026-11-26T10:00:00.123456Z"
    assert body["data"]["due_at"] is None


def test_optional_attributes_are_omitted_when_unset() -> None:
    event = CloudEvent.of(TaskReopened(task_id=TASK, user_id=USER), source="/t")
    body = json.loads(event.to_json())
    assert "usertz" not in body
    assert "subject" not in body


def test_unknown_types_and_fields_are_tolerated() -> None:
    raw = json.dumps(
        {
            "specversion": "1.0",
            "id": "e1",
            "source": "/elsewhere",
            "type": "tasks.task.archived",
            "time": "2026-11-26T10:00:00Z",
            "data": {"task_id": str(TASK)},
            "futureattr": "x",
        }
    )
    event = CloudEvent.from_json(raw)
    assert event.typed_data() is None
    known = CloudEvent.from_json(
        json.dumps(
            {
                "specversion": "1.0",
                "id": "e2",
                "source": "/momentum/tasks",
                "type": "tasks.task.reopened",
                "time": "2026-11-26T10:00:00Z",
                "data": {"task_id": str(TASK), "user_id": str(USER), "new_field": 1},
            }
        )
    )
    assert known.typed_data() == TaskReopened(task_id=TASK, user_id=USER)


def test_events_carry_no_personal_text() -> None:
    forbidden = {"email", "password", "title", "description", "display_name"}
    for model in EVENT_TYPES.values():
        assert not forbidden & set(model.model_fields), model.event_type
