"""Every outcome carries a machine-readable code (DESIGN.md section 5): programs branch on
``SpendResult.code``; ``reason`` is the sentence for people. Codes survive a replay."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from coordinator_helpers import USDC, Team

from escrowkit import Reason, SpendRequest, SpendResult, SpendStatus
from escrowkit.errors import ChainError

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack
    from escrowkit.coordinator import BudgetCoordinator


def ask(team: Team, amount: int, **extra: Any) -> SpendRequest:
    return SpendRequest("research-agent", amount, team.provider, "dataset", **extra)


def test_each_status_has_its_code(coordinator: BudgetCoordinator, team: Team) -> None:
    approved = coordinator.request_spending(ask(team, 25 * USDC))
    assert (approved.status, approved.code, approved.error) == (SpendStatus.APPROVED, None, None)
    waiting = coordinator.request_spending(ask(team, 75 * USDC))
    assert (waiting.status, waiting.code) == (
        SpendStatus.PENDING_APPROVAL,
        Reason.APPROVAL_REQUIRED,
    )
    over = coordinator.request_spending(ask(team, 150 * USDC))
    assert (over.status, over.code) == (SpendStatus.DENIED, Reason.PER_TRANSACTION_LIMIT)
    unknown = coordinator.request_spending(
        SpendRequest("nobody", 1 * USDC, team.provider, "dataset")
    )
    assert unknown.code is Reason.UNKNOWN_AGENT
    rejected = coordinator.reject_spending(waiting.approval_id or "", "no", approver="ops")
    assert rejected.code is Reason.APPROVAL_REJECTED


def test_codes_and_error_data_replay(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    denied = coordinator.request_spending(ask(team, 150 * USDC, idempotency_key="d"))
    assert coordinator.request_spending(ask(team, 150 * USDC, idempotency_key="d")) == denied
    assert denied.code is Reason.PER_TRANSACTION_LIMIT

    def reverting(*args: Any, **kwargs: Any) -> Any:
        raise ChainError("node unreachable")

    monkeypatch.setattr(stack.escrow, "create_and_fund", reverting)
    failed = coordinator.request_spending(ask(team, 10 * USDC, idempotency_key="f"))
    assert failed.status is SpendStatus.FAILED and failed.code is Reason.FUNDING_FAILED
    assert failed.error == {"type": "ChainError", "message": "node unreachable"}
    monkeypatch.undo()
    again = coordinator.request_spending(ask(team, 10 * USDC, idempotency_key="f"))
    assert again == failed  # the first answer, code and error data included
    assert SpendResult.from_json(failed.to_json()) == failed
    assert failed.to_json()["code"] == "funding_failed"


@pytest.mark.parametrize("mode", ["treasury", "pool"], indirect=True)
def test_a_provider_that_can_never_be_paid_is_denied_before_anything_happens(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, mode: str
) -> None:
    payer = team.treasury if mode == "treasury" else stack.pool.address
    block = stack.chain.block_number()
    for provider in (payer, stack.escrow.address, stack.pool.address):
        result = coordinator.request_spending(
            SpendRequest("research-agent", 1 * USDC, provider, "loop")
        )
        assert (result.status, result.code) == (SpendStatus.DENIED, Reason.INVALID_PROVIDER)
        assert "invalid provider" in result.reason.lower()
    assert coordinator.reservations() == []
    assert stack.chain.block_number() == block  # nothing was sent


def test_a_frozen_denial_reports_what_is_really_left(
    coordinator: BudgetCoordinator, team: Team
) -> None:
    assert coordinator.request_spending(ask(team, 40 * USDC)).approved
    coordinator.freeze("audit")
    frozen = coordinator.request_spending(ask(team, 10 * USDC))
    assert frozen.code is Reason.FROZEN
    assert frozen.remaining_daily == 260 * USDC  # 300 a day, 40 spent
    assert frozen.remaining_total == 960 * USDC


def test_approve_and_reject_record_who_and_why(coordinator: BudgetCoordinator, team: Team) -> None:
    first = coordinator.request_spending(ask(team, 75 * USDC))
    second = coordinator.request_spending(ask(team, 80 * USDC))
    coordinator.approve_spending(first.approval_id or "", "ops@example.com", note="ticket 7")
    coordinator.reject_spending(second.approval_id or "", "too much", approver="cfo")
    entries = {e.event: e.detail for e in coordinator.audit_log()}
    assert entries["approved"]["approver"] == "ops@example.com"
    assert entries["approved"]["note"] == "ticket 7"
    assert (entries["rejected"]["approver"], entries["rejected"]["reason"]) == ("cfo", "too much")
