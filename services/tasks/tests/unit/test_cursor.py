"""The cursor codec: a round trip for its own query, a 400 for anything else."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from momentum_shared.errors import BadRequest
from momentum_tasks.pagination import MAX_CURSOR_LENGTH, CursorCodec, Position
from momentum_tasks.schemas import TaskFilters, TaskSort

SECRET = b"k" * 32
CODEC = CursorCodec(SECRET)
OWNER = uuid.UUID("00000000-0000-4000-8000-000000000001")
POSITION = Position(key=datetime(2026, 3, 1, 12, 30, tzinfo=UTC), id=uuid.uuid4())
FILTERS = TaskFilters(status="open", tag="home")

instants = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    ),
)
filters = st.builds(
    TaskFilters,
    status=st.sampled_from([None, "open", "done"]),
    priority=st.sampled_from([None, "low", "normal", "high"]),
    tag=st.sampled_from([None, "home", "work"]),
    q=st.sampled_from([None, "milk", "Grüße"]),
)


def cursor(**overrides: object) -> str:
    values: dict[str, object] = {
        "owner_id": OWNER,
        "sort": TaskSort.newest_first,
        "filters": FILTERS,
        "position": POSITION,
        **overrides,
    }
    return CODEC.encode(**values)  # type: ignore[arg-type]


def decode(value: str, **overrides: object) -> Position:
    values: dict[str, object] = {
        "owner_id": OWNER,
        "sort": TaskSort.newest_first,
        "filters": FILTERS,
        **overrides,
    }
    return CODEC.decode(value, **values)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(
    key=instants,
    row=st.uuids(),
    owner=st.uuids(),
    sort=st.sampled_from([sort for sort in TaskSort if sort is not TaskSort.relevance]),
    query=filters,
)
def test_a_cursor_decodes_to_its_position_for_its_own_query(
    key: datetime, row: uuid.UUID, owner: uuid.UUID, sort: TaskSort, query: TaskFilters
) -> None:
    encoded = CODEC.encode(
        owner_id=owner, sort=sort, filters=query, position=Position(key=key, id=row)
    )
    assert len(encoded) <= MAX_CURSOR_LENGTH
    assert "=" not in encoded  # URL-safe, unpadded
    decoded = CODEC.decode(encoded, owner_id=owner, sort=sort, filters=query)
    assert decoded == Position(key=key.astimezone(UTC), id=row)
    assert isinstance(decoded.key, datetime)
    assert decoded.key.tzinfo == UTC


@given(
    score=st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.floats(allow_nan=False, allow_infinity=False),
    row=st.uuids(),
    search=st.sampled_from(["plan", "quarterly rep", "Grüße café"]),
)
def test_a_relevance_cursor_keeps_the_score_to_the_last_bit(
    score: float, row: uuid.UUID, search: str
) -> None:
    owner, query = uuid.uuid4(), TaskFilters(search=search)
    position = Position(key=score, id=row)
    encoded = CODEC.encode(
        owner_id=owner, sort=TaskSort.relevance, filters=query, position=position
    )
    decoded = CODEC.decode(encoded, owner_id=owner, sort=TaskSort.relevance, filters=query)
    assert decoded == position
    assert isinstance(decoded.key, float)
    other = TaskFilters(search=search + " x")
    with pytest.raises(BadRequest):
        CODEC.decode(encoded, owner_id=owner, sort=TaskSort.relevance, filters=other)
    with pytest.raises(BadRequest):
        CODEC.decode(encoded, owner_id=owner, sort=TaskSort.newest_first, filters=query)


@settings(max_examples=150, deadline=None)
@given(index=st.integers(min_value=0), replacement=st.sampled_from("AQgw-_x0"))
def test_any_changed_character_is_refused(index: int, replacement: str) -> None:
    original = cursor()
    index %= len(original)
    if original[index] == replacement:
        replacement = "B" if replacement != "B" else "C"
    tampered = original[:index] + replacement + original[index + 1 :]
    try:
        position = decode(tampered)
    except BadRequest:
        return
    # base64 may ignore the low bits of a last character: then the bytes are unchanged.
    assert position == decode(original)


def test_a_re_signed_body_needs_the_secret() -> None:
    body_text, _, signature = cursor().partition(".")
    body = json.loads(base64.urlsafe_b64decode(body_text + "=" * (-len(body_text) % 4)))
    body["o"] = str(uuid.uuid4())
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    with pytest.raises(BadRequest):
        decode(f"{forged}.{signature}", owner_id=uuid.UUID(body["o"]))


@pytest.mark.parametrize(
    "query",
    [
        {"owner_id": uuid.uuid4()},
        {"sort": TaskSort.oldest_first},
        {"filters": TaskFilters(status="done", tag="home")},
        {"filters": TaskFilters()},
    ],
    ids=["another-owner", "another-sort", "other-filters", "no-filters"],
)
def test_a_cursor_for_another_query_is_a_400(query: dict[str, object]) -> None:
    with pytest.raises(BadRequest, match="start again without a cursor"):
        decode(cursor(), **query)


@pytest.mark.parametrize(
    "value",
    ["", ".", "not-a-cursor", "a.b.c", "%%%.%%%", "x" * (MAX_CURSOR_LENGTH + 1)],
)
def test_malformed_cursors_are_a_400(value: str) -> None:
    with pytest.raises(BadRequest):
        decode(value)


def test_another_secret_refuses_the_cursor() -> None:
    with pytest.raises(BadRequest):
        CursorCodec(b"other" * 8).decode(
            cursor(), owner_id=OWNER, sort=TaskSort.newest_first, filters=FILTERS
        )


def test_equal_filters_built_differently_share_cursors() -> None:
    encoded = cursor(filters=TaskFilters(tag="home", status="open"))
    assert decode(encoded, filters=TaskFilters(status="open", tag="home")) == POSITION
