"""GET /tasks?search=: whole words with stemming, the last word as a prefix, relevance order,
keyset pages, and only ever the caller's tasks (on SQLite's FTS5 and PostgreSQL alike)."""

from __future__ import annotations

import httpx
import pytest

from services.tasks.tests.support import Headers, NewTask, page_through

SORTS = ["-created_at", "created_at", "due_at", "-due_at", "relevance"]


async def titles(
    client: httpx.AsyncClient, headers: Headers, search: str, **params: str
) -> set[str]:
    items = await page_through(client, headers, {"search": search, **params})
    return {item["title"] for item in items}


async def test_words_are_found_by_their_stem_in_title_and_description(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    await new_task(alice, title="Run the backups")
    await new_task(alice, title="Morning routine", description="She runs every day")
    await new_task(alice, title="Buy milk")
    assert await titles(client, alice, "running") == {"Run the backups", "Morning routine"}
    assert await titles(client, alice, "RUNS") == {"Run the backups", "Morning routine"}
    assert await titles(client, alice, "every") == {"Morning routine"}
    assert await titles(client, alice, "bread") == set()


async def test_every_word_must_match_and_the_last_is_also_a_prefix(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    await new_task(alice, title="Planning the offsite", description="book a venue")
    await new_task(alice, title="Plant the tulips")
    await new_task(alice, title="Book flights")
    assert await titles(client, alice, "plan") == {"Planning the offsite", "Plant the tulips"}
    assert await titles(client, alice, "offsite plan") == {"Planning the offsite"}
    assert await titles(client, alice, "book ven") == {"Planning the offsite"}
    # Only the last word is a prefix: "ven" alone in first place must be a whole word.
    assert await titles(client, alice, "ven book") == set()
    assert await titles(client, alice, "the book") == {"Planning the offsite", "Book flights"}


async def test_another_users_matching_tasks_are_never_returned(
    client: httpx.AsyncClient, alice: Headers, bob: Headers, new_task: NewTask
) -> None:
    mine = await new_task(alice, title="Quarterly report")
    await new_task(bob, title="Quarterly report")
    await new_task(bob, title="Quarterly review", description="report numbers")
    for sort in SORTS:
        items = await page_through(client, alice, {"search": "report", "sort": sort})
        assert [item["id"] for item in items] == [mine["id"]]


REPORT, NOTHING = {"Quarterly report"}, set[str]()


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ('"report', REPORT),
        ("report*", REPORT),
        ("rep:*", REPORT),  # the last word is a prefix anyway
        ("report & !milk", NOTHING),  # both words must match: no task has them both
        ("report | milk", NOTHING),
        ("!report", REPORT),
        ("(report", REPORT),
        ("report)", REPORT),
        ("NEAR(report milk)", NOTHING),
        ("report AND milk", NOTHING),  # "and" is a common word, dropped
        ("report OR milk", NOTHING),
        ("NOT milk report", NOTHING),
        ("title:report", NOTHING),  # "title" is a word to find, not a column
        ("'report'", REPORT),
        ("report\\", REPORT),
        ("report <-> milk", NOTHING),
        ("{title} : report", NOTHING),
        ("^report", REPORT),
        ("report +", REPORT),
        ("quarterly NEAR", NOTHING),
        ("quarterly:A", REPORT),  # "a" is a common word, dropped
        ("quarterly:B", NOTHING),
    ],
)
async def test_query_syntax_in_a_search_is_only_text(
    client: httpx.AsyncClient,
    alice: Headers,
    new_task: NewTask,
    search: str,
    expected: set[str],
) -> None:
    await new_task(alice, title="Quarterly report")
    await new_task(alice, title="Buy milk")
    for sort in ("-created_at", "relevance"):
        response = await client.get(
            "/tasks", params={"search": search, "sort": sort}, headers=alice
        )
        assert response.status_code == 200, response.text
        assert {item["title"] for item in response.json()["items"]} == expected


@pytest.mark.parametrize("search", ["***", '" "', "&|!():", "the and of", "_", "--"])
async def test_a_search_without_words_is_422(
    client: httpx.AsyncClient, alice: Headers, search: str
) -> None:
    response = await client.get("/tasks", params={"search": search}, headers=alice)
    assert response.status_code == 422
    body = response.json()
    assert "no words" in body["detail"]
    assert body["errors"][0]["loc"] == ["query", "search"]


