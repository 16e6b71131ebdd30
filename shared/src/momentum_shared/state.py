"""Typed application state: one dataclass per service, stored once, read through one accessor.

A service's factory builds its state (``TasksState(settings=…)``) and installs it; the
lifespan fills in what exists only while the app runs (the engine, the session factory,
the relay). Routes and dependencies read it with the service's accessor, one attribute
lookup on ``app.state`` like before, but typed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar, cast

from fastapi import Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_shared.events import utcnow
from momentum_shared.settings import MomentumSettings

if TYPE_CHECKING:
    import httpx

    from momentum_shared.health import Readiness
    from momentum_shared.lifespan import ServiceRuntime
    from momentum_shared.outbox import OutboxRelay
    from momentum_shared.security.revocation import RevocationList, RevocationListener
    from momentum_shared.security.verification import TokenVerifier

SettingsT = TypeVar("SettingsT", bound=MomentumSettings)
StateT = TypeVar("StateT", bound="ServiceState[Any]")

_KEY = "service_state"
_SHARED_KEY = "momentum"


@dataclass(eq=False)
class SharedState:
    """What the shared infrastructure keeps on every app, the gateway's too: set by
    ``build_app`` and the shared set-ups, read through ``shared_state(app)``."""

    service: str
    readiness: Readiness
    settings: MomentumSettings | None = None
    """the program's settings (the server and the body limit read them)"""
    jwks_client: httpx.AsyncClient | None = None
    """the HTTP client the verifier fetches the JWKS with (tests pass one); None: its own"""
    verifier: TokenVerifier | None = None
    revocations: RevocationList | None = None
    revocation_listener: RevocationListener | None = None
    internal_url: str | None = None
    """where the internal port (``/metrics``, detailed ``/readyz``) is served, when it is"""
    openapi_security_schemes: dict[str, Any] = field(default_factory=dict)
    openapi_changes: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)


def request_shared_state(request: Request) -> SharedState:
    """``shared_state`` of the app serving ``request``, without the check (per request)."""
    return cast(SharedState, getattr(request.app.state, _SHARED_KEY))


def install_shared_state(app: FastAPI, shared: SharedState) -> SharedState:
    setattr(app.state, _SHARED_KEY, shared)
    return shared


def shared_state(app: FastAPI) -> SharedState:
    """The ``SharedState`` of a house app (``build_app`` installed it)."""
    shared = getattr(app.state, _SHARED_KEY, None)
    if not isinstance(shared, SharedState):
        raise TypeError("not a Momentum app: build it with momentum_shared.app.build_app")
    return shared


@dataclass(eq=False)
class ServiceState(Generic[SettingsT]):
    """What every service's app holds; a service subclasses it with its own parts."""

    settings: SettingsT
    _engine: AsyncEngine | None = None
    _session_factory: async_sessionmaker[AsyncSession] | None = None
    relay: OutboxRelay | None = None
    """the in-process outbox relay, when the service runs one"""
    clock: Callable[[], datetime] = utcnow
    """gives "now" to every route (``NowDep``); tests pass a fixed one"""

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the app's lifespan has not started: no database yet")
        return self._engine

    @property
    def session_factory(self) -> async_sessionmaker[AsyncSession]:
        if self._session_factory is None:
            raise RuntimeError("the app's lifespan has not started: no database yet")
        return self._session_factory

    def attach(self, runtime: ServiceRuntime) -> None:
        """Take the database the lifespan opened."""
        self._engine = runtime.engine
        self._session_factory = runtime.session_factory


def install_state(app: FastAPI, state: StateT) -> StateT:
    """Store ``state`` on ``app`` (its settings also in the shared state, for the server)."""
    setattr(app.state, _KEY, state)
    shared_state(app).settings = state.settings
    return state


def state_of(app: FastAPI, kind: type[StateT]) -> StateT:
    """The state ``install_state`` stored on ``app``, as the service's own type."""
    state = getattr(app.state, _KEY)
    if not isinstance(state, kind):
        raise TypeError(f"the app holds {type(state).__name__}, not {kind.__name__}")
    return state


def request_state(request: Request) -> ServiceState[Any]:
    """The state of the app serving ``request`` (for shared dependencies)."""
    return cast("ServiceState[Any]", getattr(request.app.state, _KEY))


async def current_time(request: Request) -> datetime:
    """The current instant from the app's clock: the one source of "now" for routes."""
    return request_state(request).clock()


NowDep = Annotated[datetime, Depends(current_time)]
