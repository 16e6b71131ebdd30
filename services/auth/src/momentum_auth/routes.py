"""HTTP routes of the auth service (docs/spec/auth.md)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from momentum_auth import accounts, errors, grants, scopes, sessions
from momentum_auth.dependencies import (
    ClientAddressDep,
    ContextDep,
    CurrentUserDep,
    ProfileDep,
    current_admin,
    session_id,
)
from momentum_auth.schemas import (
    AuthorizationServerMetadata,
    JsonWebKeySet,
    PasswordChange,
    SigningKeyPublic,
    TokenResponse,
    UserCreate,
    UserPublic,
    UserUpdate,
    user_public,
)
from momentum_auth.signing_keys import rotation
from momentum_shared.bodies import BearerFirstRoute
from momentum_shared.db import SessionDep
from momentum_shared.errors import PROBLEM_JSON, ProblemError, problem_body
from momentum_shared.openapi import examples
from momentum_shared.state import NowDep


class OAuthFormRoute(APIRoute):
    """A route of the token or revocation endpoint: even a form that cannot be parsed at all
    (too many fields, a broken multipart body, a file where a string belongs) is an RFC 6749
    ``invalid_request``, not-stored (as every refusal of these endpoints: each carries
    ``errors.NO_STORE``).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException as exc:
                if exc.status_code != 400:
                    raise
                detail = exc.detail if isinstance(exc.detail, str) else "the form is malformed"
                return errors.invalid_request(detail).to_response()
            except RequestValidationError:
                # Only a multipart file part can fail: urlencoded values are always strings.
                malformed = await _malformed_form(request)
                return (malformed or errors.invalid_request("the form is malformed")).to_response()

        return handle


router = APIRouter(route_class=BearerFirstRoute)
# The token and revocation endpoints; included in ``router`` at the end of this module.
oauth = APIRouter(route_class=OAuthFormRoute)

# RFC 6749 §5.1: responses that carry tokens must not be stored by any cache.
NO_STORE = errors.NO_STORE
CLIENT_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


def _oauth_error(status: int, error: str, detail: str, description: str) -> dict[str, Any]:
    """A documented token-endpoint error (RFC 6749 §5.2 ``error``), with an example."""
    example = problem_body(status, detail=detail, extra={"error": error})
    return {"description": description, "content": {PROBLEM_JSON: {"example": example}}}


TOKEN_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _oauth_error(
        400,
        "unsupported_grant_type",
        "grant_type must be password or refresh_token",
        "invalid_request, unsupported_grant_type or invalid_scope",
    ),
    401: _oauth_error(
        401,
        "invalid_grant",
        "the email or password is wrong",
        "invalid_grant: wrong credentials or a bad refresh token",
    ),
    429: _oauth_error(
        429,
        "invalid_grant",
        "too many failed sign-ins; retry after the Retry-After delay",
        "too many sign-in attempts (Retry-After)",
    ),
    503: _oauth_error(
        503,
        "temporarily_unavailable",
        "the server is busy; retry after the Retry-After delay",
        "temporarily_unavailable: password hashing is full (Retry-After)",
    ),
}
# Registration and password changes hash too: a full hashing pool answers 503.
HASHING_BUSY: dict[int | str, dict[str, Any]] = {
    503: {"description": "password hashing is full (Retry-After)", **_PROBLEM},
}

# Routes that need a valid bearer token with the profile scope.
SIGNED_IN: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, invalid or expired bearer token", **_PROBLEM},
    403: {"description": "the token lacks the profile scope", **_PROBLEM},
}

USER_EXAMPLE: dict[str, Any] = {
    "id": "9b2f6d1e-3c4a-4e5f-8a7b-1c2d3e4f5a6b",
    "email": "ada@example.com",
    "display_name": "Ada",
    "timezone": "Europe/Berlin",
    "created_at": "2026-12-02T09:00:00Z",
}
TOKEN_EXAMPLE: dict[str, Any] = {
    "access_token": "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0.e30.c2ln",
    "token_type": "Bearer",
    "expires_in": 900,
    "refresh_token": "rt_9b2f6d1e3c4a4e5f8a7b1c2d3e4f5a6b",
    "scope": "profile tasks:read tasks:write analytics:read analytics:write",
}

FormField = Annotated[str | None, Form()]


FORM = "application/x-www-form-urlencoded"


async def _malformed_form(request: Request) -> ProblemError | None:
    """What is wrong with the form of a token or revocation request, if anything.

    The body must be form-encoded (RFC 6749 §4.3.2, RFC 7009 §2.1): said plainly, rather
    than "grant_type is required" for a JSON body. A parameter sent twice makes the request
    invalid (RFC 6749 §3.2); otherwise the last copy would silently win, and a proxy reading
    the first would see another request than this endpoint serves.
    """
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type and media_type != FORM:
        return errors.invalid_request(f"the body must be {FORM}")
    seen: set[str] = set()
    for name, _ in (await request.form()).multi_items():
        if name in seen:
            return errors.invalid_request(f"the parameter {name[:40]!r} is repeated")
        seen.add(name)
    return None


