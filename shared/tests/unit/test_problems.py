"""Exceptions mapped to RFC 9457 problem+json: status, body, headers (no app involved)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import Request

from momentum_shared import errors
from momentum_shared.errors import (
    PROBLEM_JSON,
    BadGateway,
    BadRequest,
    Conflict,
    Forbidden,
    GatewayTimeout,
    InsufficientScope,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    ProblemError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnprocessableEntity,
)

STATUSES = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PreconditionFailed: 412,
    PayloadTooLarge: 413,
    UnprocessableEntity: 422,
    BadGateway: 502,
    ServiceUnavailable: 503,
    GatewayTimeout: 504,
}


def body_of(response: Any) -> dict[str, Any]:
    return dict(json.loads(bytes(response.body)))


def request(state: dict[str, Any] | None = None) -> Request:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/somewhere",
        "headers": [],
        "query_string": b"",
        "state": state or {},
    }
    return Request(scope)


@pytest.mark.parametrize(("error", "status"), STATUSES.items(), ids=lambda v: str(v))
def test_each_error_is_its_status_as_problem_json(error: type[ProblemError], status: int) -> None:
    response = error("what went wrong").to_response()
    assert response.status_code == status
    assert response.media_type == PROBLEM_JSON
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = body_of(response)
    assert body == {
        "type": "about:blank",
        "title": error.title,
        "status": status,
        "detail": "what went wrong",
    }


def test_without_detail_the_title_is_the_detail_and_extra_members_are_added() -> None:
    body = body_of(Conflict(extra={"current_version": 3}).to_response())
    assert body["detail"] == "Conflict"
    assert body["current_version"] == 3


@settings(max_examples=100, deadline=None)
# The details are Momentum's own (ASCII) sentences; headers are Latin-1.
@given(detail=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60))
def test_a_401_challenges_with_the_detail_quoted(detail: str) -> None:
    response = Unauthorized(detail).to_response()
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="momentum", error="invalid_token"')
    if detail:
        inner = challenge.split('error_description="', 1)[1][:-1]
        # Every quote inside is escaped, so the header parses as one quoted string.
        unescaped = inner.replace("\\\\", "").replace('\\"', "")
        assert '"' not in unescaped
    assert response.status_code == 401


def test_a_401_without_an_error_code_is_a_bare_challenge() -> None:
    assert Unauthorized(error=None).headers["WWW-Authenticate"] == 'Bearer realm="momentum"'


def test_a_missing_scope_is_a_403_naming_it() -> None:
    error = InsufficientScope("tasks:write")
    assert error.status == 403
    assert 'scope="tasks:write"' in error.headers["WWW-Authenticate"]
    assert "tasks:write" in body_of(error.to_response())["detail"]


@pytest.mark.parametrize(("given_", "header"), [(30, "30"), (0, "1"), (-5, "1")])
def test_a_429_says_when_to_retry_at_least_a_second_ahead(given_: int, header: str) -> None:
    response = TooManyRequests("slow down", retry_after=given_).to_response()
    assert response.status_code == 429
    assert response.headers["retry-after"] == header


def test_a_503_says_when_to_retry() -> None:
    assert ServiceUnavailable().to_response().headers["retry-after"] == "5"
    assert ServiceUnavailable(retry_after=9).headers["Retry-After"] == "9"


async def test_framework_errors_become_problems() -> None:
    not_found = await errors._http_handler(request(), HTTPException(404))
    assert body_of(not_found)["detail"] == "no such resource"
    assert not_found.media_type == PROBLEM_JSON
    allowed = await errors._http_handler(request(), HTTPException(405, headers={"Allow": "GET"}))
    assert allowed.status_code == 405
    assert allowed.headers["allow"] == "GET"

    invalid = RequestValidationError(
        [{"loc": ("body", "title"), "msg": "Field required", "type": "missing", "input": {}}]
    )
    response = await errors._validation_handler(request(), invalid)
    assert response.status_code == 422
    assert body_of(response)["errors"] == [
        {"loc": ["body", "title"], "msg": "Field required", "type": "missing"}
    ]  # the input is not echoed back


async def test_an_unreachable_database_is_a_503(caplog: pytest.LogCaptureFixture) -> None:
    exc = OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))
    with caplog.at_level(logging.WARNING, "momentum.errors"):
        response = await errors._database_unavailable_handler(request(), exc)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "SELECT" not in bytes(response.body).decode()


async def test_an_unexpected_error_is_a_500_that_tells_nothing_but_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, "momentum.errors"):
        response = await errors._unhandled_handler(
            request({"request_id": "r-1"}), RuntimeError("secret internals")
        )
    assert response.status_code == 500
    assert "secret internals" not in bytes(response.body).decode()
    assert response.headers["x-request-id"] == "r-1"
    assert "unhandled error" in caplog.text
