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

from escrowkit import (
    AgentConfig,
    Alert,
    BudgetCoordinator,
    BudgetReport,
    Chain,
    SpendRequest,
    SpendResult,
    Stack,
    deploy_stack,
)
from escrowkit.errors import ChainError

if TYPE_CHECKING:
    from escrowkit import TokenClient

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


#: Called with a step's title before it runs (so that what it logs follows its heading).
OnBegin = Callable[[str], Any]
#: Called with each step once it has run.
OnStep = Callable[[DemoStep, "TokenClient"], Any]


class _Steps:
    """Runs the scenario's steps in order, telling the listeners before and after each."""

    def __init__(self, outcome: DemoOutcome, on_step: OnStep | None, on_begin: OnBegin | None):
        self.outcome, self.on_step, self.on_begin = outcome, on_step, on_begin

    def run(
        self,
        title: str,
        action: Callable[[], SpendResult | None],
        note: Callable[[SpendResult | None], str] | None = None,
    ) -> SpendResult | None:
        if self.on_begin is not None:
            self.on_begin(title)
        result = action()
        made = DemoStep(title, result, note(result) if note else "")
        self.outcome.steps.append(made)
        if self.on_step is not None:
            self.on_step(made, self.outcome.stack.token)
        return result


def run_demo(on_step: OnStep | None = None, on_begin: OnBegin | None = None) -> DemoOutcome:
    """Run the scenario; ``on_begin`` hears each step's title before it runs and
    ``on_step`` sees it once done (for live output)."""
    chain = Chain.embedded()
    treasury, research, data, compute, provider = chain.accounts[:5]
    stack = _funded_stack(chain, treasury)
    usdc = stack.token
    coordinator = BudgetCoordinator(stack, treasury=treasury, total_budget=usdc.units("1000"))
    outcome = DemoOutcome(stack=stack, coordinator=coordinator)
    coordinator.on_alert(outcome.alerts.append)
    _register_agents(coordinator, usdc, research, data, compute)
    steps = _Steps(outcome, on_step, on_begin)

    def buy(agent_id: str, amount: str, purpose: str) -> Callable[[], SpendResult]:
        return lambda: coordinator.agent(agent_id).purchase_service(
            provider, usdc.units(amount), purpose
        )

    first = steps.run(
        "research-agent buys a dataset for 25 USDC", buy("research-agent", "25", "market dataset")
    )
    pending = steps.run(
        "data-agent asks for 150 USDC of labelling (above its 100 USDC approval threshold)",
        lambda: coordinator.request_spending(
            SpendRequest("data-agent", usdc.units("150"), provider, "labelling batch")
        ),
    )
    assert pending is not None and pending.approval_id is not None
    approval_id = pending.approval_id
    steps.run(
        "a person approves the data-agent's request",
        lambda: coordinator.approve_spending(approval_id, approver="ops@example.com"),
    )
    steps.run(
        "research-agent tries 150 USDC (its per-transaction limit is 100)",
        buy("research-agent", "150", "premium dataset"),
    )
    steps.run(
        "compute-agent buys 120 USDC of GPU hours; the network fails between create and fund",
        lambda: _with_injected_fund_failure(stack, buy("compute-agent", "120", "GPU hours")),
        note=lambda failed: f"its escrow on-chain: {_escrow_state(coordinator, failed)}",
    )
    assert first is not None and first.escrow_id is not None
    escrow_id = first.escrow_id
    steps.run(
        "research-agent's provider delivered: the escrow is settled",
        lambda: _settled(coordinator, escrow_id),
        note=lambda _: (
            f"escrow {escrow_id[:10]}… is {stack.escrow.get(escrow_id).state.name}; "
            f"provider holds {usdc.format(usdc.balance_of(provider))}"
        ),
    )
    outcome.report = coordinator.report()
    return outcome


def _settled(coordinator: BudgetCoordinator, escrow_id: str) -> None:
    coordinator.settle(escrow_id)


def _escrow_state(coordinator: BudgetCoordinator, result: SpendResult | None) -> str:
    assert result is not None and result.reservation_id is not None
    row = coordinator.reservation(result.reservation_id)
    stack = coordinator.stack
    assert stack is not None
    return stack.escrow.get(row.escrow_id).state.name


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