@router.post(
    "/auth/register",
    operation_id="auth.register",
    status_code=201,
    openapi_extra=examples(
        request={
            "email": "ada@example.com",
            "password": "correct horse battery",
            "display_name": "Ada",
            "timezone": "Europe/Berlin",
        },
        response=USER_EXAMPLE,
        status=201,
    ),
    response_model=UserPublic,
    responses={
        409: {"description": "an account with this email exists (in any spelling)", **_PROBLEM},
        429: {"description": "too many registrations (Retry-After)", **_PROBLEM},
        **HASHING_BUSY,
    },
    tags=["users"],
)
async def register(
    data: UserCreate,
    session: SessionDep,
    ctx: ContextDep,
    address: ClientAddressDep,
    response: Response,
    now: NowDep,
) -> UserPublic:
    """Create a user; the email is case-insensitive and unique."""
    user = await accounts.register_user(session, ctx, data, address=address, now=now)
    response.headers["Location"] = "/auth/me"
    return user_public(user)


@oauth.post(
    "/auth/token",
    operation_id="auth.token",
    openapi_extra=examples(
        request={
            "grant_type": "password",
            "username": "ada@example.com",
            "password": "correct horse battery",
            "scope": "tasks:read tasks:write",
        },
        request_media=FORM,
        response=TOKEN_EXAMPLE,
    ),
    response_model=TokenResponse,
    responses=TOKEN_ERRORS,
    tags=["tokens"],
)
async def token(
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    address: ClientAddressDep,
    now: NowDep,
    grant_type: FormField = None,
    username: FormField = None,
    password: FormField = None,
    refresh_token: FormField = None,
    scope: FormField = None,
    client_id: FormField = None,
) -> Response:
    """Token endpoint (RFC 6749): the ``password`` and ``refresh_token`` grants."""
    if (malformed := await _malformed_form(request)) is not None:
        raise malformed
    if not grant_type:
        raise errors.invalid_request("grant_type is required")
    if grant_type == "password":
        if not username or password is None:
            raise errors.invalid_request("username and password are required")
        if len(username) > 320 or len(password) > grants.MAX_PASSWORD_INPUT:
            raise errors.invalid_request("username or password is too long")
        client = client_id or ctx.settings.default_client_id
        if len(client) > 64 or not set(client) <= CLIENT_ID_CHARS:
            raise errors.invalid_request("client_id is malformed")
        result = await grants.password_grant(
            session,
            ctx,
            username=username,
            password=password,
            scope=scope,
            client_id=client,
            address=address,
            now=now,
        )
    elif grant_type == "refresh_token":
        if not refresh_token:
            raise errors.invalid_request("refresh_token is required")
        if len(refresh_token) > 512:
            raise errors.invalid_grant(grants.INVALID_REFRESH)
        result = await grants.refresh_grant(
            session, ctx, refresh_token=refresh_token, scope=scope, now=now
        )
    else:
        raise errors.unsupported_grant_type(grant_type)
    return JSONResponse(result.model_dump(mode="json"), headers=NO_STORE)


@oauth.post(
    "/auth/revoke",
    operation_id="auth.revoke",
    openapi_extra=examples(
        request={"token": TOKEN_EXAMPLE["refresh_token"], "token_type_hint": "refresh_token"},
        request_media=FORM,
    ),
    response_class=Response,
    responses={
        200: {"description": "revoked, or the token was not valid (RFC 7009); no body"},
        400: _oauth_error(
            400, "invalid_request", "token is required", "invalid_request: no token, or a bad form"
        ),
    },
    tags=["tokens"],
)
async def revoke(
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    now: NowDep,
    token: FormField = None,
    # RFC 7009 lets a client hint the type; both kinds are looked up anyway.
    token_type_hint: FormField = None,  # noqa: ARG001
) -> Response:
    """Revocation endpoint (RFC 7009): revokes the token's whole family."""
    if (malformed := await _malformed_form(request)) is not None:
        raise malformed
    if not token:
        raise errors.invalid_request("token is required")
    if len(token) <= 8192:
        await sessions.revoke_token(session, ctx, token=token, now=now)
    return Response(status_code=200, headers=NO_STORE)


@router.get(
    "/auth/me",
    operation_id="auth.me",
    openapi_extra=examples(response=USER_EXAMPLE),
    response_model=UserPublic,
    responses=SIGNED_IN,
    tags=["users"],
)
async def read_me(user: CurrentUserDep) -> UserPublic:
    """The signed-in user."""
    return user_public(user)


