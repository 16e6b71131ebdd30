"""Around every Momentum program's ``main``: tracing configured at start, flushed at exit."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from momentum_shared.tracing import configure_tracing, shutdown_tracing

P = ParamSpec("P")
R = TypeVar("R")


def traced_program(service: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a program's ``main``: :func:`configure_tracing` first, :func:`shutdown_tracing`
    last (however ``main`` ends), so that a one-shot command exports its spans before it exits.

    Tracing stays off unless ``OTEL_TRACES_EXPORTER`` names an exporter; ``service`` names the
    program (``momentum-<service>``) unless ``OTEL_SERVICE_NAME`` does.
    """

    def decorate(main: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(main)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            configure_tracing(service)
            try:
                return main(*args, **kwargs)
            finally:
                shutdown_tracing()

        return run

    return decorate
