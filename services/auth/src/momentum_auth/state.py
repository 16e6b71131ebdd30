"""The auth app's typed state: settings, database, relay and the rules' context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from fastapi import FastAPI, Request

from momentum_auth.context import AuthContext
from momentum_auth.settings import AuthSettings
from momentum_shared.state import ServiceState, state_of


@dataclass(eq=False, kw_only=True)
class AuthState(ServiceState[AuthSettings]):
    auth: AuthContext


def auth_state(request: Request) -> AuthState:
    """The state of the app serving ``request`` (installed by ``create_app``)."""
    return cast(AuthState, request.app.state.service_state)


def app_state(app: FastAPI) -> AuthState:
    return state_of(app, AuthState)
