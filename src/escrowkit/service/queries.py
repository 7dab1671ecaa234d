"""What the HTTP routes and the MCP tools both ask, with the key's limits applied: an
agent key sees only its own spends, escrows, budget and scopes."""

from __future__ import annotations

from escrowkit.coordinator import AgentConfig, ApiKey, Reservation
from escrowkit.service import models as m
from escrowkit.service import wire
from escrowkit.service.backend import Backend
from escrowkit.service.errors import ApiError

__all__ = ["balances", "me", "own_escrow", "own_spend", "scope_paths"]


async def own_spend(service: Backend, key: ApiKey, reservation_id: str) -> Reservation:
    """The spend, if ``key`` may see it (another agent's is a 404, as if it did not exist)."""
    row = await service.call(service.coordinator.reservation, reservation_id)
    if key.role == "agent" and row.agent_id != key.agent_id:
        raise ApiError(404, "not_found", f"no reservation {reservation_id!r}")
    return row


async def own_escrow(service: Backend, key: ApiKey, escrow_id: str) -> Reservation:
    """The spend of ``escrow_id``, if ``key`` may act on it (another agent's is a 404)."""
    row = await service.call(service.coordinator.spend_for_escrow, escrow_id)
    if key.role == "agent" and row.agent_id != key.agent_id:
        raise ApiError(404, "not_found", f"no spend of this key has escrow {escrow_id}")
    return row


def scope_paths(config: AgentConfig) -> set[str]:
    """The scopes an agent's spends charge without a workflow: the root and each prefix
    of its path (DESIGN.md section 8)."""
    segments = config.path.split("/")
    return {""} | {"/".join(segments[: n + 1]) for n in range(len(segments))}


async def balances(service: Backend, key: ApiKey, prefix: str = "") -> list[m.BalanceOut]:
    """Scope balances under ``prefix`` (an agent key: only the scopes it spends from)."""
    rows = await service.call(service.coordinator.balances, prefix)
    if key.role == "agent":
        assert key.agent_id is not None
        agents = await service.call(lambda: service.coordinator.agents)
        config = agents.get(key.agent_id)
        mine = scope_paths(config) if config is not None else {""}
        rows = [row for row in rows if row.scope in mine]
    return [wire.balance(row) for row in rows]


async def me(service: Backend, key: ApiKey) -> m.MeOut:
    if key.role != "agent" or key.agent_id is None:
        raise ApiError(403, "forbidden", "only an agent key has a budget of its own")
    budget = await service.call(service.coordinator.agent_budget, key.agent_id)
    return wire.me(budget, await balances(service, key))
