"""The tasks app's typed state: settings, database, cursor codec and relay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from fastapi import FastAPI, Request

from momentum_shared.state import ServiceState, state_of
from momentum_tasks.pagination import CursorCodec
from momentum_tasks.settings import TasksSettings


@dataclass(eq=False, kw_only=True)
class TasksState(ServiceState[TasksSettings]):
    cursor_codec: CursorCodec


def tasks_state(request: Request) -> TasksState:
    """The state of the app serving ``request`` (installed by ``create_app``)."""
    return cast(TasksState, request.app.state.service_state)


def app_state(app: FastAPI) -> TasksState:
    return state_of(app, TasksState)
