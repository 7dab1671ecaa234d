"""Reading the treasury: ``/v1/me``, ``/v1/report``, ``/v1/balances``, ``/v1/audit``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from escrowkit.coordinator import MAX_PAGE
from escrowkit.service import models as m
from escrowkit.service import queries, wire
from escrowkit.service.auth import Caller, backend, own_agent
from escrowkit.service.backend import Backend
from escrowkit.service.errors import responses
from escrowkit.service.openapi import StrictJsonRoute

__all__ = ["router"]

router = APIRouter(tags=["reading"], route_class=StrictJsonRoute)
Service = Annotated[Backend, Depends(backend)]


@router.get(
    "/v1/me",
    operation_id="get_me",
    summary="The agent's limits and what it has used today and this hour",
    response_model=m.MeOut,
    responses=responses(401, 403, 503),
)
async def get_me(key: Caller, service: Service) -> m.MeOut:
    """For agent keys (an approver or admin key has no budget of its own: 403)."""
    return await queries.me(service, key)


@router.get(
    "/v1/report",
    operation_id="get_report",
    summary="The budget report",
    response_model=m.ReportOut,
    responses=responses(401, 503),
)
async def get_report(key: Caller, service: Service) -> m.ReportOut:
    """``report()``'s figures. An agent key: the treasury's and the categories' figures,
    and its own agent, approvals, alerts and scopes only."""
    report = await service.call(service.coordinator.report)
    scopes = await queries.balances(service, key)
    return wire.report(report, scopes, key.agent_id if key.role == "agent" else None)


@router.get(
    "/v1/balances",
    operation_id="list_balances",
    summary="Scope balances",
    response_model=m.BalanceList,
    responses=responses(400, 401, 503),
)
async def list_balances(key: Caller, service: Service, prefix: str = "") -> m.BalanceList:
    """``balances(prefix)``: every scope with a budget at or under ``prefix``, in path
    order (the root, the total budget, first). One page."""
    return m.BalanceList(data=await queries.balances(service, key, prefix), next=None)


@router.get(
    "/v1/audit",
    operation_id="list_audit",
    summary="The audit log, oldest first",
    response_model=m.AuditList,
    responses=responses(400, 401, 503),
)
async def list_audit(
    key: Caller,
    service: Service,
    after: Annotated[int, Query(ge=0, description="The ``next`` of the page before.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
) -> m.AuditList:
    """Append-only, in the order it was written. An agent key: its own entries."""
    page = await service.call(
        service.coordinator.audit_page,
        after=after,
        agent_id=own_agent(key, None),
        limit=limit,
    )
    return m.AuditList(data=[wire.audit_entry(e) for e in page.data], next=page.next)
