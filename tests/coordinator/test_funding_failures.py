"""A spend whose funding fails leaves nothing counted and no escrow holding money.

Treasury mode with no allowance takes the three-step path (create, approve, fund), so a
failure after create leaves an INITIATED escrow: the coordinator must cancel it on-chain,
void the reservation, say why in the audit log and return FAILED with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from coordinator_helpers import BUDGET, USDC, Clock, Team, reference_agents

from escrowkit import Reason
from escrowkit.contracts.escrow import EscrowState
from escrowkit.contracts.stack import deploy_stack
from escrowkit.coordinator import BudgetCoordinator, ReservationStatus, SpendStatus
from escrowkit.errors import ChainError, TransactionTimeout
from hostile import deploy_hostile

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack
    from escrowkit.evm.chain import Chain


@pytest.fixture
def no_allowance(stack: Stack, team: Team, coordinator: BudgetCoordinator) -> None:
    stack.token.approve(stack.escrow.address, 0, sender=team.treasury)


def _assert_nothing_spent(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, result: Any, balance_before: int
) -> None:
    assert result.status is SpendStatus.FAILED and not result.approved
    assert result.code is Reason.FUNDING_FAILED and result.error is not None
    assert result.escrow_id is None
    row = coordinator.reservation(result.reservation_id)
    assert row.status is ReservationStatus.VOIDED
    # On-chain: the escrow was created, then cancelled; no token moved.
    assert stack.escrow.get(row.escrow_id).state is EscrowState.CANCELLED
    assert stack.token.balance_of(team.treasury) == balance_before
    report = coordinator.report()
    assert (report.total_spent, report.reserved, report.remaining) == (0, 0, BUDGET)
    assert report.by_agent["research-agent"].remaining_today == 300 * USDC
    # The audit log says why, on the reservation's own entries.
    voided = [e for e in coordinator.audit_log(reservation_id=row.id) if e.event == "voided"]
    assert len(voided) == 1 and voided[0].detail["reason"] == row.reason
    assert "funding failed" in row.reason and "cancelled" in row.reason


@pytest.mark.usefixtures("no_allowance")
def test_allowance_short_at_fund(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The approve goes through but leaves the allowance one unit short (a concurrent
    change of the treasury's allowance): fund reverts, the escrow is cancelled."""
    approve = stack.token.approve
    monkeypatch.setattr(
        stack.token, "approve", lambda spender, amount, sender: approve(spender, amount - 1, sender)
    )
    before = stack.token.balance_of(team.treasury)
    result = coordinator.agent("research-agent").purchase_service(team.provider, 25 * USDC, "x")
    _assert_nothing_spent(coordinator, stack, team, result, before)
    assert "Escrow.fund" in result.reason
    # The revert that stopped the funding comes as data, with its arguments.
    assert result.error is not None and result.error["name"] == "TokenTransferFailed"
    assert result.error["arguments"]["amount"] == str(25 * USDC)
    assert len(result.tx_hashes) == 3  # create, approve, cancel


@pytest.mark.usefixtures("no_allowance")
def test_balance_short(coordinator: BudgetCoordinator, stack: Stack, team: Team) -> None:
    treasury = team.treasury
    stack.token.transfer(
        team.other_provider, stack.token.balance_of(treasury) - 10 * USDC, treasury
    )
    assert coordinator.check_funds(10 * USDC) is None
    advice = coordinator.check_funds(25 * USDC)
    assert advice is not None and "holds 10.00 USDC, 25.00 USDC needed" in advice
    result = coordinator.agent("research-agent").purchase_service(team.provider, 25 * USDC, "x")
    _assert_nothing_spent(coordinator, stack, team, result, 10 * USDC)
    # The reason says what to do; the revert is still recorded as itself.
    assert result.code is Reason.FUNDING_FAILED and advice in result.reason
    assert result.error is not None and result.error["name"] == "TokenTransferFailed"


