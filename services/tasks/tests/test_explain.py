"""PostgreSQL plans: each sort and filter of one owner's list is served by an owner index."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from momentum_devtools.testing.databases import DatabaseTemplates
from momentum_shared.db import create_engine, create_session_factory
from momentum_tasks.models import NO_DUE_DATE, Task, TaskTag, TaskTombstone
from momentum_tasks.pagination import Position
from momentum_tasks.repository import _FEED, TaskRepository
from momentum_tasks.schemas import TaskFilters, TaskSort

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
TASKS: sa.Table = Task.__table__  # type: ignore[attr-defined]
TAGS: sa.Table = TaskTag.__table__  # type: ignore[attr-defined]
TOMBSTONES: sa.Table = TaskTombstone.__table__  # type: ignore[attr-defined]
BASE = datetime(2026, 1, 1, tzinfo=UTC)
OWNERS = 20
PER_OWNER = 1000


@pytest.fixture
def postgres_url(database_templates: DatabaseTemplates, tmp_path: Path) -> Iterator[str]:
    with database_templates.database(ALEMBIC_INI, "postgresql", tmp_path) as url:
        yield url


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    base = BASE
    rows: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    for owner_index in range(OWNERS):
        owner = uuid.uuid4()
        for index in range(PER_OWNER):
            task_id = uuid.uuid4()
            due = base + timedelta(days=index) if index % 3 else None
            rows.append(
                {
                    "id": task_id,
                    "owner_id": owner,
                    "title": f"task {owner_index}-{index}",
                    "title_folded": f"task {owner_index}-{index}",
                    "status": "done" if index % 4 == 0 else "open",
                    "priority": ("low", "normal", "high")[index % 3],
                    "due_at": due,
                    "due_sort": due or NO_DUE_DATE,
                    "tags": [f"t{index % 7}"],
                    "created_at": base + timedelta(minutes=index),
                    "updated_at": base + timedelta(minutes=index),
                    "version": 1,
                }
            )
            tags.append({"task_id": task_id, "owner_id": owner, "tag": f"t{index % 7}"})
    async with engine.begin() as connection:
        await connection.execute(sa.insert(TASKS), rows)
        await connection.execute(sa.insert(TAGS), tags)
        await connection.execute(sa.text("ANALYZE"))
    yield engine
    await engine.dispose()


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes.extend(plan_nodes(child))
    return nodes


CASES = [
    (TaskSort.newest_first, TaskFilters(), "ix_tasks_owner_created"),
    (TaskSort.oldest_first, TaskFilters(), "ix_tasks_owner_created"),
    (TaskSort.due_soonest, TaskFilters(), "ix_tasks_owner_due"),
    (TaskSort.due_latest, TaskFilters(), "ix_tasks_owner_due"),
    (TaskSort.newest_first, TaskFilters(status="done"), "ix_tasks_owner_"),
    (TaskSort.newest_first, TaskFilters(priority="high"), "ix_tasks_owner_"),
    (TaskSort.newest_first, TaskFilters(tag="t3"), "ix_task"),
    (TaskSort.due_soonest, TaskFilters(q="task"), "ix_tasks_owner_due"),
    (TaskSort.newest_first, TaskFilters(project_id=uuid.uuid4()), "ix_tasks_owner_project"),
    (TaskSort.newest_first, TaskFilters(project_id="none"), "ix_tasks_owner_"),
]


async def test_list_queries_use_an_owner_index_and_never_sort_the_table(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        owner = (await connection.execute(sa.select(TASKS.c.owner_id).limit(1))).scalar_one()
    for sort, filters, index in CASES:
        # The first page, and a later one whose cursor sits in the middle of the list.
        middle = BASE + (
            timedelta(days=500) if sort.value.endswith("due_at") else timedelta(minutes=500)
        )
        for after in (None, Position(key=middle, id=uuid.uuid4())):
            nodes = await plan(engine, owner, sort, filters, after)
            kinds = [node["Node Type"] for node in nodes]
            used = [node.get("Index Name", "") for node in nodes]
            case = (sort.value, filters, after is not None, kinds, used)
            assert "Seq Scan" not in kinds, case
            assert any(name.startswith(index) for name in used), case
            # The index order is the page order: no sort step, LIMIT ends the scan early.
            # (A tag filter reaches tasks through task_tags and may sort that owner's matches.)
            if not filters.tag:
                assert "Sort" not in kinds, case


async def plan(
    engine: AsyncEngine,
    owner: uuid.UUID,
    sort: TaskSort,
    filters: TaskFilters,
    after: Position | None,
) -> list[dict[str, Any]]:
    async with create_session_factory(engine)() as session:
        query = TaskRepository(session).list_query(
            owner_id=owner, filters=filters, sort=sort, after=after, limit=20
        )
    compiled = query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    async with engine.connect() as connection:
        raw = (await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar_one()
    document = raw if isinstance(raw, list) else json.loads(raw)
    return plan_nodes(document[0]["Plan"])


async def test_a_changes_feed_page_is_an_index_range_scan_of_the_owners_changes(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        owner = (await connection.execute(sa.select(TASKS.c.owner_id).limit(1))).scalar_one()
        # Each owner's tasks numbered in creation order, as the migration numbers them.
        await connection.execute(
            sa.text(
                "UPDATE tasks SET change_seq = ranked.n FROM (SELECT id, row_number() OVER"
                " (PARTITION BY owner_id ORDER BY created_at, id) AS n FROM tasks) AS ranked"
                " WHERE tasks.id = ranked.id"
            )
        )
        owners = (await connection.execute(sa.select(TASKS.c.owner_id).distinct())).scalars()
        await connection.execute(
            sa.insert(TOMBSTONES),
            [
                {
                    "task_id": uuid.uuid4(),
                    "owner_id": other,
                    "change_seq": PER_OWNER + index,
                    "deleted_at": BASE,
                }
                for other in owners
                for index in range(1, 200)
            ],
        )
        await connection.execute(sa.text("ANALYZE"))
    for since in (-1, 500, 1100):
        statement = _FEED.params(owner_id=owner, since=since, limit=101)
        compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
        async with engine.connect() as connection:
            raw = (
                await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}")
            ).scalar_one()
        document = raw if isinstance(raw, list) else json.loads(raw)
        nodes = plan_nodes(document[0]["Plan"])
        kinds = [node["Node Type"] for node in nodes]
        used = {node.get("Index Name", "") for node in nodes}
        assert "Seq Scan" not in kinds, (since, kinds)
        assert {"ix_tasks_owner_change", "ix_task_tombstones_owner_change"} <= used, (since, used)


async def test_a_search_is_an_index_lookup_within_the_owners_tasks(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        owner = (await connection.execute(sa.select(TASKS.c.owner_id).limit(1))).scalar_one()
    for sort, middle in (
        (TaskSort.relevance, -0.05),
        (TaskSort.newest_first, BASE + timedelta(minutes=500)),
        (TaskSort.due_soonest, BASE + timedelta(days=500)),
    ):
        for after in (None, Position(key=middle, id=uuid.uuid4())):
            nodes = await plan(engine, owner, sort, TaskFilters(search="task 3"), after)
            kinds = [node["Node Type"] for node in nodes]
            used = [node.get("Index Name", "") for node in nodes]
            case = (sort.value, after is not None, kinds, used)
            assert "Seq Scan" not in kinds, case
            assert any(name.startswith("ix_tasks_") for name in used), case