async def test_an_empty_or_too_long_search_is_422(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    for search in ("", "a" * 201):
        response = await client.get("/tasks", params={"search": search}, headers=alice)
        assert response.status_code == 422


async def test_relevance_without_search_is_422_naming_sort(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    response = await client.get("/tasks", params={"sort": "relevance"}, headers=alice)
    assert response.status_code == 422
    body = response.json()
    assert "sort" in body["detail"]
    assert body["errors"][0]["loc"] == ["query", "sort"]


async def test_relevance_puts_more_mentions_first_and_breaks_ties_by_id(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    once = await new_task(alice, title="Budget review", description="check the numbers")
    twice = await new_task(alice, title="Budget review", description="budget the numbers")
    tied = sorted(
        [(await new_task(alice, title="Budget draft"))["id"] for _ in range(3)],
    )
    items = await page_through(client, alice, {"search": "budget", "sort": "relevance"})
    ids = [item["id"] for item in items]
    assert ids.index(twice["id"]) < ids.index(once["id"])
    positions = [ids.index(task_id) for task_id in tied]
    assert positions == sorted(positions)  # equal scores: ascending id


async def test_other_filters_combine_with_search(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    project = (await client.post("/projects", json={"name": "Home"}, headers=alice)).json()
    await new_task(alice, title="Paint fence", priority="high", tags=["home"])
    await new_task(
        alice, title="Paint door", due_at="2026-12-10T10:00:00Z", project_id=project["id"]
    )
    done = await new_task(alice, title="Painting class", due_at="2026-12-20T10:00:00Z")
    await client.post(f"/tasks/{done['id']}/complete", headers=alice)
    await new_task(alice, title="Wash car", priority="high")
    paint = "paint"
    assert await titles(client, alice, paint, priority="high") == {"Paint fence"}
    assert await titles(client, alice, paint, tag="home") == {"Paint fence"}
    assert await titles(client, alice, paint, status="done") == {"Painting class"}
    assert await titles(client, alice, paint, status="open") == {"Paint fence", "Paint door"}
    assert await titles(client, alice, paint, project_id=project["id"]) == {"Paint door"}
    assert await titles(client, alice, paint, project_id="none") == {
        "Paint fence",
        "Painting class",
    }
    assert await titles(client, alice, paint, due_before="2026-12-15T00:00:00Z") == {"Paint door"}
    assert await titles(client, alice, paint, due_after="2026-12-15T00:00:00Z") == {
        "Painting class"
    }
    assert await titles(client, alice, paint, q="fen") == {"Paint fence"}
    assert await titles(client, alice, "wash", priority="high", sort="relevance") == {"Wash car"}


@pytest.mark.parametrize("sort", SORTS)
async def test_pages_of_a_search_hold_every_match_once(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask, sort: str
) -> None:
    expected = set()
    for index in range(13):
        # Several mentions for some, one for others: many equal scores across page ends.
        description = " ".join(["garden"] * (index % 3)) or None
        task = await new_task(
            alice,
            title=f"Garden task {index}",
            description=description,
            due_at=None if index % 4 == 0 else f"2026-12-{index + 1:02d}T09:00:00Z",
        )
        expected.add(task["id"])
        await new_task(alice, title=f"Kitchen task {index}")
    items = await page_through(client, alice, {"search": "garden", "sort": sort, "limit": "4"})
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    assert set(ids) == expected
    whole = (
        await client.get(
            "/tasks", params={"search": "garden", "sort": sort, "limit": "100"}, headers=alice
        )
    ).json()
    assert [item["id"] for item in whole["items"]] == ids


async def test_a_relevance_cursor_is_refused_for_another_search(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    for _ in range(3):
        await new_task(alice, title="Garden chores")
    first = await client.get(
        "/tasks", params={"search": "garden", "sort": "relevance", "limit": "1"}, headers=alice
    )
    cursor = first.json()["next_cursor"]
    assert cursor is not None
    for params in (
        {"search": "chores", "sort": "relevance"},
        {"search": "garden", "sort": "-created_at"},
        {"sort": "-created_at"},
    ):
        response = await client.get("/tasks", params={**params, "cursor": cursor}, headers=alice)
        assert response.status_code == 400


async def test_a_changed_task_is_found_by_its_new_words_only(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice, title="Call the plumber", description="about the sink")
    response = await client.patch(
        f"/tasks/{task['id']}",
        json={"title": "Email the landlord", "description": None},
        headers=alice,
    )
    assert response.status_code == 200
    assert await titles(client, alice, "plumber") == set()
    assert await titles(client, alice, "sink") == set()
    assert await titles(client, alice, "landlord") == {"Email the landlord"}
    response = await client.patch(
        f"/tasks/{task['id']}", json={"description": "the heating broke"}, headers=alice
    )
    assert response.status_code == 200
    assert await titles(client, alice, "heat") == {"Email the landlord"}
    # A change of other fields keeps the task findable.
    await client.patch(f"/tasks/{task['id']}", json={"priority": "high"}, headers=alice)
    await client.post(f"/tasks/{task['id']}/complete", headers=alice)
    assert await titles(client, alice, "landlord heating") == {"Email the landlord"}


async def test_a_deleted_task_is_not_found(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice, title="Renew passport")
    project = (await client.post("/projects", json={"name": "Trip"}, headers=alice)).json()
    await new_task(alice, title="Renew visa", project_id=project["id"])
    await new_task(alice, title="Renew insurance")
    assert (await client.delete(f"/tasks/{task['id']}", headers=alice)).status_code == 204
    assert (await client.delete(f"/projects/{project['id']}", headers=alice)).status_code == 204
    assert await titles(client, alice, "renew") == {"Renew insurance"}
    assert await titles(client, alice, "renew", sort="relevance") == {"Renew insurance"}


async def test_batch_changes_are_searchable(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    old = await new_task(alice, title="Sweep the yard")
    response = await client.post(
        "/tasks/batch",
        json={
            "operations": [
                {"op": "create", "data": {"title": "Rake the leaves"}},
                {"op": "update", "id": old["id"], "data": {"title": "Mow the lawn"}},
            ]
        },
        headers=alice,
    )
    assert response.status_code == 200, response.text
    assert await titles(client, alice, "leaves") == {"Rake the leaves"}
    assert await titles(client, alice, "mowing") == {"Mow the lawn"}
    assert await titles(client, alice, "sweep") == set()