@router.patch(
    "/auth/me",
    operation_id="auth.update_me",
    openapi_extra=examples(
        request={"timezone": "America/New_York"},
        response={**USER_EXAMPLE, "timezone": "America/New_York"},
    ),
    response_model=UserPublic,
    responses=SIGNED_IN,
    tags=["users"],
)
async def update_me(
    data: UserUpdate, user: CurrentUserDep, session: SessionDep, now: NowDep
) -> UserPublic:
    """Change the display name or the timezone."""
    updated = await accounts.update_user(session, user, data, now=now)
    return user_public(updated)


@router.post(
    "/auth/me/password",
    operation_id="auth.change_password",
    openapi_extra=examples(
        request={
            "current_password": "correct horse battery",
            "new_password": "battery staple horse correct",
        }
    ),
    status_code=204,
    responses={
        **SIGNED_IN,
        403: {
            "description": "the current password is wrong (urn:momentum:problem:wrong-password)",
            **_PROBLEM,
        },
        429: {"description": "too many attempts (Retry-After)", **_PROBLEM},
        **HASHING_BUSY,
    },
    tags=["users"],
)
async def change_password(
    data: PasswordChange,
    user: CurrentUserDep,
    claims: ProfileDep,
    session: SessionDep,
    ctx: ContextDep,
    address: ClientAddressDep,
    now: NowDep,
) -> Response:
    """Change the password; every other session of the user is revoked."""
    await accounts.change_password(
        session,
        ctx,
        user,
        data,
        current_session=session_id(claims),
        address=address,
        now=now,
    )
    return Response(status_code=204)


@router.get(
    "/.well-known/jwks.json",
    operation_id="auth.jwks",
    openapi_extra=examples(
        response={
            "keys": [
                {
                    "kty": "RSA",
                    "kid": "k1",
                    "use": "sig",
                    "alg": "RS256",
                    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7",
                    "e": "AQAB",
                }
            ]
        }
    ),
    response_model=JsonWebKeySet,
    tags=["discovery"],
)
async def jwks(
    session: SessionDep, ctx: ContextDep, response: Response, now: NowDep
) -> JsonWebKeySet:
    """Every public key that may still verify a live access token."""
    response.headers["Cache-Control"] = f"public, max-age={ctx.settings.jwks_max_age_seconds}"
    return await rotation.published_jwks(session, now=now)


@router.get(
    "/.well-known/oauth-authorization-server",
    operation_id="auth.metadata",
    openapi_extra=examples(
        response={
            "issuer": "https://momentum.example.com",
            "token_endpoint": "https://momentum.example.com/auth/token",
            "jwks_uri": "https://momentum.example.com/.well-known/jwks.json",
            "revocation_endpoint": "https://momentum.example.com/auth/revoke",
            "grant_types_supported": ["password", "refresh_token"],
            "scopes_supported": [
                "profile",
                "tasks:read",
                "tasks:write",
                "analytics:read",
                "analytics:write",
                "admin",
            ],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
        }
    ),
    response_model=AuthorizationServerMetadata,
    tags=["discovery"],
)
async def metadata(ctx: ContextDep, response: Response) -> AuthorizationServerMetadata:
    """RFC 8414 authorization-server metadata."""
    # ``issuer`` must equal the tokens' ``iss`` exactly (RFC 8414 §3.3); URLs build on it.
    issuer = ctx.settings.issuer.rstrip("/")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return AuthorizationServerMetadata(
        issuer=ctx.settings.issuer,
        token_endpoint=f"{issuer}/auth/token",
        jwks_uri=f"{issuer}/.well-known/jwks.json",
        revocation_endpoint=f"{issuer}/auth/revoke",
        grant_types_supported=list(grants.GRANT_TYPES),
        scopes_supported=list(scopes.SCOPES),
        # No authorization endpoint: no response type is offered.
        response_types_supported=[],
        token_endpoint_auth_methods_supported=["none"],
        revocation_endpoint_auth_methods_supported=["none"],
    )


@router.post(
    "/auth/admin/keys/rotate",
    operation_id="auth.rotate_keys",
    openapi_extra=examples(
        response={"kid": "k2", "alg": "RS256", "created_at": "2026-11-25T09:00:00Z"}, status=201
    ),
    status_code=201,
    response_model=SigningKeyPublic,
    responses={
        401: SIGNED_IN[401],
        403: {"description": "the token lacks the admin scope", **_PROBLEM},
    },
    dependencies=[Depends(current_admin)],
    tags=["admin"],
)
async def rotate_keys(session: SessionDep, ctx: ContextDep, now: NowDep) -> SigningKeyPublic:
    """Rotate the signing key: the already published next key signs from now on."""
    key = await rotation.rotate_signing_key(session, ctx, now=now)
    return SigningKeyPublic(kid=key.kid, alg=key.algorithm, created_at=key.created_at)


router.include_router(oauth)
