"""The analytics app's typed state: settings, database, clock (shared) and consumer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from fastapi import FastAPI, Request

from momentum_analytics.settings import AnalyticsSettings
from momentum_shared.state import ServiceState, state_of

if TYPE_CHECKING:
    from momentum_analytics.consumer import EventConsumer


@dataclass(eq=False, kw_only=True)
class AnalyticsState(ServiceState[AnalyticsSettings]):
    consumer: EventConsumer | None = None


def analytics_state(request: Request) -> AnalyticsState:
    """The state of the app serving ``request`` (installed by ``create_app``)."""
    return cast(AnalyticsState, request.app.state.service_state)


def app_state(app: FastAPI) -> AnalyticsState:
    return state_of(app, AnalyticsState)
