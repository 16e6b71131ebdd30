"""The gateway app's typed state: its request pipeline and, while it runs, the merged document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from fastapi import FastAPI, Request

from momentum_gateway.openapi import OpenApiAggregator
from momentum_gateway.pipeline import Gateway

_KEY = "gateway_state"


@dataclass(eq=False)
class GatewayState:
    gateway: Gateway
    openapi: OpenApiAggregator | None = None
    """the merged OpenAPI document's source (set by the lifespan)"""


def install_gateway_state(app: FastAPI, state: GatewayState) -> GatewayState:
    setattr(app.state, _KEY, state)
    return state


def gateway_state(app: FastAPI) -> GatewayState:
    state = getattr(app.state, _KEY)
    if not isinstance(state, GatewayState):
        raise TypeError("not the gateway's app")
    return state


def request_gateway_state(request: Request) -> GatewayState:
    return cast(GatewayState, getattr(request.app.state, _KEY))
