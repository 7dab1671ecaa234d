"""The reference scenario, end to end on an embedded chain (what ``escrowkit demo`` runs).

Real compiled contracts on an in-process EVM: a 1,000 USDC budget shared by three agents.
Research spends 25 (approved and funded), data spends 150 (over its approval threshold,
so it waits; a person approves it and it is funded), research tries 150 (over its
per-transaction limit: denied), compute's spend hits an injected network failure between
creating and funding its escrow (the escrow is cancelled on-chain and nothing is
counted), research's escrow is settled to the provider, and the report shows 175 spent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from escrowkit.contracts.stack import Stack, deploy_stack
from escrowkit.coordinator import (
    AgentConfig,
    BudgetCoordinator,
    BudgetReport,
    SpendRequest,
    SpendResult,
)
from escrowkit.core.errors import ChainError
from escrowkit.evm.chain import Chain

if TYPE_CHECKING:
    from escrowkit.contracts.token import TokenClient
    from escrowkit.coordinator import Alert

__all__ = ["DemoOutcome", "DemoStep", "run_demo"]


@dataclass(frozen=True)
class DemoStep:
    """One thing that happened: who asked, what for, and the result."""

    title: str
    result: SpendResult | None = None
    note: str = ""


@dataclass
class DemoOutcome:
    stack: Stack
    coordinator: BudgetCoordinator
    steps: list[DemoStep] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    report: BudgetReport | None = None


def run_demo(on_step: Callable[[DemoStep, TokenClient], Any] | None = None) -> DemoOutcome:
    """Run the scenario; ``on_step`` sees each step as it happens (for live output)."""
    chain = Chain.embedded()
    treasury, research, data, compute, provider = chain.accounts[:5]
    stack = _funded_stack(chain, treasury)
    usdc = stack.token
    coordinator = BudgetCoordinator(stack, treasury=treasury, total_budget=usdc.units("1000"))
    outcome = DemoOutcome(stack=stack, coordinator=coordinator)
    coordinator.on_alert(outcome.alerts.append)

    def step(title: str, result: SpendResult | None = None, note: str = "") -> SpendResult | None:
        made = DemoStep(title, result, note)
        outcome.steps.append(made)
        if on_step is not None:
            on_step(made, usdc)
        return result

    _register_agents(coordinator, usdc, research, data, compute)

    first = step(
        "research-agent buys a dataset for 25 USDC",
        coordinator.agent("research-agent").purchase_service(
            provider, usdc.units("25"), "market dataset"
        ),
    )
    pending = step(
        "data-agent asks for 150 USDC of labelling (above its 100 USDC approval threshold)",
        coordinator.request_spending(
            SpendRequest("data-agent", usdc.units("150"), provider, "labelling batch")
        ),
    )
    assert pending is not None and pending.approval_id is not None
    step(
        "a person approves the data-agent's request",
        coordinator.approve_spending(pending.approval_id, approver="ops@example.com"),
    )
    step(
        "research-agent tries 150 USDC (its per-transaction limit is 100)",
        coordinator.agent("research-agent").purchase_service(
            provider, usdc.units("150"), "premium dataset"
        ),
    )
    failed = _with_injected_fund_failure(
        stack,
        lambda: coordinator.agent("compute-agent").purchase_service(
            provider, usdc.units("120"), "GPU hours"
        ),
    )
    assert failed.reservation_id is not None
    escrow_state = stack.escrow.get(coordinator.reservation(failed.reservation_id).escrow_id).state
    step(
        "compute-agent buys 120 USDC of GPU hours; the network fails between create and fund",
        failed,
        note=f"its escrow on-chain: {escrow_state.name}",
    )
    assert first is not None and first.escrow_id is not None
    coordinator.settle(first.escrow_id)
    settled = stack.escrow.get(first.escrow_id).state
    step(
        "research-agent's provider delivered: the escrow is settled",
        note=f"escrow {first.escrow_id[:10]}… is {settled.name}; provider holds "
        f"{usdc.format(usdc.balance_of(provider))}",
    )
    outcome.report = coordinator.report()
    return outcome


def _funded_stack(chain: Chain, treasury: str) -> Stack:
    """The contracts, and 2,000 USDC in the treasury."""
    stack = deploy_stack(chain, owner=treasury)
    usdc = stack.token
    # The treasury holds the money but has approved nothing yet: the coordinator takes
    # the create -> approve -> fund path, which is where a failure can strand an escrow.
    usdc.mint(treasury, usdc.units("2000"), sender=treasury)
    return stack


def _register_agents(
    coordinator: BudgetCoordinator, usdc: TokenClient, research: str, data: str, compute: str
) -> None:
    """The three agents and their per-transaction, daily and approval limits."""
    for agent_id, address, limits in (
        ("research-agent", research, ("100", "300", "50")),
        ("data-agent", data, ("200", "500", "100")),
        ("compute-agent", compute, ("500", "1000", "200")),
    ):
        per_tx, daily, approval = (usdc.units(x) for x in limits)
        coordinator.register_agent(
            AgentConfig(agent_id, agent_id, address, per_tx, daily, approval)
        )


def _with_injected_fund_failure(stack: Stack, spend: Callable[[], SpendResult]) -> SpendResult:
    """Run ``spend`` with the next ``Escrow.fund`` failing like a dropped connection."""
    escrow = stack.escrow
    real_fund = escrow.fund

    def failing_fund(*args: Any, **kwargs: Any) -> Any:
        escrow.fund = real_fund  # type: ignore[method-assign]
        raise ChainError("injected fault: connection reset before Escrow.fund was sent")

    escrow.fund = failing_fund  # type: ignore[method-assign]
    try:
        return spend()
    finally:
        escrow.fund = real_fund  # type: ignore[method-assign]
