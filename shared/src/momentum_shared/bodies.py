"""Request bodies: bounded while they stream in, and not read at all before authentication.

:class:`BodyLimitMiddleware` (installed by ``build_app``) counts the body as the app receives
it, chunked or not, and answers 413 the moment the limit is passed, without reading the rest.
:class:`BearerFirstRoute` makes a route that needs a bearer token verify it before FastAPI
reads and parses the body, so an anonymous upload gets its 401 unread.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from momentum_shared.errors import PROBLEM_JSON, problem_body
from momentum_shared.security.dependencies import CLAIMS_SCOPE_KEY, current_claims
from momentum_shared.state import SharedState

_DISCONNECT: Message = {"type": "http.disconnect"}
# For an app without settings (the limit of ``MomentumSettings.max_body_bytes``).
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def _too_large(limit: int) -> tuple[Message, Message]:
    body = json.dumps(problem_body(413, detail=f"the body may be at most {limit} bytes")).encode()
    start: Message = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


def declares_body(scope: Scope) -> bool:
    """Whether the request announces a body (a non-zero Content-Length or chunked)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False


class BodyLimitMiddleware:
    """413 problem+json as soon as a request body passes ``max_body_bytes``.

    The limit is the app's ``SharedState.settings.max_body_bytes`` (1 MiB without settings), read
    on the first request with a body. A request without one passes straight through. When
    the app answers before it has read the whole body (a 401, a 413), the answer closes the
    connection, so the server stops reading what is left.
    """

    def __init__(self, app: ASGIApp, *, state: SharedState) -> None:
        self.app = app
        self.state = state
        self._limit: int | None = None

    @property
    def limit(self) -> int:
        if self._limit is None:
            settings = self.state.settings
            self._limit = int(getattr(settings, "max_body_bytes", DEFAULT_MAX_BODY_BYTES))
        return self._limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not declares_body(scope):
            await self.app(scope, receive, send)
            return
        limit = self.limit
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                for message in _too_large(limit):
                    await send(message)
                return
        received = 0
        complete = False
        answered = False

        async def limited_receive() -> Message:
            nonlocal received, complete, answered
            if answered:
                return _DISCONNECT
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > limit:
                    answered = True
                    for reply in _too_large(limit):
                        await send(reply)
                    return _DISCONNECT
            return message

        async def guarded_send(message: Message) -> None:
            if answered:
                return
            if message["type"] == "http.response.start" and not complete:
                headers = [*message.get("headers", ()), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, limited_receive, guarded_send)


def _needs_bearer(dependant: Dependant) -> bool:
    return any(
        dependency.call is current_claims or _needs_bearer(dependency)
        for dependency in dependant.dependencies
    )


class BearerFirstRoute(APIRoute):
    """An ``APIRoute`` that verifies the bearer token before the body is read.

    Only for routes whose dependencies include ``current_claims``; the claims are kept in the
    request scope, so the dependency does not verify the token a second time. Anonymous
    routes (``/auth/register``, ``/auth/token``) read their body as usual.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not _needs_bearer(self.dependant):
            return handler

        async def bearer_first(request: Request) -> Response:
            if declares_body(request.scope):
                request.scope[CLAIMS_SCOPE_KEY] = await current_claims(request)
            return await handler(request)

        return bearer_first
