"""The committed OpenAPI document of auth matches the code (``services/auth/openapi.json``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fastapi import FastAPI

DOCUMENT = Path(__file__).resolve().parents[1] / "openapi.json"
CONTRACT_ROUTES = {
    ("post", "/auth/register"),
    ("post", "/auth/token"),
    ("post", "/auth/revoke"),
    ("get", "/auth/me"),
    ("patch", "/auth/me"),
    ("post", "/auth/me/password"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/.well-known/oauth-authorization-server"),
    ("post", "/auth/admin/keys/rotate"),
}


def render(app: FastAPI) -> str:
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


def test_the_committed_document_is_current(app: FastAPI) -> None:
    current = render(app)
    if os.environ.get("MOMENTUM_WRITE_SPECS") == "1":
        DOCUMENT.write_text(current)
    assert DOCUMENT.read_text() == current, (
        "services/auth/openapi.json is stale: rerun this test with MOMENTUM_WRITE_SPECS=1"
    )
    routes = {
        (method, path) for path, item in json.loads(current)["paths"].items() for method in item
    }
    assert routes >= CONTRACT_ROUTES
    for method, path in CONTRACT_ROUTES:
        assert json.loads(current)["paths"][path][method]["description"]
