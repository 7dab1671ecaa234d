"""``/healthz`` (no key) and ``/metrics`` (Prometheus text, admin key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from escrowkit.coordinator import ApiKey
from escrowkit.service import models as m
from escrowkit.service.auth import require
from escrowkit.service.errors import responses
from escrowkit.service.metrics import CONTENT_TYPE
from escrowkit.service.openapi import StrictJsonRoute

__all__ = ["router"]

router = APIRouter(tags=["system"], route_class=StrictJsonRoute)


@router.get(
    "/healthz", operation_id="health", summary="Is the service up", response_model=m.HealthOut
)
async def health() -> m.HealthOut:
    return m.HealthOut(status="ok")


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format",
            "content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
        },
        **responses(401, 403),
    },
)
async def metrics(request: Request, key: Annotated[ApiKey, Depends(require("admin"))]) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)
