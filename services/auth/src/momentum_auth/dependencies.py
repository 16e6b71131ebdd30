"""FastAPI dependencies of auth: the rules' context, the signed-in user, the admin."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from momentum_auth import throttle
from momentum_auth.context import AuthContext
from momentum_auth.models import User
from momentum_auth.repositories.sessions import SessionRepository
from momentum_auth.repositories.users import UserRepository
from momentum_auth.state import auth_state
from momentum_shared.db import SessionDep
from momentum_shared.errors import InsufficientScope, Unauthorized
from momentum_shared.security import Claims, RequireScope


async def auth_context(request: Request) -> AuthContext:
    return auth_state(request).auth


async def client_address(request: Request) -> str:
    """The client's address as the throttle counts it.

    Behind the gateway, uvicorn's proxy-headers support has already put the
    X-Forwarded-For client here (for the proxies named in FORWARDED_ALLOW_IPS). An IPv6
    client usually holds a whole /64, so the /64 is what is counted; an IPv4-mapped IPv6
    address counts as the IPv4 address it maps.
    """
    return throttle.client_address(request.client.host if request.client else "unknown")


ContextDep = Annotated[AuthContext, Depends(auth_context)]
ClientAddressDep = Annotated[str, Depends(client_address)]
ProfileDep = Annotated[Claims, Depends(RequireScope("profile"))]
AdminDep = Annotated[Claims, Depends(RequireScope("admin"))]


def session_id(claims: Claims) -> uuid.UUID:
    try:
        return uuid.UUID(claims.sid or "")
    except ValueError:
        raise Unauthorized("the token names no session") from None


async def _signed_in(claims: Claims, session: SessionDep) -> User:
    """The token's user, provided its session (refresh-token family) is still live.

    Auth has the families at hand, so unlike a service relying on revocation events it
    refuses a revoked session's access token at once.
    """
    user = await UserRepository(session).get(claims.user_id)
    if user is None:
        raise Unauthorized("the token's user does not exist")
    family = await SessionRepository(session).get_family(
        user_id=user.id, family_id=session_id(claims)
    )
    if family is None or family.revoked_at is not None:
        raise Unauthorized("the token's session has been revoked")
    return user


async def current_user(claims: ProfileDep, session: SessionDep) -> User:
    return await _signed_in(claims, session)


async def current_admin(claims: AdminDep, session: SessionDep) -> User:
    user = await _signed_in(claims, session)
    if not user.is_admin:
        # The scope outlived the role (an admin demoted in the database): refuse anyway.
        raise InsufficientScope("admin")
    return user


CurrentUserDep = Annotated[User, Depends(current_user)]
