"""Auth's part of the OpenAPI document: the OAuth2 password flow and the scopes it grants."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from momentum_auth.scopes import SCOPES
from momentum_shared.openapi import (
    customize_openapi,
    declare_security_scheme,
    oauth2_password_scheme,
)

SCOPE_DESCRIPTIONS = {
    "profile": "your own account",
    "tasks:read": "read your tasks",
    "tasks:write": "create and change your tasks",
    "analytics:read": "your streaks and reports",
    "analytics:write": "set your goals",
    "admin": "operator actions",
}


def declare_oauth2(app: FastAPI) -> None:
    """The ``bearer`` scheme: tokens from ``POST /auth/token``, with every scope auth grants."""
    scopes = {scope: SCOPE_DESCRIPTIONS[scope] for scope in SCOPES}
    declare_security_scheme(app, "bearer", oauth2_password_scheme(scopes))


def _forms(document: dict[str, Any]) -> None:
    """The revocation form as the endpoint reads it: ``token`` is required and not empty.

    The route takes every field as optional so that it can answer RFC 6749 errors itself.
    """
    schemas = document["components"]["schemas"]
    for form in ("AuthRevokeForm", "AuthTokenForm"):
        # Any other parameter is ignored, but none may be repeated (RFC 6749 §3.2).
        schemas[form]["additionalProperties"] = {"type": "string"}
    for path in ("/auth/token", "/auth/revoke"):
        document["paths"][path]["post"]["requestBody"]["required"] = True
    schema = schemas["AuthRevokeForm"]
    schema["required"] = ["token"]
    schema["properties"]["token"] = {
        "type": "string",
        "minLength": 1,
        "title": "Token",
        "description": "the access or refresh token to revoke",
    }
    schema["properties"]["token_type_hint"] = {
        "type": "string",
        "title": "Token Type Hint",
        "description": "access_token or refresh_token (both kinds are looked up anyway)",
    }


def document_auth(app: FastAPI) -> None:
    """Auth's additions to its OpenAPI document."""
    declare_oauth2(app)
    customize_openapi(app, _forms)
