"""Completions of recurring tasks (docs/spec/events.md §3) decode like any completion."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from momentum_analytics.decoding import decode
from momentum_shared.events import CloudEvent, TaskCompleted

USER = uuid.UUID("5b0e1c2a-3d4f-4a5b-8c6d-7e8f9a0b1c2d")
TASK = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")


def completion(due_at: datetime, completed_at: datetime, *, recurring: bool = False) -> bytes:
    event = CloudEvent.of(
        TaskCompleted(
            task_id=TASK,
            user_id=USER,
            completed_at=completed_at,
            due_at=due_at,
            recurring=recurring,
        ),
        source="/momentum/tasks",
        subject=str(USER),
        usertz="Europe/Berlin",
        time=completed_at,
    )
    return event.to_json()


def test_each_occurrence_of_a_recurring_task_is_a_completion_with_its_own_due_date() -> None:
    monday = datetime(2026, 12, 7, 8, tzinfo=UTC)
    tuesday = datetime(2026, 12, 8, 8, tzinfo=UTC)
    first = decode(completion(monday, datetime(2026, 12, 7, 7, 30, tzinfo=UTC), recurring=True))
    second = decode(completion(tuesday, datetime(2026, 12, 8, 9, tzinfo=UTC), recurring=True))
    assert first is not None
    assert second is not None
    assert (first.kind, first.task_id, first.due_at) == ("completed", TASK, monday)
    assert (second.kind, second.task_id, second.due_at) == ("completed", TASK, tuesday)


def test_a_completion_written_before_recurrence_existed_reads_as_one_off() -> None:
    payload = completion(datetime(2026, 12, 7, 8, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC))
    old = CloudEvent.from_json(payload)
    data = {name: value for name, value in old.data.items() if name != "recurring"}
    written_before = old.model_copy(update={"data": data})
    assert decode(written_before.to_json()) is not None
    typed = written_before.typed_data()
    assert isinstance(typed, TaskCompleted)
    assert typed.recurring is False
