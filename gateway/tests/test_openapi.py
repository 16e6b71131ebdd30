"""The merged OpenAPI document and the docs page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI

from gateway.tests.support import closed_port
from momentum_devtools.testing.apps import running_app
from momentum_gateway.openapi import merge
from momentum_gateway.routing import TABLE


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
    assert set(schemas) == {"TasksThing", "AnalyticsThing"}
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