@pytest.mark.parametrize("mode", ["pool"], indirect=True)
def test_an_empty_pool_fails_saying_contribute(
    coordinator: BudgetCoordinator, stack: Stack, team: Team
) -> None:
    """The pool holds less than the spend: FAILED funding_failed (never a precondition,
    never DENIED), nothing sent, and the reason says to contribute."""
    stack.pool.withdraw(team.other_provider, stack.pool.spendable(), sender=team.treasury)
    advice = coordinator.check_funds(25 * USDC)
    assert advice is not None and "escrowkit pool contribute" in advice
    result = coordinator.agent("research-agent").purchase_service(team.provider, 25 * USDC, "x")
    assert result.status is SpendStatus.FAILED and result.code is Reason.FUNDING_FAILED
    assert "has 0.00 USDC spendable" in result.reason and "contribute" in result.reason
    assert result.error is not None and result.error["name"] == "InsufficientSpendable"
    assert coordinator.report().total_spent == 0


@pytest.mark.usefixtures("no_allowance")
def test_revert_in_fund(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deadline passes between create and fund: Escrow reverts TooLate."""
    fund = stack.escrow.fund

    def late_fund(escrow_id: bytes, sender: str) -> Any:
        stack.chain.time_travel(coordinator.escrow_ttl + 1)
        return fund(escrow_id, sender)

    monkeypatch.setattr(stack.escrow, "fund", late_fund)
    before = stack.token.balance_of(team.treasury)
    result = coordinator.agent("research-agent").purchase_service(team.provider, 25 * USDC, "x")
    _assert_nothing_spent(coordinator, stack, team, result, before)
    assert "TooLate" in result.reason
    assert result.error is not None and result.error["name"] == "TooLate"


@pytest.mark.usefixtures("no_allowance")
def test_rpc_error_between_create_and_fund(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(escrow_id: bytes, sender: str) -> Any:
        raise ChainError("ConnectionError: https://rpc.example/v3/SECRET-KEY reset by peer")

    monkeypatch.setattr(stack.escrow, "fund", broken)
    before = stack.token.balance_of(team.treasury)
    result = coordinator.agent("research-agent").purchase_service(team.provider, 25 * USDC, "x")
    _assert_nothing_spent(coordinator, stack, team, result, before)
    assert "reset by peer" in result.reason
    assert result.error is not None and result.error["type"] == "ChainError"
    assert "SECRET-KEY" not in result.reason and "SECRET-KEY" not in str(
        result.error
    )  # URLs are cut from reasons and logs
    assert all("SECRET-KEY" not in str(e.detail) for e in coordinator.audit_log())


@pytest.mark.usefixtures("no_allowance")
def test_cancel_fails_too_then_recover_resolves_it(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: Any, **kwargs: Any) -> Any:
        raise ChainError("node unreachable")

    monkeypatch.setattr(stack.escrow, "fund", down)
    monkeypatch.setattr(stack.escrow, "cancel", down)
    result = coordinator.agent("research-agent").purchase_service(team.provider, 25 * USDC, "x")
    assert result.status is SpendStatus.FAILED and result.code is Reason.FUNDING_FAILED
    assert "stays pending until recover()" in result.reason
    row = coordinator.reservation(result.reservation_id or "")
    assert row.status is ReservationStatus.PENDING
    assert stack.escrow.get(row.escrow_id).state is EscrowState.INITIATED
    assert coordinator.report().reserved == 25 * USDC  # still counted: it is unresolved

    monkeypatch.undo()
    summary = coordinator.recover(older_than=0)
    assert summary.voided == (row.id,)
    assert coordinator.reservation(row.id).status is ReservationStatus.VOIDED
    assert stack.escrow.get(row.escrow_id).state is EscrowState.CANCELLED
    assert coordinator.report().reserved == 0


@pytest.mark.usefixtures("no_allowance")
def test_receipt_timeout_after_the_funding_was_mined_counts_the_spend(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception does not prove the transaction failed: the chain decides."""
    fund = stack.escrow.fund

    def mined_but_lost(escrow_id: bytes, sender: str) -> Any:
        receipt = fund(escrow_id, sender)
        raise TransactionTimeout(receipt["transactionHash"].to_0x_hex(), 120.0)

    monkeypatch.setattr(stack.escrow, "fund", mined_but_lost)
    result = coordinator.agent("research-agent").purchase_service(team.provider, 25 * USDC, "x")
    assert result.status is SpendStatus.APPROVED
    assert stack.escrow.get(result.escrow_id or "").state is EscrowState.FUNDED
    assert coordinator.reservation(result.reservation_id or "").status is (
        ReservationStatus.COMMITTED
    )
    assert coordinator.report().total_spent == 25 * USDC


@pytest.mark.parametrize("mode", ["pool"], indirect=True)
def test_pool_refuses_the_spend(coordinator: BudgetCoordinator, stack: Stack, team: Team) -> None:
    """A paused pool reverts ``spend``: no escrow exists, nothing is counted."""
    stack.pool.pause(sender=team.treasury)
    net_before = stack.pool.net_spent()
    result = coordinator.agent("research-agent").purchase_service(team.provider, 25 * USDC, "x")
    assert result.status is SpendStatus.FAILED
    row = coordinator.reservation(result.reservation_id or "")
    assert row.status is ReservationStatus.VOIDED
    assert stack.escrow.get(row.escrow_id).state is EscrowState.NONE
    assert stack.pool.net_spent() == net_before
    assert coordinator.report().total_spent == 0
    assert "nothing was sent" in row.reason


def test_allowance_revoked_elsewhere_falls_back_to_three_steps(
    coordinator: BudgetCoordinator, stack: Stack, team: Team
) -> None:
    """The coordinator's view of the allowance is stale (another process, or a person,
    set it to 0): createAndFund reverts without creating anything, and the spend is
    funded in three steps instead."""
    agent = coordinator.agent("research-agent")
    assert len(agent.purchase_service(team.provider, 5 * USDC, "x").tx_hashes) == 1
    stack.token.approve(stack.escrow.address, 0, sender=team.treasury)
    result = agent.purchase_service(team.provider, 7 * USDC, "x")
    assert result.approved and len(result.tx_hashes) == 3  # create, approve, fund
    assert stack.escrow.get(result.escrow_id or "").state is EscrowState.FUNDED
    assert stack.token.allowance(team.treasury, stack.escrow.address) == 0  # exactly used
    assert coordinator.report().total_spent == 12 * USDC


def test_usdt_like_token_gets_its_new_allowance_through_zero(
    chain: Chain, team: Team, clock: Clock
) -> None:
    """USDT refuses to change an allowance from one non-zero value to another. Once spends
    have used part of it, the next spend that needs more must set it to 0 first, or every
    spend from then on fails at the approve."""
    token = deploy_hostile(chain, "NoReturnToken", sender=team.treasury)
    stack = deploy_stack(chain, token=str(token.address), owner=team.treasury)
    stack.token.mint(team.treasury, BUDGET, sender=team.treasury)
    with BudgetCoordinator(
        stack, treasury=team.treasury, total_budget=BUDGET, clock=clock
    ) as coordinator:
        for agent in reference_agents(team):
            coordinator.register_agent(agent)
        agent = coordinator.agent("research-agent")
        first = agent.purchase_service(team.provider, 25 * USDC, "x")
        assert first.approved and len(first.tx_hashes) == 3  # create, approve 25, fund
        stack.token.approve(stack.escrow.address, 0, sender=team.treasury)
        stack.token.approve(stack.escrow.address, 10 * USDC, sender=team.treasury)
        second = agent.purchase_service(team.provider, 30 * USDC, "x")
        assert second.approved, second.reason
        assert len(second.tx_hashes) == 4  # create, approve 0, approve 30, fund
        assert stack.escrow.get(second.escrow_id or "").state is EscrowState.FUNDED
        assert stack.token.allowance(team.treasury, stack.escrow.address) == 0
        assert stack.token.balance_of(stack.escrow.address) == 55 * USDC
        assert coordinator.report().total_spent == 55 * USDC
