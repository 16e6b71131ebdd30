"""The merged OpenAPI document and the docs page."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import httpx
from fastapi import FastAPI

from gateway.tests.support import closed_port
from momentum_auth.scopes import SCOPES
from momentum_devtools.testing.apps import running_app
from momentum_gateway.openapi import merge
from momentum_gateway.routing import TABLE
from momentum_shared.errors import PROBLEM_JSON
from momentum_shared.openapi import PROBLEM_SCHEMAS, operations


async def test_the_document_merges_every_service_as_the_gateway_serves_it(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    paths = doc["paths"]
    assert {
        "/auth/register",
        "/auth/me",
        "/tasks",
        "/tasks/{task_id}",
        "/analytics/streaks",
    } <= set(paths)
    # The services' own probes are not reachable through the gateway, so not described.
    assert "/healthz" not in paths
    assert "/{path}" not in paths
    assert paths["/auth/register"]["post"]["security"] == []
    assert paths["/auth/me"]["get"]["security"] == [{"bearer": ["profile"]}]
    assert paths["/tasks/{task_id}"]["get"]["security"] == [{"bearer": ["tasks:read"]}]
    assert paths["/tasks/{task_id}"]["delete"]["security"] == [{"bearer": ["tasks:write"]}]
    assert paths["/auth/admin/keys/rotate"]["post"]["security"] == [{"bearer": ["admin"]}]
    flows = doc["components"]["securitySchemes"]["bearer"]["flows"]
    assert flows["password"]["tokenUrl"] == "/auth/token"


async def test_schema_names_two_services_use_differently_are_kept_apart(
    client: httpx.AsyncClient,
) -> None:
    doc = (await client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert "Item" in schemas
    assert "TaskItem" in schemas
    register = doc["paths"]["/auth/register"]["post"]["requestBody"]
    ref = register["content"]["application/json"]["schema"]["$ref"]
    assert ref.rsplit("/", 1)[1] in schemas


def test_clashing_names_are_prefixed_and_references_follow() -> None:
    def service_doc(path: str, field: str) -> dict[str, Any]:
        schema_ref = {"$ref": "#/components/schemas/Thing"}
        return {
            "paths": {
                path: {"get": {"responses": {"200": {"content": {"a": {"schema": schema_ref}}}}}}
            },
            "components": {"schemas": {"Thing": {"properties": {field: {"type": "string"}}}}},
        }

    merged = merge(
        {"tasks": service_doc("/tasks", "title"), "analytics": service_doc("/analytics/x", "n")},
        TABLE,
        title="t",
        version="1",
        description="d",
    )
    schemas = merged["components"]["schemas"]
    # Besides the problem schemas every merged document has (the gateway's own errors).
    assert set(schemas) - set(PROBLEM_SCHEMAS) == {"TasksThing", "AnalyticsThing"}
    tasks_ref = merged["paths"]["/tasks"]["get"]["responses"]["200"]["content"]["a"]["schema"]
    assert tasks_ref == {"$ref": "#/components/schemas/TasksThing"}


async def test_a_service_that_is_down_is_named_and_the_rest_still_served(
    app_factory: Callable[..., FastAPI],
) -> None:
    app = app_factory(analytics_url=f"http://127.0.0.1:{closed_port()}")
    async with running_app(app) as http:
        doc = (await http.get("/openapi.json")).json()
    assert doc["info"]["x-unavailable-services"] == ["analytics"]
    assert "/tasks" in doc["paths"]
    assert not [p for p in doc["paths"] if p.startswith("/analytics")]


async def test_docs_render_the_merged_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "/openapi.json" in response.text
    # Swagger UI comes from the gateway itself, never from a CDN.
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", response.text)
    assert assets
    assert not [url for url in assets if re.match(r"^(https?:)?//", url)], assets
    for url in assets:
        assert (await client.get(url)).status_code == 200, url


def merged_services() -> dict[str, Any]:
    """The gateway's merge of the committed documents of auth, tasks and analytics."""
    root = Path(__file__).resolve().parents[2] / "services"
    documents = {
        name: json.loads((root / name / "openapi.json").read_text())
        for name in ("auth", "tasks", "analytics")
    }
    return merge(documents, TABLE, title="Momentum", version="1", description="d")


def test_every_operation_has_a_short_unique_id_and_examples() -> None:
    doc = merged_services()
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids)), ids
    assert {"tasks.get", "tasks.list", "tasks.create", "auth.token"} <= set(ids)
    assert "analytics.weekly_report" in ids
    assert all(re.fullmatch(r"(auth|tasks|analytics)\.[a-z_]+", i) for i in ids), ids
    for path, method, op in operations(doc):
        body = op.get("requestBody", {}).get("content", {})
        assert all("example" in media for media in body.values()), (method, path)
        for status, response in op["responses"].items():
            for media in response.get("content", {}).values():
                assert "example" in media, (method, path, status)


def test_proxied_operations_document_the_gateway_statuses_as_problems() -> None:
    doc = merged_services()
    problem = {"$ref": "#/components/schemas/Problem"}
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert "Problem" in doc["components"]["schemas"]
    for path, method, op in operations(doc):
        responses = op["responses"]
        assert {"408", "429", "431", "502", "503", "504"} <= set(responses), (method, path)
        if op.get("requestBody"):
            assert {"413", "422"} <= set(responses), (method, path)
        if op["security"]:
            assert "401" in responses, (method, path)
        if op["security"] and op["security"][0]["bearer"]:
            assert "403" in responses, (method, path)
        for status, response in responses.items():
            if int(status) >= 400:
                assert response["content"] == {PROBLEM_JSON: {"schema": problem, "example": ANY}}, (
                    method,
                    path,
                    status,
                )
    limited = doc["paths"]["/tasks"]["get"]["responses"]["429"]
    assert "Retry-After" in limited["headers"]


def test_the_oauth2_password_flow_lists_the_scopes_auth_grants() -> None:
    doc = merged_services()
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "oauth2"
    flow = scheme["flows"]["password"]
    assert flow["tokenUrl"] == "/auth/token"
    assert set(flow["scopes"]) == set(SCOPES)
    assert doc["paths"]["/tasks"]["post"]["security"] == [{"bearer": ["tasks:write"]}]
    assert doc["paths"]["/auth/token"]["post"]["security"] == []
