"""The committed OpenAPI document of auth matches the code (``services/auth/openapi.json``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from momentum_devtools.testing.specs import assert_openapi_current

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


def test_the_committed_document_is_current(app: FastAPI) -> None:
    assert_openapi_current(app, DOCUMENT, CONTRACT_ROUTES)
