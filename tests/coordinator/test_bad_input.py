"""Malformed input raises InvalidRequest before anything changes; policy refusals are
DENIED results; closed approvals cannot be used. In every case the ledger and the chain
are exactly as before (only the audit log records a decision)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from coordinator_helpers import USDC, Clock, Team

from escrowkit import Reason
from escrowkit.coordinator import AgentConfig, BudgetCoordinator, SpendRequest, SpendStatus
from escrowkit.errors import ApprovalClosed, InvalidRequest, NotFound

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack

BAD_CHECKSUM = "0xe57bFE9F44b819898F47BF37E5AF72a0783e1141"
ZERO = "0x" + "00" * 20


@dataclass(frozen=True)
class Snapshot:
    report: Any
    reservations: Any
    treasury_balance: int
    escrow_balance: int
    audit_events: tuple[str, ...]


def snapshot(coordinator: BudgetCoordinator, stack: Stack, team: Team) -> Snapshot:
    report = coordinator.report()
    return Snapshot(
        report=(report.total_spent, report.reserved, report.remaining, report.pending_approvals),
        reservations=coordinator.reservations(),
        treasury_balance=stack.token.balance_of(team.treasury),
        escrow_balance=stack.token.balance_of(stack.escrow.address),
        audit_events=tuple(e.event for e in coordinator.audit_log()),
    )


@pytest.mark.parametrize(
    ("amount", "provider", "match"),
    [
        (25.0, None, "int of base units"),
        (0, None, "> 0"),
        (-25 * USDC, None, "> 0"),
        (2**96, None, "2\\*\\*96"),
        (True, None, "int"),
        (25 * USDC, BAD_CHECKSUM, "checksum"),
        (25 * USDC, ZERO, "zero address"),
        (25 * USDC, "0x1234", "20-byte hex"),
    ],
)
def test_malformed_requests_raise_before_any_change(
    coordinator: BudgetCoordinator,
    stack: Stack,
    team: Team,
    amount: Any,
    provider: str | None,
    match: str,
) -> None:
    before = snapshot(coordinator, stack, team)
    with pytest.raises(InvalidRequest, match=match):
        coordinator.agent("research-agent").purchase_service(provider or team.provider, amount, "x")
    assert snapshot(coordinator, stack, team) == before  # not even an audit entry


def test_request_spending_takes_only_a_spend_request(coordinator: BudgetCoordinator) -> None:
    with pytest.raises(InvalidRequest, match="SpendRequest"):
        coordinator.request_spending({"agent_id": "research-agent"})  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        coordinator.register_agent("research-agent")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        coordinator.set_category_budget("data", -1)
    with pytest.raises(NotFound, match="unknown agent 'ghost'"):
        coordinator.agent("ghost")


def _with_listed_agent(coordinator: BudgetCoordinator, team: Team) -> None:
    coordinator.register_agent(
        AgentConfig(
            "picky-agent",
            "Picky",
            team.compute,
            100 * USDC,
            300 * USDC,
            50 * USDC,
            categories=["data"],
            allowed_providers=[team.other_provider],
        )
    )


@pytest.mark.parametrize(
    ("agent_id", "category", "words"),
    [
        ("ghost", None, "Unknown agent 'ghost'"),
        ("research-agent", "travel", "Unknown category 'travel': it has no budget"),
        ("picky-agent", None, "must give a category"),
        ("picky-agent", "data", "Provider not allowed"),
    ],
)
def test_policy_refusals_are_denied_and_change_nothing(
    coordinator: BudgetCoordinator,
    stack: Stack,
    team: Team,
    agent_id: str,
    category: str | None,
    words: str,
) -> None:
    _with_listed_agent(coordinator, team)
    before = snapshot(coordinator, stack, team)
    result = coordinator.request_spending(
        SpendRequest(agent_id, 10 * USDC, team.provider, "x", category=category)
    )
    assert result.status is SpendStatus.DENIED and words in result.reason
    after = snapshot(coordinator, stack, team)
    assert after.audit_events == (*before.audit_events, "denied")
    assert after == Snapshot(**{**before.__dict__, "audit_events": after.audit_events})


def test_a_daily_limit_below_the_per_transaction_limit_is_refused(
    coordinator: BudgetCoordinator, team: Team
) -> None:
    odd = AgentConfig("odd-agent", "Odd", team.compute, 100 * USDC, 50 * USDC, 10 * USDC)
    with pytest.raises(InvalidRequest) as caught:
        coordinator.register_agent(odd)
    assert str(caught.value) == (
        "agent 'odd-agent': daily_limit 50.00 USDC is below spending_limit 100.00 USDC (the "
        "per-transaction limit): raise the daily limit to at least the per-transaction one"
    )
    assert "odd-agent" not in coordinator.agents


@pytest.mark.parametrize("purpose", ["", "   ", "\t\n"])
def test_a_spend_says_what_it_is_for(
    coordinator: BudgetCoordinator, team: Team, purpose: str
) -> None:
    with pytest.raises(InvalidRequest, match="purpose is empty"):
        coordinator.request_spending(SpendRequest("research-agent", USDC, team.provider, purpose))
    assert coordinator.reservations() == []


def test_an_unknown_agent_is_told_the_closest_registered_id(
    coordinator: BudgetCoordinator, team: Team
) -> None:
    result = coordinator.request_spending(
        SpendRequest("reserch-agent", 10 * USDC, team.provider, "x")
    )
    assert result.status is SpendStatus.DENIED and result.code is Reason.UNKNOWN_AGENT
    assert result.reason == "Unknown agent 'reserch-agent' (did you mean 'research-agent'?)"


def test_category_budget_caps_all_agents_together(
    coordinator: BudgetCoordinator, stack: Stack, team: Team
) -> None:
    coordinator.set_category_budget("data", 60 * USDC)
    escrow_before = stack.token.balance_of(stack.escrow.address)
    research = coordinator.agent("research-agent")
    data = coordinator.agent("data-agent")
    assert research.purchase_service(team.provider, 40 * USDC, "x", category="data").approved
    refused = data.purchase_service(team.provider, 21 * USDC, "x", category="data")
    assert refused.status is SpendStatus.DENIED
    assert "exceeds category budget 'data' 60.00 USDC" in refused.reason
    assert data.purchase_service(team.provider, 20 * USDC, "x", category="data").approved
    assert coordinator.report().by_category["data"].remaining == 0
    assert stack.token.balance_of(stack.escrow.address) - escrow_before == 60 * USDC


def ask_approval(coordinator: BudgetCoordinator, team: Team) -> str:
    """A 150 USDC spend of data-agent (approval above 100): its approval id."""
    result = coordinator.request_spending(
        SpendRequest("data-agent", 150 * USDC, team.provider, "data")
    )
    assert result.approval_id is not None
    return result.approval_id


def test_closed_approvals_cannot_be_used(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, clock: Clock
) -> None:
    expired, used, rejected = (ask_approval(coordinator, team) for _ in range(3))
    first = coordinator.approve_spending(used, approver="cfo")
    assert first.approved
    assert coordinator.reject_spending(rejected, reason="not this quarter").reason == (
        "Rejected: not this quarter"
    )
    clock.advance(coordinator.approval_ttl)
    before = snapshot(coordinator, stack, team)

    late = coordinator.approve_spending(expired, approver="cfo")
    assert late.status is SpendStatus.DENIED and late.code is Reason.APPROVAL_EXPIRED
    assert late.reason == f"Approval {expired} expired"
    # Approving an approved id again is a replay: the same spend, not a second one.
    again = coordinator.approve_spending(used, approver="cfo")
    assert again.approved and (again.escrow_id, again.reservation_id) == (
        first.escrow_id,
        first.reservation_id,
    )
    revived = coordinator.approve_spending(rejected, approver="cfo")
    assert revived.status is SpendStatus.DENIED and revived.code is Reason.APPROVAL_REJECTED
    assert "already rejected" in revived.reason
    with pytest.raises(NotFound):
        coordinator.approve_spending("apr_nope", approver="cfo")
    with pytest.raises(InvalidRequest):
        coordinator.approve_spending(used, approver="")

    after = snapshot(coordinator, stack, team)
    assert after.reservations == before.reservations and after.report == before.report
    assert (after.treasury_balance, after.escrow_balance) == (
        before.treasury_balance,
        before.escrow_balance,
    )
    assert coordinator.report().by_agent["data-agent"].spent == 150 * USDC  # the one used


def test_rejecting_a_closed_approval_says_nothing_was_rejected(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, clock: Clock
) -> None:
    """A DENIED result would read as "not spent", which is false for an approved one."""
    used, rejected, expired = (ask_approval(coordinator, team) for _ in range(3))
    funded = coordinator.approve_spending(used, approver="cfo")
    assert funded.approved
    assert coordinator.reject_spending(rejected, reason="no").status is SpendStatus.DENIED
    clock.advance(coordinator.approval_ttl)
    before = snapshot(coordinator, stack, team)

    for approval_id, status in ((used, "APPROVED"), (rejected, "REJECTED"), (expired, "EXPIRED")):
        with pytest.raises(ApprovalClosed, match="nothing was rejected") as caught:
            coordinator.reject_spending(approval_id, reason="too late")
        assert (caught.value.approval_id, caught.value.status) == (approval_id, status)
    with pytest.raises(NotFound):
        coordinator.reject_spending("apr_nope", reason="x")

    after = snapshot(coordinator, stack, team)
    assert after.report[:3] == before.report[:3] and before.report[0] == 150 * USDC
    assert after.reservations == before.reservations
    assert (after.treasury_balance, after.escrow_balance) == (
        before.treasury_balance,
        before.escrow_balance,
    )
    assert stack.escrow.get(funded.escrow_id).state.name == "FUNDED"  # type: ignore[arg-type]


def test_an_approval_rechecks_the_limits(
    coordinator: BudgetCoordinator, stack: Stack, team: Team
) -> None:
    """Between the request and the approval the agent spent its day: the approval is
    DENIED by the daily limit and closed."""
    data = coordinator.agent("data-agent")  # 200 per tx, 500 a day, approval above 100
    escrow_before = stack.token.balance_of(stack.escrow.address)
    waiting = data.purchase_service(team.provider, 150 * USDC, "x")
    for _ in range(4):
        assert data.purchase_service(team.provider, 100 * USDC, "x").approved
    result = coordinator.approve_spending(waiting.approval_id or "", approver="cfo")
    assert result.status is SpendStatus.DENIED and "daily limit 500.00 USDC" in result.reason
    assert coordinator.report().pending_approvals == {}
    assert coordinator.report().total_spent == 400 * USDC
    assert stack.token.balance_of(stack.escrow.address) - escrow_before == 400 * USDC
