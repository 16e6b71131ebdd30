"""The common app skeleton: problem+json errors, request ids, metrics and probes."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from momentum_devtools.testing.apps import running_app
from momentum_shared.app import build_app
from momentum_shared.errors import Conflict, NotFound, TooManyRequests
from momentum_shared.logs import JsonFormatter
from momentum_shared.state import shared_state


class Item(BaseModel):
    name: str = Field(min_length=1)


def make_app(*, ready: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def database() -> None:
            if not ready:
                raise ConnectionError("down")

        shared_state(app).readiness.require("database", database)
        shared_state(app).readiness.inform("nats", lambda: {"connected": False})
        yield

    app = build_app(service="demo", title="demo", version="0", lifespan=lifespan)

    @app.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        if item_id == 404:
            raise NotFound("no such item")
        if item_id == 409:
            raise Conflict("taken")
        if item_id == 429:
            raise TooManyRequests("slow down", retry_after=7)
        if item_id == 500:
            raise RuntimeError("secret internals")
        logging.getLogger("demo").info("got item")
        return {"id": item_id}

    @app.post("/items")
    async def create_item(item: Item) -> Item:
        return item

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_app()) as c:
        yield c


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    return body


async def test_domain_errors_render_as_problem_json(client: httpx.AsyncClient) -> None:
    assert assert_problem(await client.get("/items/404"), 404)["detail"] == "no such item"
    assert_problem(await client.get("/items/409"), 409)
    limited = await client.get("/items/429")
    assert_problem(limited, 429)
    assert limited.headers["retry-after"] == "7"


async def test_validation_errors_are_422_with_errors(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.post("/items", json={"name": ""}), 422)
    errors = body["errors"]
    assert isinstance(errors, list)
    assert errors[0]["loc"] == ["body", "name"]
    assert {"loc", "msg", "type"} == set(errors[0])
    assert_problem(await client.get("/items/not-a-number"), 422)


async def test_unknown_route_and_method_are_problem_json(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/nowhere"), 404)
    assert_problem(await client.delete("/items"), 405)


async def test_unexpected_errors_do_not_leak_internals() -> None:
    app = make_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            response = await c.get("/items/500", headers={"X-Request-ID": "trace-500"})
    body = assert_problem(response, 500)
    assert response.headers.get_list("x-request-id") == ["trace-500"]
    assert "secret internals" not in json.dumps(body)


async def test_request_id_is_echoed_when_sane_and_replaced_otherwise(
    client: httpx.AsyncClient,
) -> None:
    sane = await client.get("/items/1", headers={"X-Request-ID": "abc-123"})
    assert sane.headers["x-request-id"] == "abc-123"
    insane = await client.get("/items/1", headers={"X-Request-ID": "bad id\twith spaces"})
    assert insane.headers["x-request-id"] != "bad id\twith spaces"
    assert len(insane.headers["x-request-id"]) == 36
    error = await client.get("/nowhere")
    assert error.headers["x-request-id"]


async def test_request_id_is_in_log_lines_written_during_the_request() -> None:
    lines: list[dict[str, object]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(JsonFormatter("demo").format(record)))

    handler = Capture()
    logger = logging.getLogger("demo")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        async with running_app(make_app()) as c:
            await c.get("/items/1", headers={"X-Request-ID": "trace-me"})
    finally:
        logger.removeHandler(handler)
    line = next(line for line in lines if line["message"] == "got item")
    assert line["request_id"] == "trace-me"
    assert line["service"] == "demo"
    assert line["level"] == "info"


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/items/7")
    await client.get("/items/8")
    text = (await client.get("/metrics")).text
    assert 'route="/items/{item_id}"' in text
    assert (
        'momentum_http_requests_total{method="GET",route="/items/{item_id}",'
        'service="demo",status="200"}'
    ) in text
    assert "momentum_http_request_duration_seconds_bucket" in text
    assert 'route="/items/7"' not in text


async def test_probes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["nats"] == {"connected": False}


async def test_readyz_is_503_naming_the_failing_dependency() -> None:
    async with running_app(make_app(ready=False)) as c:
        healthz = await c.get("/healthz")
        response = await c.get("/readyz")
    assert healthz.status_code == 200
    body = assert_problem(response, 503)
    assert "database" in str(body["detail"])
    assert response.headers["retry-after"]
