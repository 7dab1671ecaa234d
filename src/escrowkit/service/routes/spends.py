"""``/v1/spends``: an agent asks to spend; anyone with a key reads (agents their own)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query

from escrowkit.coordinator import MAX_PAGE, ApiKey, ReservationStatus, SpendRequest
from escrowkit.service import models as m
from escrowkit.service import wire
from escrowkit.service.auth import Caller, backend, own_agent, require
from escrowkit.service.backend import Backend
from escrowkit.service.errors import responses
from escrowkit.service.openapi import StrictJsonRoute
from escrowkit.service.queries import own_spend

__all__ = ["router", "spend_request"]

router = APIRouter(tags=["spends"], route_class=StrictJsonRoute)

SpendStatusQuery = Literal["pending", "committed", "settled", "voided", "refunded"]


def spend_request(
    agent_id: str,
    amount: int | str,
    provider: str,
    purpose: str,
    category: str | None,
    workflow: str | None,
    idempotency_key: str | None,
) -> SpendRequest:
    """The library's request; it validates everything (InvalidRequest: a 400)."""
    return SpendRequest(
        agent_id=agent_id,
        amount=wire.base_units(amount),
        provider=provider,
        purpose=purpose,
        category=category,
        idempotency_key=idempotency_key,
        workflow=workflow,
    )


@router.post(
    "/v1/spends",
    operation_id="create_spend",
    summary="Ask to spend, as the key's agent",
    response_model=m.SpendResultOut,
    responses=responses(400, 401, 403, 409, 503),
)
async def create_spend(
    body: m.SpendIn,
    key: Annotated[ApiKey, Depends(require("agent"))],
    service: Annotated[Backend, Depends(backend)],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="A retry with the same key and body returns the first result.",
        ),
    ] = None,
) -> m.SpendResultOut:
    """The decision: a denial or a wait for approval is a 200 like an approval (``status``
    and ``code`` say which). The agent is the key's; the body cannot name one."""
    assert key.agent_id is not None
    request = spend_request(
        key.agent_id,
        body.amount,
        body.provider,
        body.purpose,
        body.category,
        body.workflow,
        idempotency_key,
    )
    result = await service.spend(request)
    return wire.spend_result(result)


@router.get(
    "/v1/spends/{reservation_id}",
    operation_id="get_spend",
    summary="One spend",
    response_model=m.SpendOut,
    responses=responses(400, 401, 404, 503),
)
async def get_spend(
    reservation_id: str, key: Caller, service: Annotated[Backend, Depends(backend)]
) -> m.SpendOut:
    return wire.spend(await own_spend(service, key, reservation_id))


@router.get(
    "/v1/spends",
    operation_id="list_spends",
    summary="Spends, newest first",
    response_model=m.SpendList,
    responses=responses(400, 401, 404, 503),
)
async def list_spends(
    key: Caller,
    service: Annotated[Backend, Depends(backend)],
    status: SpendStatusQuery | None = None,
    agent: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    after: Annotated[str | None, Query(description="The ``next`` of the page before.")] = None,
) -> m.SpendList:
    """An agent key sees its own spends (asking for another agent's is a 404)."""
    statuses = () if status is None else (ReservationStatus(status.upper()),)
    page = await service.call(
        service.coordinator.spends,
        *statuses,
        agent_id=own_agent(key, agent),
        after=after,
        limit=limit,
    )
    return m.SpendList(data=[wire.spend(row) for row in page.data], next=page.next)
