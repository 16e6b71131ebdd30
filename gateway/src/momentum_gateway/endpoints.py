"""The gateway's own endpoints (everything proxied is in ``routing.TABLE`` instead)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from momentum_gateway.state import request_gateway_state
from momentum_shared.errors import ServiceUnavailable

router = APIRouter()


@router.get("/openapi.json", include_in_schema=False)
async def openapi_document(request: Request) -> JSONResponse:
    """The whole API: the services' OpenAPI documents merged, paths as the gateway serves them."""
    aggregator = request_gateway_state(request).openapi
    if aggregator is None:
        raise ServiceUnavailable("the gateway is starting")
    document: dict[str, Any] = await aggregator.document()
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=60"})
