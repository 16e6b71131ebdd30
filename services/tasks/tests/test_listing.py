"""GET /tasks: filters, sorts, keyset pages, opaque cursors, and the exactly-once property."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.issuer import TestIssuer
from momentum_shared.db import UnitOfWork
from momentum_tasks.models import NO_DUE_DATE, Task, TaskTag
from momentum_tasks.state import app_state
from services.tasks.tests.support import Headers, NewTask, page_through

BASE = datetime(2026, 11, 1, tzinfo=UTC)
SORTS = ["-created_at", "created_at", "due_at", "-due_at"]


async def test_default_sort_is_newest_first_with_default_limit(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    created = [await new_task(alice, title=f"t{i}") for i in range(22)]
    first = await client.get("/tasks", headers=alice)
    body = first.json()
    assert len(body["items"]) == 20
    assert body["next_cursor"] is not None
    ids = [item["id"] for item in await page_through(client, alice, {})]
    assert ids == [task["id"] for task in reversed(created)]


async def test_last_page_has_a_null_cursor(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    for _ in range(2):
        await new_task(alice)
    body = (await client.get("/tasks", params={"limit": "2"}, headers=alice)).json()
    assert len(body["items"]) == 2
    assert body["next_cursor"] is None


async def test_filters(client: httpx.AsyncClient, alice: Headers, new_task: NewTask) -> None:
    soon = await new_task(
        alice, title="Buy MILK", tags=["home"], due_at="2026-12-01T10:00:00Z", priority="high"
    )
    later = await new_task(
        alice, title="Call the bank", tags=["money", "home"], due_at="2026-12-20T10:00:00Z"
    )
    never = await new_task(alice, title="Read 100% of the book_club list", priority="low")
    await client.post(f"/tasks/{later['id']}/complete", headers=alice)

    async def ids(**params: str) -> set[str]:
        return {item["id"] for item in await page_through(client, alice, params)}

    assert await ids(status="done") == {later["id"]}
    assert await ids(status="open") == {soon["id"], never["id"]}
    assert await ids(priority="high") == {soon["id"]}
    assert await ids(tag="home") == {soon["id"], later["id"]}
    assert await ids(tag="money") == {later["id"]}
    assert await ids(tag="Home") == set()
    assert await ids(q="milk") == {soon["id"]}
    assert await ids(q="BANK") == {later["id"]}
    assert await ids(q="100%") == {never["id"]}
    assert await ids(q="k_c") == {never["id"]}
    assert await ids(q="%") == {never["id"]}
    assert await ids(due_before="2026-12-10T00:00:00Z") == {soon["id"]}
    assert await ids(due_after="2026-12-10T00:00:00+00:00") == {later["id"]}
    assert await ids(due_after="2026-11-01T00:00:00Z", tag="home", status="open") == {soon["id"]}


async def test_due_sorts_put_tasks_without_a_due_date_at_the_far_end(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    no_due = await new_task(alice, title="someday")
    late = await new_task(alice, title="late", due_at="2027-01-01T00:00:00Z")
    early = await new_task(alice, title="early", due_at="2026-12-01T00:00:00Z")
    ascending = [t["id"] for t in await page_through(client, alice, {"sort": "due_at"})]
    descending = [t["id"] for t in await page_through(client, alice, {"sort": "-due_at"})]
    assert ascending == [early["id"], late["id"], no_due["id"]]
    assert descending == list(reversed(ascending))


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"sort": "title"},
        {"status": "archived"},
        {"priority": "urgent"},
        {"due_before": "yesterday"},
        {"due_after": "2026-12-01T00:00:00"},
        {"due_before": "9999-12-31T23:00:00-05:00"},
        {"due_before": "1764000000"},
        {"due_after": "-1"},
        {"q": "nul\u0000"},
        {"tag": "\u0000"},
        {"tag": "t" * 33},
    ],
)
async def test_bad_query_parameters_are_422(
    client: httpx.AsyncClient, alice: Headers, params: dict[str, str]
) -> None:
    response = await client.get("/tasks", params=params, headers=alice)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


def _tamper(cursor: str) -> list[str]:
    body, _, signature = cursor.partition(".")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    forged = raw.replace(b'"v":1', b'"v":1,"x":0')
    forged_body = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    return [
        f"{forged_body}.{signature}",
        cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB"),
        "garbage",
        "",
        ".",
        "a.b.c",
        "%%%",
        "eyJ2IjoxfQ.",
        cursor + cursor,
        "x" * 1000,
        "x" * 5000,  # longer than any cursor the service issues: still a bad cursor
    ]


async def test_tampered_cursors_are_400_never_500(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    for _ in range(3):
        await new_task(alice)
    cursor = (await client.get("/tasks", params={"limit": "1"}, headers=alice)).json()[
        "next_cursor"
    ]
    for bad in _tamper(cursor):
        response = await client.get("/tasks", params={"limit": "1", "cursor": bad}, headers=alice)
        assert response.status_code == 400, (bad, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_cursor_only_continues_the_query_it_came_from(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    for _ in range(3):
        await new_task(alice, tags=["a"])
    cursor = (await client.get("/tasks", params={"limit": "1"}, headers=alice)).json()[
        "next_cursor"
    ]
    for params in [{"sort": "created_at"}, {"tag": "a"}, {"status": "open"}]:
        response = await client.get(
            "/tasks", params={**params, "limit": "1", "cursor": cursor}, headers=alice
        )
        assert response.status_code == 400, params
    # A different page size is the same query: allowed.
    same = await client.get("/tasks", params={"limit": "5", "cursor": cursor}, headers=alice)
    assert same.status_code == 200


# --- the property: any filter and sort, paged at any size, yields each match exactly once ---

TITLES = ["alpha", "Beta", "gamma ray", "ALPHA beta", "delta"]
TAGS = ["home", "work", "x"]
DUE_CHOICES = [None, BASE + timedelta(days=1), BASE + timedelta(days=2), BASE + timedelta(days=5)]


@st.composite
def task_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=0, max_value=25))
    rows = []
    for index in range(count):
        # Few distinct timestamps: ties are the hard case for a keyset cursor.
        created = BASE + timedelta(seconds=draw(st.integers(0, 4)))
        rows.append(
            {
                "index": index,
                "title": draw(st.sampled_from(TITLES)),
                "status": draw(st.sampled_from(["open", "done"])),
                "priority": draw(st.sampled_from(["low", "normal", "high"])),
                "tags": draw(st.lists(st.sampled_from(TAGS), max_size=3, unique=True)),
                "due_at": draw(st.sampled_from(DUE_CHOICES)),
                "created_at": created,
            }
        )
    return rows


query_params = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["open", "done"]),
        "priority": st.sampled_from(["low", "normal", "high"]),
        "tag": st.sampled_from(TAGS),
        "q": st.sampled_from(["alpha", "BETA", "a", "ray", "zzz"]),
        "due_before": st.sampled_from(DUE_CHOICES[1:]),
        "due_after": st.sampled_from(DUE_CHOICES[1:]),
    },
)


def matches(row: dict[str, Any], params: dict[str, Any]) -> bool:
    if "status" in params and row["status"] != params["status"]:
        return False
    if "priority" in params and row["priority"] != params["priority"]:
        return False
    if "tag" in params and params["tag"] not in row["tags"]:
        return False
    if "q" in params and params["q"].lower() not in row["title"].lower():
        return False
    if "due_before" in params and not (row["due_at"] and row["due_at"] < params["due_before"]):
        return False
    return not (
        "due_after" in params and not (row["due_at"] and row["due_at"] > params["due_after"])
    )


def expected_order(rows: list[dict[str, Any]], sort: str) -> list[str]:
    def key(row: dict[str, Any]) -> tuple[datetime, uuid.UUID]:
        value = row["created_at"] if sort.endswith("created_at") else row["due_at"] or NO_DUE_DATE
        return (value, row["id"])

    return [str(row["id"]) for row in sorted(rows, key=key, reverse=sort.startswith("-"))]


async def _store(app: FastAPI, owner: uuid.UUID, rows: list[dict[str, Any]]) -> None:
    async with UnitOfWork(app_state(app).session_factory) as uow:
        for row in rows:
            row["id"] = uuid.uuid4()
            task = Task(
                id=row["id"],
                owner_id=owner,
                title=row["title"],
                title_folded=row["title"].lower(),
                status=row["status"],
                priority=row["priority"],
                due_at=row["due_at"],
                due_sort=row["due_at"] or NO_DUE_DATE,
                tags=row["tags"],
                created_at=row["created_at"],
                updated_at=row["created_at"],
                completed_at=row["created_at"] if row["status"] == "done" else None,
            )
            uow.session.add(task)
            for tag in row["tags"]:
                uow.session.add(TaskTag(task_id=row["id"], owner_id=owner, tag=tag))


def _wire(params: dict[str, Any]) -> dict[str, str]:
    return {
        name: value.isoformat() if isinstance(value, datetime) else str(value)
        for name, value in params.items()
    }


def test_paging_returns_every_match_exactly_once(app: FastAPI, issuer: TestIssuer) -> None:
    # Hypothesis drives a synchronous test; one event loop (a Runner) hosts the app for all
    # examples, so shrinking works and the app starts once.
    with asyncio.Runner() as runner:
        lifespan = running_app(app)
        client = runner.run(lifespan.__aenter__())
        try:

            @settings(
                max_examples=30,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            )
            @given(
                rows=task_rows(),
                others=task_rows(),
                params=query_params,
                sort=st.sampled_from(SORTS),
                limit=st.integers(min_value=1, max_value=7),
            )
            def check(
                rows: list[dict[str, Any]],
                others: list[dict[str, Any]],
                params: dict[str, Any],
                sort: str,
                limit: int,
            ) -> None:
                runner.run(paging_matches(app, client, issuer, rows, others, params, sort, limit))

            check()
        finally:
            runner.run(lifespan.__aexit__(None, None, None))


async def paging_matches(
    app: FastAPI,
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    rows: list[dict[str, Any]],
    others: list[dict[str, Any]],
    params: dict[str, Any],
    sort: str,
    limit: int,
) -> None:
    # Fresh owners per example: earlier examples' rows belong to someone else.
    owner, stranger = uuid.uuid4(), uuid.uuid4()
    await _store(app, owner, rows)
    await _store(app, stranger, others)
    got = await page_through(
        client, issuer.bearer(owner), {**_wire(params), "sort": sort, "limit": str(limit)}
    )
    ids = [item["id"] for item in got]
    assert len(ids) == len(set(ids)), "a task appeared twice"
    assert ids == expected_order([row for row in rows if matches(row, params)], sort)
