"""Errors that carry their HTTP status, rendered as RFC 9457 problem+json."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from momentum_shared.db import DATABASE_UNREACHABLE, database_unreachable

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("momentum.errors")


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def problem_body(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type_: str = "about:blank",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or HTTPStatus(status).description or HTTPStatus(status).phrase,
    }
    if extra:
        body.update(extra)
    return body


def problem_response(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type_: str = "about:blank",
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ProblemResponse:
    return ProblemResponse(
        problem_body(status, title=title, detail=detail, type_=type_, extra=extra),
        status_code=status,
        headers=dict(headers or {}),
    )


class ProblemError(Exception):
    """Base of every error a client may see; subclasses fix the status."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"
    type_: ClassVar[str] = "about:blank"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers: dict[str, str] = dict(headers or {})
        self.extra: dict[str, Any] = dict(extra or {})

    def to_response(self) -> ProblemResponse:
        return problem_response(
            self.status,
            title=self.title,
            detail=self.detail,
            type_=self.type_,
            headers=self.headers,
            extra=self.extra,
        )


class BadRequest(ProblemError):
    status = 400
    title = "Bad Request"


class Unauthorized(ProblemError):
    """401; ``WWW-Authenticate`` defaults to a bearer challenge (RFC 6750)."""

    status = 401
    title = "Unauthorized"

    def __init__(
        self,
        detail: str | None = None,
        *,
        error: str | None = "invalid_token",
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        challenge = 'Bearer realm="momentum"'
        if error:
            challenge += f', error="{error}"'
            if detail:
                challenge += f', error_description="{_quote(detail)}"'
        merged = {"WWW-Authenticate": challenge, **dict(headers or {})}
        super().__init__(detail, headers=merged, extra=extra)


class Forbidden(ProblemError):
    status = 403
    title = "Forbidden"


class InsufficientScope(Forbidden):
    def __init__(self, scope: str) -> None:
        super().__init__(
            f"this route needs the scope '{scope}'",
            headers={
                "WWW-Authenticate": (
                    f'Bearer realm="momentum", error="insufficient_scope", scope="{scope}"'
                )
            },
            extra={"error": "insufficient_scope", "scope": scope},
        )


class NotFound(ProblemError):
    status = 404
    title = "Not Found"


class Conflict(ProblemError):
    status = 409
    title = "Conflict"


class PreconditionFailed(ProblemError):
    status = 412
    title = "Precondition Failed"


class PayloadTooLarge(ProblemError):
    status = 413
    title = "Payload Too Large"


class UnprocessableEntity(ProblemError):
    status = 422
    title = "Unprocessable Entity"


class TooManyRequests(ProblemError):
    status = 429
    title = "Too Many Requests"

    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after: int,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))}, extra=extra)


class BadGateway(ProblemError):
    status = 502
    title = "Bad Gateway"


class ServiceUnavailable(ProblemError):
    status = 503
    title = "Service Unavailable"

    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after: int = 5,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        merged = {"Retry-After": str(retry_after), **dict(headers or {})}
        super().__init__(detail, headers=merged, extra=extra)


class GatewayTimeout(ProblemError):
    status = 504
    title = "Gateway Timeout"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for err in errors:
        out.append(
            {
                "loc": [str(part) for part in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
        )
    return out


async def _problem_handler(_request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, ProblemError)
    return exc.to_response()


async def _validation_handler(_request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(
        422,
        title="Unprocessable Entity",
        detail="the request did not validate",
        extra={"errors": validation_errors(exc.errors())},
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app serves at the request's path.

    Starlette's 405 lists only the methods of the first route whose path matched, though
    several routes may share a path (``GET`` and ``PATCH /auth/me``).
    """
    app = request.scope.get("app")
    if app is None:  # raised outside an app: the exception's own Allow header stands
        return []
    allowed: list[str] = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in app.router.routes):
            allowed.append(method)
    return allowed


async def _http_handler(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = "no such resource"
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (methods := allowed_methods(request)):
        headers["Allow"] = ", ".join(methods)
    return problem_response(exc.status_code, detail=detail, headers=headers)


async def _database_unavailable_handler(request: Request, exc: Exception) -> ProblemResponse:
    logger.warning(
        "database unavailable", extra={"path": request.url.path, "error": type(exc).__name__}
    )
    return problem_response(
        503, detail="the database cannot be reached", headers={"Retry-After": "5"}
    )


async def _database_error_handler(request: Request, exc: Exception) -> ProblemResponse:
    # Any other DBAPIError: 503 if it found its connection closed (database_unreachable).
    if database_unreachable(exc):
        return await _database_unavailable_handler(request, exc)
    return await _unhandled_handler(request, exc)


async def _unhandled_handler(request: Request, exc: Exception) -> ProblemResponse:
    logger.exception(
        "unhandled error", extra={"path": request.url.path, "error": type(exc).__name__}
    )
    # Starlette answers unhandled errors outside every middleware, so the request-id
    # middleware never sees this response: carry the id here.
    request_id = request.scope.get("state", {}).get("request_id")
    headers = {"X-Request-ID": request_id} if request_id else None
    return problem_response(500, detail="an unexpected error occurred", headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Render every error, including FastAPI's 422 and Starlette's 404/405, as problem+json."""
    app.add_exception_handler(ProblemError, _problem_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    for exc_type in DATABASE_UNREACHABLE:
        app.add_exception_handler(exc_type, _database_unavailable_handler)
    app.add_exception_handler(DBAPIError, _database_error_handler)
    app.add_exception_handler(Exception, _unhandled_handler)
