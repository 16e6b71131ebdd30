"""The OpenAPI side of the app skeleton: problem+json errors, Allow, and the offline /docs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema
import pytest

from momentum_devtools.testing.apps import running_app
from momentum_shared.errors import PROBLEM_JSON
from momentum_shared.openapi import DOCS_ASSETS, operations
from shared.tests.test_app import make_app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_app()) as c:
        yield c


def problem_validator(document: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator for the document's Problem schema, its references resolved in the document."""
    schema = {"$ref": "#/components/schemas/Problem", "components": document["components"]}
    return jsonschema.Draft202012Validator(schema)


async def test_every_error_response_is_problem_json_with_the_problem_schema(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    assert set(schemas["Problem"]["required"]) == {"type", "title", "status", "detail"}
    validator = problem_validator(document)
    seen: set[str] = set()
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            seen.add(status)
            content = response["content"]
            assert list(content) == [PROBLEM_JSON], (method, path, status)
            assert content[PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/Problem"}
            example = content[PROBLEM_JSON]["example"]
            validator.validate(example)
            assert example["status"] == int(status)
    assert {"422", "503", "413", "400"} <= seen
    post = document["paths"]["/items"]["post"]["responses"]
    assert set(post) >= {"200", "400", "413", "422", "503"}
    assert post["503"]["headers"]["Retry-After"]["schema"]["type"] == "integer"


async def test_a_real_422_and_404_match_the_documented_schema(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    validator = problem_validator(document)
    invalid = await client.post("/items", json={"name": ""})
    assert invalid.status_code == 422
    assert invalid.headers["content-type"].startswith(PROBLEM_JSON)
    validator.validate(invalid.json())
    assert invalid.json()["errors"][0]["loc"] == ["body", "name"]
    missing = await client.get("/items/404")
    validator.validate(missing.json())
    # Not valid: a body without the RFC 9457 members a client relies on.
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"detail": [{"loc": ["body"], "msg": "x", "type": "y"}]})


async def test_a_405_allows_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.delete("/items")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    app = make_app()

    @app.patch("/items/{item_id}")
    async def patch_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    async with running_app(app) as http:
        refused = await http.put("/items/3")
        options = await http.options("/items/3")
    assert refused.status_code == options.status_code == 405
    # Starlette alone would name only the first route's methods (GET).
    assert refused.headers["allow"] == options.headers["allow"] == "GET, PATCH"


async def test_docs_use_only_assets_the_app_serves_itself(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    urls += re.findall(r"""url:\s*["']([^"']+)["']""", page.text)
    assert urls, page.text
    assert not [url for url in urls if re.match(r"^(https?:)?//", url)], urls
    assert "/openapi.json" in urls
    assets = [url for url in urls if url.startswith(DOCS_ASSETS)]
    assert {f"{DOCS_ASSETS}/swagger-ui-bundle.js", f"{DOCS_ASSETS}/swagger-ui.css"} <= set(assets)
    for url in assets:
        served = await client.get(url)
        assert served.status_code == 200, url
        assert len(served.content) > 100, url
    assert (await client.get("/docs/oauth2-redirect")).status_code == 200
