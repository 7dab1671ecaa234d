"""``/v1/escrows/{id}/settle|cancel``: as the requester, by the agent whose spend it is
or an admin (Escrow's rules apply: a refusal is 409 ``contract_revert``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from escrowkit.coordinator import ApiKey
from escrowkit.service import models as m
from escrowkit.service import wire
from escrowkit.service.auth import backend, require
from escrowkit.service.backend import Backend
from escrowkit.service.errors import responses
from escrowkit.service.openapi import StrictJsonRoute
from escrowkit.service.queries import own_escrow

__all__ = ["router"]

router = APIRouter(tags=["escrows"], route_class=StrictJsonRoute)

Settler = Annotated[ApiKey, Depends(require("agent", "admin"))]


@router.post(
    "/v1/escrows/{escrow_id}/settle",
    operation_id="settle_escrow",
    summary="Release a funded escrow to its provider",
    response_model=m.SpendOut,
    responses=responses(400, 401, 403, 404, 409, 503),
)
async def settle(
    escrow_id: str, key: Settler, service: Annotated[Backend, Depends(backend)]
) -> m.SpendOut:
    row = await own_escrow(service, key, escrow_id)
    return wire.spend(await service.call(service.coordinator.settle, row.escrow_id))


@router.post(
    "/v1/escrows/{escrow_id}/cancel",
    operation_id="cancel_escrow",
    summary="Cancel an escrow (a funded one only after its deadline, in its dispute window)",
    response_model=m.SpendOut,
    responses=responses(400, 401, 403, 404, 409, 503),
)
async def cancel(
    escrow_id: str, key: Settler, service: Annotated[Backend, Depends(backend)]
) -> m.SpendOut:
    row = await own_escrow(service, key, escrow_id)
    return wire.spend(await service.call(service.coordinator.cancel, row.escrow_id))
