"""The reference scenario of the mission, in treasury mode and in pool mode.

Budget 1,000 USDC. research-agent spends 25 (auto-approved, funded on-chain); data-agent
asks for 150 (above its 100 threshold: waits), a person approves (funded); the report
shows 175 spent, 825 remaining. Every step is checked in the ledger and on the chain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from coordinator_helpers import BUDGET, USDC, Team, assert_escrowed

from escrowkit.coordinator import (
    AgentConfig,
    BudgetCoordinator,
    ReservationStatus,
    SpendRequest,
    SpendStatus,
)

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack


BOTH_MODES = pytest.mark.parametrize("mode", ["treasury", "pool"], indirect=True)


@BOTH_MODES
def test_reference_scenario(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, mode: str
) -> None:
    token = stack.token
    payer = team.treasury if mode == "treasury" else stack.pool.address
    payer_before = token.balance_of(payer)
    escrow_before = token.balance_of(stack.escrow.address)

    research = coordinator.agent("research-agent").purchase_service(
        team.provider, 25 * USDC, "literature search"
    )
    assert research.status is SpendStatus.APPROVED and research.approved
    assert research.remaining_daily == 275 * USDC
    assert research.remaining_total == 975 * USDC
    assert_escrowed(stack, research, 25 * USDC, team.provider)
    assert stack.escrow.get(research.escrow_id or "").requester == payer
    assert research.tx_hashes  # the funding transaction(s) are on record

    data = coordinator.request_spending(
        SpendRequest("data-agent", 150 * USDC, team.provider, "training data")
    )
    assert data.status is SpendStatus.PENDING_APPROVAL
    assert data.approval_id is not None and data.escrow_id is None
    assert "approval threshold 100.00 USDC" in data.reason
    pending = coordinator.report()
    assert list(pending.pending_approvals) == [data.approval_id]
    assert pending.pending_approvals[data.approval_id].amount == 150 * USDC
    assert pending.total_spent == 25 * USDC  # an approval request reserves nothing

    approved = coordinator.approve_spending(data.approval_id, approver="cfo@example.com")
    assert approved.status is SpendStatus.APPROVED
    assert approved.approval_id == data.approval_id
    assert_escrowed(stack, approved, 150 * USDC, team.provider)

    report = coordinator.report()
    assert (report.total_budget, report.total_spent, report.reserved, report.remaining) == (
        BUDGET,
        175 * USDC,
        0,
        825 * USDC,
    )
    assert report.pending_approvals == {}
    assert report.by_agent["research-agent"].spent == 25 * USDC
    assert report.by_agent["research-agent"].remaining_today == 275 * USDC
    assert report.by_agent["data-agent"].spent == 150 * USDC
    assert report.by_agent["data-agent"].spent_today == 150 * USDC
    assert report.by_agent["compute-agent"].spent == 0

    # The chain agrees with the ledger, to the base unit.
    assert token.balance_of(payer) == payer_before - 175 * USDC
    assert token.balance_of(stack.escrow.address) == escrow_before + 175 * USDC
    if mode == "pool":
        assert stack.pool.net_spent() == 175 * USDC
        assert stack.pool.agent(team.data).window_spent == 150 * USDC
    committed = coordinator.reservations(ReservationStatus.COMMITTED)
    assert sorted(r.amount for r in committed) == [25 * USDC, 150 * USDC]
    events = [e.event for e in coordinator.audit_log()]
    assert events.count("committed") == 2 and "approval_requested" in events


@BOTH_MODES
def test_settle_and_refund_keep_the_ledger_equal_to_the_chain(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, mode: str
) -> None:
    agent = coordinator.agent("compute-agent")
    kept = agent.purchase_service(team.provider, 60 * USDC, "gpu hours")
    refunded = agent.purchase_service(team.provider, 40 * USDC, "gpu hours")
    by_provider = agent.purchase_service(team.provider, 30 * USDC, "gpu hours")
    assert kept.approved and refunded.approved and by_provider.approved
    assert kept.escrow_id and refunded.escrow_id and by_provider.escrow_id

    provider_before = stack.token.balance_of(team.provider)
    settled = coordinator.settle(kept.escrow_id)
    assert settled.status is ReservationStatus.SETTLED
    assert stack.token.balance_of(team.provider) == provider_before + 60 * USDC

    # The requester may cancel a funded escrow between its deadline and the end of its
    # dispute window (escrow_ttl 86,400 s, dispute_window 3,600 s by default).
    stack.chain.time_travel(86_400)
    cancelled = coordinator.cancel(refunded.escrow_id)
    assert cancelled.status is ReservationStatus.REFUNDED
    assert stack.escrow.get(refunded.escrow_id).state.name == "CANCELLED"

    # The provider walks away from the third on the Escrow itself; sync notices.
    stack.escrow.cancel(by_provider.escrow_id, sender=team.provider)
    summary = coordinator.sync()
    assert summary.refunded == (by_provider.reservation_id,)
    assert coordinator.reservation(by_provider.reservation_id or "").status is (
        ReservationStatus.REFUNDED
    )

    report = coordinator.report()
    assert report.total_spent == 60 * USDC  # net of both refunds
    assert report.remaining == BUDGET - 60 * USDC
    assert report.by_agent["compute-agent"].spent == 60 * USDC
    if mode == "pool":
        # Refunds landed in the pool; reconcile credited the provider's cancel back.
        assert stack.pool.net_spent() == 60 * USDC
        assert stack.token.balance_of(stack.pool.address) == BUDGET - 60 * USDC


@pytest.mark.parametrize("mode", ["pool"], indirect=True)
def test_a_pool_spend_funds_the_escrow_it_reserved(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In pool mode the escrow id depends on the agent's address. The agent gets a new
    address between the reservation and the funding (another thread registered it):
    the spend must still fund the escrow id the ledger holds, for the address it was
    reserved with, or the ledger would count an escrow that does not exist."""
    spending = coordinator._spending  # phase 2 is Spending.execute
    execute = spending.execute
    moved = AgentConfig(
        "research-agent", "Research", team.other_provider, 100 * USDC, 300 * USDC, 0
    )

    def address_changed_meanwhile(*args: Any, **kwargs: Any) -> Any:
        coordinator.register_agent(moved)
        return execute(*args, **kwargs)

    monkeypatch.setattr(spending, "execute", address_changed_meanwhile)
    result = coordinator.agent("research-agent").purchase_service(team.provider, 25 * USDC, "x")
    assert result.approved, result.reason
    row = coordinator.reservation(result.reservation_id or "")
    assert_escrowed(stack, result, 25 * USDC, team.provider)
    record = stack.pool.spend_record(row.escrow_id)
    assert record is not None and record.agent == team.research
