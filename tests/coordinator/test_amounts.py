"""Amounts are exact end to end: beyond 2**63 (an 18-decimal token passes it at 9.2
tokens) through the SQL store, the chain and back."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from coordinator_helpers import Team

from escrowkit.contracts.escrow import EscrowState
from escrowkit.coordinator import (
    AgentConfig,
    BudgetCoordinator,
    NoopExecutor,
    SpendRequest,
    SpendStatus,
    TokenUnits,
)

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack

BIG = 2**63 + 12_345  # 9.223372036854788153 tokens at 18 decimals


def test_an_amount_above_2_63_round_trips_through_store_and_chain(
    stack: Stack, team: Team, tmp_path: Path
) -> None:
    token, treasury = stack.token, team.treasury
    token.mint(treasury, 2 * BIG, sender=treasury)
    token.approve(stack.escrow.address, 2 * BIG, sender=treasury)
    url = f"sqlite:///{tmp_path / 'big.db'}"
    budget = 2**95  # far beyond 64 bits too
    with BudgetCoordinator(stack, treasury=treasury, total_budget=budget, store=url) as first:
        first.register_agent(
            AgentConfig("whale", "Whale", team.research, 2**96 - 1, 2**96 - 1, 2**96 - 1)
        )
        result = first.request_spending(SpendRequest("whale", BIG, team.provider, "big"))
        assert result.approved, result.reason
        assert result.remaining_total == budget - BIG

    record = stack.escrow.get(result.escrow_id or "")
    assert (record.state, record.amount) == (EscrowState.FUNDED, BIG)

    # A new coordinator reads the same figures back from the file, exactly.
    with BudgetCoordinator(stack, treasury=treasury, total_budget=budget, store=url) as again:
        (row,) = again.reservations()
        assert row.amount == BIG and type(row.amount) is int
        report = again.report()
        assert (report.total_spent, report.remaining) == (BIG, budget - BIG)
        assert again.agents["whale"].daily_limit == 2**96 - 1
        assert report.by_agent["whale"].spent == BIG


def test_reasons_show_18_decimal_amounts_exactly() -> None:
    coordinator = BudgetCoordinator(
        None, total_budget=10**19, executor=NoopExecutor(TokenUnits(18, "WETH"))
    )
    coordinator.register_agent(
        AgentConfig(
            "a", "A", "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf", 9 * 10**18, 10**19, 10**19
        )
    )
    result = coordinator.request_spending(
        SpendRequest("a", BIG, "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF", "x")
    )
    assert result.status is SpendStatus.DENIED
    assert result.reason == (
        "Amount 9.223372036854788153 WETH exceeds per-transaction limit 9.00 WETH"
    )
