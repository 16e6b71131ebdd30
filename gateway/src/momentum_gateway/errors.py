"""Errors only the gateway answers with (the shared ones are in ``momentum_shared.errors``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from momentum_shared.errors import ProblemError


class RequestTimeout(ProblemError):
    """408; the connection is closed, since the rest of the body may still be on its way."""

    status = 408
    title = "Request Timeout"

    def __init__(
        self, detail: str | None = None, *, extra: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(detail, headers={"Connection": "close"}, extra=extra)
