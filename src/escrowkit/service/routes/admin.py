"""Administration (admin keys): freeze, agents, budgets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from escrowkit.coordinator import AgentConfig, ApiKey
from escrowkit.service import models as m
from escrowkit.service import wire
from escrowkit.service.auth import backend, require
from escrowkit.service.backend import Backend
from escrowkit.service.errors import ApiError, responses
from escrowkit.service.openapi import StrictJsonRoute

__all__ = ["router"]

router = APIRouter(tags=["administration"], route_class=StrictJsonRoute)
Admin = Annotated[ApiKey, Depends(require("admin"))]
Service = Annotated[Backend, Depends(backend)]


async def _frozen(service: Backend) -> m.FrozenOut:
    report = await service.call(service.coordinator.report)
    return m.FrozenOut(frozen=report.frozen is not None, reason=report.frozen)


@router.post(
    "/v1/freeze",
    operation_id="freeze",
    summary="Deny every spend and approval, in every process, until unfreeze",
    response_model=m.FrozenOut,
    responses=responses(400, 401, 403, 503),
)
async def freeze(body: m.FreezeIn, key: Admin, service: Service) -> m.FrozenOut:
    await service.call(service.coordinator.freeze, body.reason)
    return await _frozen(service)


@router.post(
    "/v1/unfreeze",
    operation_id="unfreeze",
    summary="Allow spending again",
    response_model=m.FrozenOut,
    responses=responses(401, 403, 503),
)
async def unfreeze(key: Admin, service: Service) -> m.FrozenOut:
    await service.call(service.coordinator.unfreeze)
    return await _frozen(service)


@router.post(
    "/v1/agents",
    operation_id="register_agent",
    summary="Register an agent, or update its limits",
    response_model=m.AgentOut,
    responses=responses(400, 401, 403, 503),
)
async def register_agent(body: m.AgentIn, key: Admin, service: Service) -> m.AgentOut:
    """With ``parent``, a delegated child of that agent (``spawn_agent``: its limits may
    only narrow the parent's, and what it leaves null it inherits). In pool mode the
    agent's limits are also written on-chain (the pool owner's key)."""
    config = AgentConfig(
        id=body.id,
        name=body.name if body.name is not None else body.id,
        address=body.address,
        spending_limit=wire.base_units(body.spending_limit),
        daily_limit=wire.base_units(body.daily_limit),
        requires_approval=wire.base_units(body.requires_approval),
        hourly_limit=wire.optional_base_units(body.hourly_limit),
        categories=None if body.categories is None else tuple(body.categories),
        allowed_providers=None if body.allowed_providers is None else tuple(body.allowed_providers),
        scope=body.scope,
    )
    coordinator = service.coordinator
    if body.parent is not None:
        return wire.agent(await service.call(coordinator.spawn_agent, body.parent, config))
    return wire.agent(await service.call(coordinator.register_agent, config))


@router.delete(
    "/v1/agents/{agent_id}",
    operation_id="remove_agent",
    summary="Remove an agent and its descendants (their spends are denied from now on)",
    response_model=m.RemovedOut,
    responses=responses(400, 401, 403, 404, 503),
)
async def remove_agent(agent_id: str, key: Admin, service: Service) -> m.RemovedOut:
    """Their open approvals close; what they already funded is untouched. Registering an
    id again re-enables it. ``removed`` is empty when the agent was already removed."""
    removed = await service.call(service.coordinator.remove_agent, agent_id)
    return m.RemovedOut(removed=list(removed))


@router.put(
    "/v1/budgets/{scope:path}",
    operation_id="set_budget",
    summary="Set a budget: total, category:<name>, or a scope path",
    response_model=m.BudgetOut,
    responses=responses(400, 401, 403, 404, 503),
)
async def set_budget(scope: str, body: m.BudgetIn, key: Admin, service: Service) -> m.BudgetOut:
    """``total``: the total budget (``set_total_budget``, never null);
    ``category:<name>``: a category's lifetime budget (null removes it); any other value
    is a scope path (DESIGN.md section 8, ``set_budget``; null removes it)."""
    coordinator = service.coordinator
    amount = wire.optional_base_units(body.amount)
    if scope == "total":
        if amount is None:
            raise ApiError(400, "invalid_request", "amount: the total budget cannot be removed")
        await service.call(coordinator.set_total_budget, amount)
    elif scope.startswith("category:"):
        await service.call(coordinator.set_category_budget, scope.removeprefix("category:"), amount)
    else:
        await service.call(coordinator.set_budget, scope, amount)
    return m.BudgetOut(scope=scope, amount=None if amount is None else str(amount))
