"""Event ids of tasks grow strictly, so one request's events keep the order of its changes."""

from __future__ import annotations

import uuid

from momentum_tasks.publishing import _OrderedIds


def test_event_ids_are_uuid7_and_strictly_increasing_as_text() -> None:
    ids = _OrderedIds()
    issued = [ids.next() for _ in range(5000)]
    assert issued == sorted(issued)
    assert len(set(issued)) == len(issued)
    assert {uuid.UUID(value).version for value in issued} == {7}
    assert {uuid.UUID(value).variant for value in issued} == {uuid.RFC_4122}
