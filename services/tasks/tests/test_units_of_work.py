"""A request that only reads ends its unit of work without COMMIT; a write still commits
before its response, and a failed write leaves nothing behind."""

from __future__ import annotations

import uuid

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from momentum_tasks.settings import TasksSettings
from momentum_tasks.state import app_state
from services.tasks.tests.conftest import make_settings
from services.tasks.tests.support import Headers, NewTask


@pytest.fixture
def settings(database_url: str) -> TasksSettings:
    # No relay: its own units of work would be counted with the requests'.
    return make_settings(database_url, outbox_relay_enabled=False)


class Commits:
    def __init__(self, app: FastAPI) -> None:
        self.count = 0
        sa.event.listen(app_state(app).engine.sync_engine, "commit", self._on_commit)

    def _on_commit(self, _connection: sa.Connection) -> None:
        self.count += 1


async def test_reads_never_commit(
    app: FastAPI, client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice, title="Read me", tags=["home"])
    commits = Commits(app)
    assert (await client.get(f"/tasks/{task['id']}", headers=alice)).status_code == 200
    assert (await client.get("/tasks", headers=alice)).status_code == 200
    assert (await client.get(f"/tasks/{uuid.uuid4()}", headers=alice)).status_code == 404
    assert commits.count == 0


async def test_writes_commit_before_the_response(
    app: FastAPI, client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    commits = Commits(app)
    task = await new_task(alice, title="Kept")
    assert commits.count == 1
    response = await client.get(f"/tasks/{task['id']}", headers=alice)
    assert response.json()["title"] == "Kept"
    assert commits.count == 1


async def test_a_rejected_write_commits_nothing(
    app: FastAPI, client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice, title="Unchanged")
    commits = Commits(app)
    response = await client.patch(
        f"/tasks/{task['id']}", json={"title": "Changed"}, headers={**alice, "If-Match": '"stale"'}
    )
    assert response.status_code == 412
    assert commits.count == 0
    response = await client.get(f"/tasks/{task['id']}", headers=alice)
    assert response.json()["title"] == "Unchanged"


async def test_reads_open_no_transaction_on_postgresql(
    database_url: str,
    client: httpx.AsyncClient,
    alice: Headers,
    new_task: NewTask,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A read route's statements run alone: no BEGIN, no ROLLBACK round trips around them."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite opens no transaction for a SELECT in the first place")
    import asyncpg

    task = await new_task(alice, title="Read me")
    sent: list[str] = []
    execute = asyncpg.Connection.execute

    async def recording(self: asyncpg.Connection, query: str, *args: object, **kw: object) -> str:
        sent.append(query.split()[0].upper().rstrip(";") if query.split() else "")
        result: str = await execute(self, query, *args, **kw)
        return result

    monkeypatch.setattr(asyncpg.Connection, "execute", recording)
    assert (await client.get(f"/tasks/{task['id']}", headers=alice)).status_code == 200
    assert (await client.get("/tasks", headers=alice)).status_code == 200
    assert (await client.get("/tasks/changes", headers=alice)).status_code == 200
    assert (await client.get("/projects", headers=alice)).status_code == 200
    assert "BEGIN" not in sent, sent
    assert "ROLLBACK" not in sent, sent
    # A search plans its statement for its own words (SET LOCAL): that needs a transaction.
    response = await client.get("/tasks", params={"search": "read"}, headers=alice)
    assert response.status_code == 200
    assert [item["title"] for item in response.json()["items"]] == ["Read me"]
    assert sent.count("BEGIN") == 1, sent
    # The same monitor sees a write's transaction.
    await new_task(alice, title="Written")
    assert sent.count("BEGIN") == 2, sent
