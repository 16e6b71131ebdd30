"""The JWKS and the RFC 8414 metadata."""

from __future__ import annotations

import httpx

from momentum_auth.settings import AuthSettings
from services.auth.tests.support import kid_of, register, tokens


async def test_jwks_publishes_the_signing_key_and_the_next_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert "max-age=" in response.headers["cache-control"]
    keys = response.json()["keys"]
    signing_kid = kid_of((await tokens(client, (await register(client))["email"]))["access_token"])
    # The key that signs, and the one that will sign after the next rotation.
    assert len(keys) == 2
    assert signing_kid in {key["kid"] for key in keys}
    for key in keys:
        assert key["kty"] == "RSA"
        assert key["alg"] == "RS256"
        assert key["use"] == "sig"
        assert key["kid"]
        # A 2048-bit modulus is 256 bytes: 342 or 343 base64url characters.
        assert len(key["n"]) >= 342
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


async def test_metadata_names_every_endpoint(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    response = await client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    body = response.json()
    assert body["issuer"] == settings.issuer
    assert body["token_endpoint"] == f"{settings.issuer}/auth/token"
    assert body["jwks_uri"] == f"{settings.issuer}/.well-known/jwks.json"
    assert body["revocation_endpoint"] == f"{settings.issuer}/auth/revoke"
    assert body["grant_types_supported"] == ["password", "refresh_token"]
    assert set(body["scopes_supported"]) == {
        "profile",
        "tasks:read",
        "tasks:write",
        "analytics:read",
        "analytics:write",
        "admin",
    }


async def test_ready_once_the_database_and_key_are_there(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"]["status"] == "ok"
    assert response.json()["checks"]["signing_key"]["status"] == "ok"
