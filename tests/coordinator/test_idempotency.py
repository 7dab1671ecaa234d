"""Same key, same request: the first result, never a second escrow (also after a restart).
Same key, another request: IdempotencyConflict, nothing changes."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest
from coordinator_helpers import BUDGET, USDC, Clock, Team

from escrowkit.coordinator import (
    AgentConfig,
    BudgetCoordinator,
    SpendRequest,
    SpendResult,
    SpendStatus,
)
from escrowkit.errors import IdempotencyConflict

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack


def _request(team: Team, amount: int = 25 * USDC, **extra: object) -> SpendRequest:
    values: dict[str, object] = {"idempotency_key": "order-1"}
    values.update(extra)
    return SpendRequest("research-agent", amount, team.provider, "dataset", **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("store_url", ["file"], indirect=True)
def test_replay_returns_the_first_result_also_after_a_restart(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, store_url: str, clock: Clock
) -> None:
    first = coordinator.request_spending(_request(team))
    assert first.approved
    balance = stack.token.balance_of(team.treasury)

    assert coordinator.request_spending(_request(team)) == first
    with pytest.raises(IdempotencyConflict, match="different request"):
        coordinator.request_spending(_request(team, amount=26 * USDC))
    with pytest.raises(IdempotencyConflict):
        coordinator.request_spending(_request(team, category="data"))
    coordinator.close()

    restarted = BudgetCoordinator(
        stack, treasury=team.treasury, total_budget=BUDGET, store=store_url, clock=clock
    )
    assert restarted.request_spending(_request(team)) == first
    # One escrow, paid once; one reservation; the report counts it once.
    assert stack.token.balance_of(team.treasury) == balance
    assert len(restarted.reservations()) == 1
    assert restarted.report().total_spent == 25 * USDC
    # Keys are scoped per agent: another agent's "order-1" is its own first request.
    other = restarted.request_spending(
        SpendRequest("data-agent", 25 * USDC, team.provider, "dataset", idempotency_key="order-1")
    )
    assert other.approved and other.escrow_id != first.escrow_id
    restarted.close()


def test_denials_and_approval_requests_replay_too(
    coordinator: BudgetCoordinator, stack: Stack, team: Team
) -> None:
    escrow_before = stack.token.balance_of(stack.escrow.address)
    denied = coordinator.request_spending(_request(team, amount=150 * USDC, idempotency_key="a"))
    assert denied.status is SpendStatus.DENIED
    # Raising the limit does not change the answer to the same key: it is the first one.
    coordinator.register_agent(
        AgentConfig("research-agent", "Research", team.research, 500 * USDC, 900 * USDC, 50 * USDC)
    )
    assert coordinator.request_spending(_request(team, amount=150 * USDC, idempotency_key="a")) == (
        denied
    )

    waiting = coordinator.request_spending(_request(team, amount=80 * USDC, idempotency_key="b"))
    assert waiting.status is SpendStatus.PENDING_APPROVAL
    again = coordinator.request_spending(_request(team, amount=80 * USDC, idempotency_key="b"))
    assert again.approval_id == waiting.approval_id
    assert list(coordinator.report().pending_approvals) == [waiting.approval_id]
    assert stack.token.balance_of(stack.escrow.address) == escrow_before  # nothing escrowed


def test_concurrent_retries_of_one_key_fund_one_escrow(
    coordinator: BudgetCoordinator, stack: Stack, team: Team
) -> None:
    results: list[SpendResult | Exception] = []
    gate = threading.Barrier(8)

    def retry() -> None:
        gate.wait()
        try:
            results.append(coordinator.request_spending(_request(team)))
        except IdempotencyConflict as exc:  # the first is still in flight
            results.append(exc)

    threads = [threading.Thread(target=retry) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    answers = [r for r in results if isinstance(r, SpendResult)]
    conflicts = [r for r in results if isinstance(r, IdempotencyConflict)]
    assert len(answers) + len(conflicts) == 8 and answers
    assert {r.escrow_id for r in answers} == {answers[0].escrow_id}
    assert all("in progress" in str(c) for c in conflicts)
    assert len(coordinator.reservations()) == 1
    assert coordinator.report().total_spent == 25 * USDC
    assert stack.escrow.get(answers[0].escrow_id or "").amount == 25 * USDC


def test_recorded_tells_a_replay_from_a_new_decision(
    coordinator: BudgetCoordinator, team: Team
) -> None:
    request = _request(team)
    assert coordinator.recorded(request) is None  # a new key: this will be decided
    first = coordinator.request_spending(request)
    assert coordinator.recorded(request) == first  # from now on a replay
    assert coordinator.recorded(_request(team, amount=26 * USDC)) is None  # would raise
    assert coordinator.recorded(_request(team, idempotency_key=None)) is None
    denied = _request(team, amount=500 * USDC, idempotency_key="order-2")
    refused = coordinator.request_spending(denied)
    assert refused.status is SpendStatus.DENIED and coordinator.recorded(denied) == refused
