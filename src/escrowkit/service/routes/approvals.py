"""``/v1/approvals``: spends above an agent's threshold wait here for a person (an
approver or admin key); agents may look at their own."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query

from escrowkit.coordinator import MAX_PAGE, ApiKey, ApprovalStatus
from escrowkit.service import models as m
from escrowkit.service import wire
from escrowkit.service.auth import Caller, backend, own_agent, require
from escrowkit.service.backend import Backend
from escrowkit.service.errors import responses
from escrowkit.service.openapi import StrictJsonRoute

__all__ = ["router"]

router = APIRouter(tags=["approvals"], route_class=StrictJsonRoute)

ApprovalStatusQuery = Literal["pending", "approved", "denied", "rejected", "expired"]
Approver = Annotated[ApiKey, Depends(require("approver", "admin"))]


@router.get(
    "/v1/approvals",
    operation_id="list_approvals",
    summary="Approvals, newest first",
    response_model=m.ApprovalList,
    responses=responses(400, 401, 404, 503),
)
async def list_approvals(
    key: Caller,
    service: Annotated[Backend, Depends(backend)],
    status: ApprovalStatusQuery | None = None,
    agent: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    after: str | None = None,
) -> m.ApprovalList:
    """``status=pending``: what waits for a decision now (an expired one is ``EXPIRED``)."""
    page = await service.call(
        service.coordinator.approvals,
        None if status is None else ApprovalStatus(status.upper()),
        agent_id=own_agent(key, agent),
        after=after,
        limit=limit,
    )
    return m.ApprovalList(data=[wire.approval(a) for a in page.data], next=page.next)


@router.post(
    "/v1/approvals/{approval_id}/approve",
    operation_id="approve_spend",
    summary="Approve a pending spend",
    response_model=m.SpendResultOut,
    responses=responses(400, 401, 403, 404, 409, 503),
)
async def approve(
    approval_id: str,
    key: Approver,
    service: Annotated[Backend, Depends(backend)],
    body: Annotated[m.ApproveIn | None, Body()] = None,
) -> m.SpendResultOut:
    """Every check runs again first; if one fails the result is DENIED and the approval
    closes. Approving it again returns the same result (the same escrow): safe to retry.
    The approver recorded is the key's name (``key:<id>`` without one)."""
    note = body.note if body is not None else ""
    result = await service.call(
        service.coordinator.approve_spending, approval_id, key.label, note=note
    )
    return wire.spend_result(result)


@router.post(
    "/v1/approvals/{approval_id}/reject",
    operation_id="reject_spend",
    summary="Reject a pending spend",
    response_model=m.ApprovalOut,
    responses=responses(400, 401, 403, 404, 409, 503),
)
async def reject(
    approval_id: str,
    body: m.RejectIn,
    key: Approver,
    service: Annotated[Backend, Depends(backend)],
) -> m.ApprovalOut:
    """The closed approval; 409 ``approval_closed`` when it was no longer pending."""
    coordinator = service.coordinator
    await service.call(coordinator.reject_spending, approval_id, body.reason, approver=key.label)
    return wire.approval(await service.call(coordinator.approval, approval_id))
