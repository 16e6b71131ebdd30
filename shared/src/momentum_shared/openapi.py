"""The OpenAPI side of every Momentum app: problem+json errors, examples, short operation ids.

FastAPI documents a 422 as ``HTTPValidationError`` under ``application/json``; every Momentum
error is RFC 9457 problem+json instead (``momentum_shared.errors``). ``install_openapi``
rewrites the generated document so that every error response says so, with the ``Problem``
schema and an example, and adds the statuses any route can answer (503 when the database
is unreachable, 413 when a body is too large, 422 when the request does not validate).

``/docs`` is Swagger UI served from the assets of the ``fastapi-offline`` wheel, so it
renders without the internet.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from momentum_shared.errors import PROBLEM_JSON, ProblemError, problem_body
from momentum_shared.state import shared_state

PROBLEM_REF = "#/components/schemas/Problem"
DOCS_ASSETS = "/docs/assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

PROBLEM_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "title": "Problem",
        "description": (
            "An error, as RFC 9457 problem details. `errors` lists what did not validate"
            " (422); the OAuth endpoints add `error` (RFC 6749 §5.2), an insufficient scope"
            " adds `error` and `scope`."
        ),
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {
                "type": "string",
                "description": "the kind of problem, a URI; about:blank: see the status",
                "default": "about:blank",
            },
            "title": {"type": "string", "description": "the status's phrase"},
            "status": {"type": "integer", "minimum": 100, "maximum": 599},
            "detail": {"type": "string", "description": "what went wrong, for a person"},
            "instance": {"type": "string", "description": "a URI naming this occurrence"},
            "errors": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/ProblemFieldError"},
                "description": "each part of the request that did not validate (422)",
            },
            "error": {"type": "string", "description": "an OAuth 2.0 error code"},
            "scope": {"type": "string", "description": "the scope the route needs"},
        },
        "additionalProperties": True,
    },
    "ProblemFieldError": {
        "title": "ProblemFieldError",
        "type": "object",
        "required": ["loc", "msg", "type"],
        "properties": {
            "loc": {
                "type": "array",
                "items": {"type": "string"},
                "description": "where: body, query, path or header, then the field",
            },
            "msg": {"type": "string"},
            "type": {"type": "string"},
        },
    },
}

# Why each status can happen when a route does not say; what a route declares wins.
DEFAULT_DESCRIPTIONS: dict[int, str] = {
    400: "the request is malformed (e.g. a body that cannot be parsed)",
    401: "missing, invalid or expired bearer token",
    403: "the token lacks the route's scope",
    404: "no such resource",
    405: "the method is not allowed here (Allow lists those that are)",
    408: "the request body did not arrive in time",
    409: "the request conflicts with the current state",
    412: "If-Match is not the current ETag",
    413: "the request body is too large",
    415: "the body is not of a media type this route accepts",
    422: "the request did not validate",
    429: "too many requests (Retry-After)",
    431: "the request headers are too large",
    502: "the service behind the gateway failed",
    503: "temporarily unavailable, e.g. the database cannot be reached (Retry-After)",
    504: "the service behind the gateway did not answer in time",
}
DEFAULT_DETAILS: dict[int, str] = {
    401: "the bearer token is missing, invalid or expired",
    403: "this route needs the scope 'tasks:read'",
    404: "no such resource",
    412: "If-Match does not match the current ETag",
    422: "the request did not validate",
    429: "too many requests; retry after the Retry-After delay",
    503: "the database cannot be reached",
}
RETRY_AFTER: dict[str, Any] = {
    "description": "seconds to wait before retrying",
    "schema": {"type": "integer", "minimum": 1},
}
ALLOW: dict[str, Any] = {
    "description": "the methods this path allows",
    "schema": {"type": "string"},
}
WWW_AUTHENTICATE: dict[str, Any] = {
    "description": "a Bearer challenge (RFC 6750)",
    "schema": {"type": "string"},
}
HEADERS_BY_STATUS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": WWW_AUTHENTICATE},
    405: {"Allow": ALLOW},
    429: {"Retry-After": RETRY_AFTER},
    503: {"Retry-After": RETRY_AFTER},
}


def _titles(cls: type[ProblemError] = ProblemError) -> dict[int, str]:
    titles = {cls.status: cls.title}
    for sub in cls.__subclasses__():
        for status, title in _titles(sub).items():
            titles.setdefault(status, title)
    return titles


def problem_example(status: int, detail: str | None = None) -> dict[str, Any]:
    """A realistic problem body for ``status`` (what ``momentum_shared.errors`` renders)."""
    extra: dict[str, Any] | None = None
    if status == 422:
        extra = {"errors": [{"loc": ["body"], "msg": "Field required", "type": "missing"}]}
    elif status == 403:
        extra = {"error": "insufficient_scope", "scope": "tasks:read"}
    return problem_body(
        status,
        title=_titles().get(status),
        detail=detail or DEFAULT_DETAILS.get(status),
        extra=extra,
    )


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    """A documented problem+json response for ``status``."""
    response: dict[str, Any] = {
        "description": description or DEFAULT_DESCRIPTIONS.get(status) or HTTPStatus(status).phrase,
        "content": {
            PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}, "example": problem_example(status)}
        },
    }
    if status in HEADERS_BY_STATUS:
        response["headers"] = copy.deepcopy(HEADERS_BY_STATUS[status])
    return response


def as_problem(status: int, response: dict[str, Any]) -> dict[str, Any]:
    """An error response of the document, rewritten to carry the Problem schema."""
    documented = problem_response(status, response.get("description"))
    content = response.get("content") or {}
    example = (content.get(PROBLEM_JSON) or {}).get("example")
    if example is not None:
        documented["content"][PROBLEM_JSON]["example"] = example
    headers = {**documented.get("headers", {}), **response.get("headers", {})}
    if headers:
        documented["headers"] = headers
    return documented


def operations(document: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (path, method, operation) of ``document``."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    for path, item in document.get("paths", {}).items():
        if not isinstance(item, dict):
            continue
        for method, operation in item.items():
            if method in METHODS and isinstance(operation, dict):
                found.append((path, method, operation))
    return found


def refine(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite FastAPI's generated document: problem+json errors and the statuses any route has."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(copy.deepcopy(PROBLEM_SCHEMAS))
    renames = {
        name: _body_schema_name(schema["title"])
        for name, schema in schemas.items()
        if str(schema.get("title", "")).startswith("Body_")
    }
    if renames:
        for old, new in renames.items():
            schemas[new] = schemas.pop(old)
            schemas[new]["title"] = new
        document["paths"] = _rename_refs(document.get("paths", {}), renames)
    for _path, _method, operation in operations(document):
        responses: dict[str, Any] = operation.setdefault("responses", {})
        statuses = {503}  # the database or a pool is out of reach
        if operation.get("requestBody"):
            statuses |= {400, 413}  # a body that cannot be parsed; one over the limit
        if operation.get("requestBody") or operation.get("parameters"):
            statuses.add(422)
        for status in statuses:
            responses.setdefault(str(status), {})
        for key in list(responses):
            if key.isdigit() and int(key) >= 400:
                responses[key] = as_problem(int(key), responses[key])
        operation["responses"] = dict(sorted(responses.items()))
    document["components"] = {
        key: dict(sorted(value.items())) if isinstance(value, dict) else value
        for key, value in sorted(document["components"].items())
    }
    return document


def oauth2_password_scheme(
    scopes: Mapping[str, str], *, token_url: str = "/auth/token"
) -> dict[str, Any]:
    """The OAuth2 password flow (what Swagger UI's Authorize offers) with ``scopes``."""
    return {
        "type": "oauth2",
        "description": f"RS256 access tokens (RFC 9068) from POST {token_url}",
        "flows": {"password": {"tokenUrl": token_url, "scopes": dict(scopes)}},
    }


def declare_security_scheme(app: FastAPI, name: str, scheme: Mapping[str, Any]) -> None:
    """Add ``scheme`` to ``app``'s document under ``components.securitySchemes.<name>``."""
    shared_state(app).openapi_security_schemes[name] = dict(scheme)
    app.openapi_schema = None


JSON = "application/json"


def examples(
    *,
    request: Any = None,
    response: Any = None,
    status: int = 200,
    request_media: str = JSON,
) -> dict[str, Any]:
    """``openapi_extra`` for a route: an example request body and an example response body."""
    extra: dict[str, Any] = {}
    if request is not None:
        extra["requestBody"] = {"content": {request_media: {"example": request}}}
    if response is not None:
        extra["responses"] = {str(status): {"content": {JSON: {"example": response}}}}
    return extra


def customize_openapi(app: FastAPI, change: Callable[[dict[str, Any]], None]) -> None:
    """Have ``change`` edit ``app``'s document after it is refined (what FastAPI cannot say)."""
    shared_state(app).openapi_changes.append(change)
    app.openapi_schema = None


def _body_schema_name(title: str) -> str:
    """``Body_auth.token`` (FastAPI's name for a form) as ``AuthTokenForm``."""
    words = title.removeprefix("Body_").replace("-", ".").replace("_", ".").split(".")
    return "".join(word[:1].upper() + word[1:] for word in words if word) + "Form"


def _rename_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                "#/components/schemas/" + renames[value.rsplit("/", 1)[1]]
                if key == "$ref"
                and isinstance(value, str)
                and value.startswith("#/components/schemas/")
                and value.rsplit("/", 1)[1] in renames
                else _rename_refs(value, renames)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rename_refs(item, renames) for item in node]
    return node


