"""The README's "Try it" walk, through the generated Python client and the gateway.

Every call goes through ``momentum_client`` (``clients/python``) against the running stack,
so a document that describes the API wrongly shows up here as a failure to call or decode.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any, TypeVar

import httpx
import pytest

from momentum_client import AuthenticatedClient, Client
from momentum_client.api.analytics import analytics_streaks as get_streaks
from momentum_client.api.analytics import analytics_weekly_report as get_weekly_report
from momentum_client.api.tasks import tasks_complete as complete_task
from momentum_client.api.tasks import tasks_create as create_task
from momentum_client.api.tasks import tasks_delete as delete_task
from momentum_client.api.tasks import tasks_get as get_task
from momentum_client.api.tasks import tasks_list as list_tasks
from momentum_client.api.tasks import tasks_update as update_task
from momentum_client.api.tokens import auth_token as token
from momentum_client.api.users import auth_me as read_me
from momentum_client.api.users import auth_register as register
from momentum_client.models import (
    AuthTokenForm,
    StreaksPublic,
    TaskCreate,
    TaskPage,
    TaskPublic,
    TaskPublicStatus,
    TaskUpdate,
    TokenResponse,
    UserCreate,
    UserPublic,
    WeeklyReport,
)
from momentum_devtools.pyclient import DOCUMENT
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
T = TypeVar("T")
TIMEOUT = httpx.Timeout(10.0)


@pytest.fixture(scope="module")
def anonymous(stack: Stack) -> Iterator[Client]:
    with Client(base_url=stack.url(), timeout=TIMEOUT, raise_on_unexpected_status=True) as client:
        yield client


def eventually(probe: Callable[[], T | None], *, timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail("the condition did not hold in time")
        time.sleep(0.2)


def problem(content: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(content)
    assert body["type"] == "about:blank"
    return body


def signed_in(stack: Stack, anonymous: Client) -> tuple[UserPublic, AuthenticatedClient]:
    email = f"ada-{uuid.uuid4().hex[:10]}@example.com"
    created = register.sync_detailed(
        client=anonymous,
        body=UserCreate(email=email, password=PASSWORD, timezone="Europe/Berlin"),
    )
    assert created.status_code == HTTPStatus.CREATED, created.content
    assert isinstance(created.parsed, UserPublic)
    assert created.parsed.email == email
    assert created.parsed.timezone == "Europe/Berlin"

    issued = token.sync_detailed(
        client=anonymous,
        body=AuthTokenForm(grant_type="password", username=email, password=PASSWORD),
    )
    assert issued.status_code == HTTPStatus.OK, issued.content
    assert isinstance(issued.parsed, TokenResponse)
    assert issued.parsed.token_type == "Bearer"
    authed = AuthenticatedClient(
        base_url=stack.url(),
        token=issued.parsed.access_token,
        timeout=TIMEOUT,
        raise_on_unexpected_status=True,
    )
    return created.parsed, authed


def test_the_gateway_serves_the_document_the_client_was_generated_from(
    anonymous: Client,
) -> None:
    served = anonymous.get_httpx_client().get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(DOCUMENT.read_text())


def test_the_readme_walk_through_the_generated_client(stack: Stack, anonymous: Client) -> None:
    user, authed = signed_in(stack, anonymous)
    with authed:
        me = read_me.sync(client=authed)
        assert isinstance(me, UserPublic)
        assert me.id == user.id

        body = TaskCreate(title="Write the report")
        created = create_task.sync_detailed(client=authed, body=body)
        assert created.status_code == HTTPStatus.CREATED, created.content
        task = created.parsed
        assert isinstance(task, TaskPublic)
        assert (task.title, task.status, task.version) == ("Write the report", "open", 1)
        assert created.headers["etag"] == '"1"'
        assert created.headers["location"] == f"/tasks/{task.id}"

        page = list_tasks.sync(client=authed)
        assert isinstance(page, TaskPage)
        assert [item.id for item in page.items] == [task.id]
        assert page.next_cursor is None

        changed = update_task.sync_detailed(
            task.id, client=authed, body=TaskUpdate(description="two pages"), if_match='"1"'
        )
        assert changed.status_code == HTTPStatus.OK, changed.content
        assert isinstance(changed.parsed, TaskPublic)
        assert changed.parsed.version == 2
        assert changed.headers["etag"] == '"2"'

        # An If-Match from before the change is refused, and nothing changes.
        stale = complete_task.sync_detailed(task.id, client=authed, if_match='"1"')
        assert stale.status_code == HTTPStatus.PRECONDITION_FAILED
        assert stale.headers["etag"] == '"2"'
        assert stale.headers["content-type"].startswith("application/problem+json")
        assert problem(stale.content)["status"] == 412
        still_open = get_task.sync(task.id, client=authed)
        assert isinstance(still_open, TaskPublic)
        assert (still_open.status, still_open.version) == ("open", 2)

        done = complete_task.sync_detailed(task.id, client=authed, if_match='"2"')
        assert done.status_code == HTTPStatus.OK, done.content
        assert isinstance(done.parsed, TaskPublic)
        assert done.parsed.status == TaskPublicStatus.DONE
        assert done.parsed.completed_at is not None

        def login_and_completion_counted() -> StreaksPublic | None:
            streaks = get_streaks.sync(client=authed)
            assert isinstance(streaks, StreaksPublic)
            counted = streaks.completion.current == 1 and streaks.login.current == 1
            return streaks if counted else None

        streaks = eventually(login_and_completion_counted)
        assert streaks.user_id == user.id
        assert streaks.timezone == "Europe/Berlin"
        assert streaks.completion.last_active_date == streaks.today

        report = get_weekly_report.sync(client=authed)
        assert isinstance(report, WeeklyReport)
        assert report.user_id == user.id
        assert len(report.days) == 7
        assert report.start_date <= streaks.today <= report.end_date
        totals = report.totals
        assert (totals.logins, totals.tasks_created, totals.tasks_completed) == (1, 1, 1)
        assert totals.active_days == 1

        removed = delete_task.sync_detailed(task.id, client=authed)
        assert removed.status_code == HTTPStatus.NO_CONTENT
        gone = get_task.sync_detailed(task.id, client=authed)
        assert gone.status_code == HTTPStatus.NOT_FOUND
        assert problem(gone.content)["status"] == 404


def test_wrong_credentials_are_refused_through_the_client(anonymous: Client) -> None:
    refused = token.sync_detailed(
        client=anonymous,
        body=AuthTokenForm(grant_type="password", username="nobody@example.com", password=PASSWORD),
    )
    assert refused.status_code == HTTPStatus.UNAUTHORIZED
    assert problem(refused.content)["error"] == "invalid_grant"


def decoded_problem(parsed: Any) -> dict[str, Any]:
    """The client's model of a problem, back as JSON (it keeps members it does not name)."""
    assert parsed is not None, "the client decoded no body for this status"
    assert type(parsed).__module__.startswith("momentum_client.models.")
    body: dict[str, Any] = parsed.to_dict()
    return body


def test_a_validation_error_decodes_into_the_clients_problem_model(
    stack: Stack, anonymous: Client
) -> None:
    _, authed = signed_in(stack, anonymous)
    with authed:
        refused = create_task.sync_detailed(client=authed, body=TaskCreate(title=""))
        listed = list_tasks.sync(client=authed)
    assert refused.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert refused.headers["content-type"].startswith("application/problem+json")
    body = decoded_problem(refused.parsed)
    assert (body["type"], body["status"]) == ("about:blank", 422)
    assert [error["loc"] for error in body["errors"]] == [["body", "title"]]
    assert isinstance(listed, TaskPage)  # nothing was created
    assert listed.items == []


def test_a_stale_if_match_decodes_into_the_clients_problem_model(
    stack: Stack, anonymous: Client
) -> None:
    _, authed = signed_in(stack, anonymous)
    with authed:
        created = create_task.sync(client=authed, body=TaskCreate(title="Write the report"))
        assert isinstance(created, TaskPublic)
        stale = complete_task.sync_detailed(created.id, client=authed, if_match='"0"')
    assert stale.status_code == HTTPStatus.PRECONDITION_FAILED
    body = decoded_problem(stale.parsed)
    assert (body["type"], body["status"]) == ("about:blank", 412)
