"""``arequest_spending``: many spends in flight on one event loop, the same decisions as
the blocking call, and an executor whose blocking ``fund`` was replaced never stalls the
loop (the replacement runs in a worker thread, as it would for the blocking call)."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import pytest
from coordinator_helpers import USDC, Team, assert_escrowed

from escrowkit.coordinator import (
    AgentConfig,
    BudgetCoordinator,
    NoopExecutor,
    SpendRequest,
    SpendStatus,
)
from escrowkit.errors import InvalidRequest

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack
    from escrowkit.coordinator.executors import PlannedSpend

PROVIDER = "0x" + "ab" * 20


@pytest.mark.parametrize("mode", ["treasury", "pool"], indirect=True)
def test_spends_in_flight_on_one_loop_are_decided_like_blocking_ones(
    coordinator: BudgetCoordinator, stack: Stack, team: Team
) -> None:
    requests = [
        SpendRequest("research-agent", (n + 1) * USDC, team.provider, f"async {n}")
        for n in range(8)
    ]

    async def all_at_once() -> list:
        return await asyncio.gather(*(coordinator.arequest_spending(r) for r in requests))

    results = asyncio.run(all_at_once())
    assert [r.status for r in results] == [SpendStatus.APPROVED] * 8
    assert len({r.escrow_id for r in results}) == 8
    for request, result in zip(requests, results, strict=True):
        assert_escrowed(stack, result, request.amount, team.provider)
    # Over the approval threshold (50 USDC): the same decision as the blocking call.
    big = SpendRequest("research-agent", 60 * USDC, team.provider, "big")
    assert asyncio.run(coordinator.arequest_spending(big)).status is SpendStatus.PENDING_APPROVAL
    assert coordinator.report().total_spent == sum(r.amount for r in requests)


def test_an_empty_purpose_is_refused_by_the_coroutine_too() -> None:
    coordinator = BudgetCoordinator(None, total_budget=100 * USDC, executor=NoopExecutor())
    coordinator.register_agent(AgentConfig("a", "A", PROVIDER, USDC, USDC, USDC))
    other = "0x" + "cd" * 20
    with pytest.raises(InvalidRequest, match="purpose"):
        asyncio.run(coordinator.arequest_spending(SpendRequest("a", USDC, other, " ")))


class _Gated(NoopExecutor):
    """Overrides the blocking ``fund`` and keeps the inherited ``afund``."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def fund(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        if spend.amount == 7:
            self.entered.set()
            assert self.gate.wait(10), "gate never opened"
        super().fund(spend, tx_hashes)


@pytest.mark.parametrize("wrap", ["subclass", "instance"])
def test_a_replaced_blocking_fund_runs_off_the_loop(wrap: str) -> None:
    executor = _Gated() if wrap == "subclass" else NoopExecutor()
    if wrap == "instance":  # a tool or test wrapping the method on the object
        gated = _Gated()
        gated.fund  # noqa: B018 (bound to the gated one's events)
        executor.fund = gated.fund  # type: ignore[method-assign]
    else:
        gated = executor  # type: ignore[assignment]
    coordinator = BudgetCoordinator(None, total_budget=100 * USDC, executor=executor)
    coordinator.register_agent(AgentConfig("a", "A", PROVIDER, USDC, USDC, USDC))
    other = "0x" + "cd" * 20

    async def scenario() -> list[SpendStatus]:
        held = asyncio.ensure_future(
            coordinator.arequest_spending(SpendRequest("a", 7, other, "held"))
        )
        await asyncio.get_running_loop().run_in_executor(None, gated.entered.wait, 10)
        # The loop is free while the first spend's fund blocks in a worker thread.
        quick = await coordinator.arequest_spending(SpendRequest("a", 8, other, "quick"))
        gated.gate.set()
        return [quick.status, (await held).status]

    assert asyncio.run(scenario()) == [SpendStatus.APPROVED, SpendStatus.APPROVED]
    assert gated.entered.is_set()