def install_openapi(app: FastAPI) -> None:
    """Refine ``app``'s OpenAPI document and serve ``/docs`` from packaged assets."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = copy.deepcopy(generate())
            shared = shared_state(app)
            schemes = shared.openapi_security_schemes
            if schemes:
                document.setdefault("components", {})["securitySchemes"] = copy.deepcopy(schemes)
            document = refine(document)
            for change in shared.openapi_changes:
                change(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    install_docs(app)


def install_docs(app: FastAPI, *, openapi_url: str = "/openapi.json", title: str = "") -> None:
    """Serve Swagger UI at ``/docs`` from the ``fastapi-offline`` wheel's assets."""
    app.docs_url = None
    app.redoc_url = None
    app.router.routes[:] = [
        route
        for route in app.router.routes
        if getattr(route, "path", None) not in {"/docs", "/redoc", "/docs/oauth2-redirect"}
    ]
    app.mount(DOCS_ASSETS, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    page_title = title or f"{app.title} - Swagger UI"

    async def docs(_request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=page_title,
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
            init_oauth={"usePkceWithAuthorizationCodeGrant": False},
            swagger_ui_parameters={"persistAuthorization": False},
        )

    async def redirect(_request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_route("/docs", docs, include_in_schema=False)
    app.add_route("/docs/oauth2-redirect", redirect, include_in_schema=False)
