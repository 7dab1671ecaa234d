"""Constructing a coordinator: the treasury's role is checked on-chain, and a ledger stays
bound to the escrow and mode it was made for."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from coordinator_helpers import BUDGET, USDC, Team

from escrowkit.coordinator import AgentConfig, BudgetCoordinator, NoopExecutor
from escrowkit.errors import ConfigurationError, InvalidRequest

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack


def test_pool_mode_makes_the_owner_an_operator_and_refuses_a_stranger(
    stack: Stack, team: Team
) -> None:
    assert not stack.pool.is_operator(team.treasury)
    with BudgetCoordinator(stack, treasury=team.treasury, total_budget=BUDGET, mode="pool"):
        assert stack.pool.is_operator(team.treasury)  # the owner made itself one
    with pytest.raises(ConfigurationError, match="neither an operator nor the owner"):
        BudgetCoordinator(stack, treasury=team.research, total_budget=BUDGET, mode="pool")


def test_pool_mode_writes_agent_limits_on_chain(stack: Stack, team: Team) -> None:
    with BudgetCoordinator(
        stack, treasury=team.treasury, total_budget=BUDGET, mode="pool"
    ) as coordinator:
        coordinator.register_agent(
            AgentConfig("a", "A", team.research, 100 * USDC, 300 * USDC, 50 * USDC)
        )
        limits = stack.pool.agent(team.research)
        assert (limits.per_tx_limit, limits.period_limit, limits.period) == (
            100 * USDC,
            300 * USDC,
            86_400,
        )
        with pytest.raises(InvalidRequest, match="already uses"):
            coordinator.register_agent(
                AgentConfig("b", "B", team.research, 100 * USDC, 300 * USDC, 50 * USDC)
            )


def test_a_ledger_stays_bound_to_its_escrow_and_mode(
    stack: Stack, team: Team, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    BudgetCoordinator(stack, treasury=team.treasury, total_budget=BUDGET, store=url).close()
    with pytest.raises(ConfigurationError, match="belongs to binding"):
        BudgetCoordinator(
            stack, treasury=team.treasury, total_budget=BUDGET, store=url, mode="pool"
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"total_budget": None}, "total_budget is required"),
        ({"total_budget": 1.5}, "int"),
        ({"mode": "bank"}, "mode must be"),
        ({"escrow_ttl": 0}, "escrow_ttl"),
        ({"dispute_window": 2**32}, "dispute_window"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"treasury": None}, "treasury is required"),
    ],
)
def test_bad_settings_are_refused(
    stack: Stack, team: Team, kwargs: dict[str, object], match: str
) -> None:
    settings: dict[str, object] = {"treasury": team.treasury, "total_budget": BUDGET}
    settings.update(kwargs)
    with pytest.raises(InvalidRequest, match=match):
        BudgetCoordinator(stack, **settings)  # type: ignore[arg-type]


def test_a_treasury_without_a_key_is_refused(stack: Stack) -> None:
    stranger = "0x000000000000000000000000000000000000bEEF"
    with pytest.raises(ConfigurationError, match="no key for treasury"):
        BudgetCoordinator(stack, treasury=stranger, total_budget=BUDGET)


def test_opening_never_changes_the_total_budget(tmp_path: Path) -> None:
    """The total budget is what every process on the ledger enforces: a new ledger needs
    one; opening an existing one with another value refuses (naming both) and writes
    nothing; set_total_budget changes it, audited like every other change of a limit."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with pytest.raises(InvalidRequest, match="total_budget is required"):
        BudgetCoordinator(None, store=url, executor=NoopExecutor())
    BudgetCoordinator(None, total_budget=BUDGET, store=url, executor=NoopExecutor()).close()
    BudgetCoordinator(None, total_budget=BUDGET, store=url, executor=NoopExecutor()).close()
    with pytest.raises(ConfigurationError, match=r"1000\.00 USDC, not 2000\.00 USDC"):
        BudgetCoordinator(None, total_budget=2 * BUDGET, store=url, executor=NoopExecutor())
    with BudgetCoordinator(None, store=url, executor=NoopExecutor()) as reopened:
        assert reopened.total_budget == BUDGET  # the refused open wrote nothing
        reopened.set_total_budget(2 * BUDGET)
        changes = [e.detail for e in reopened.audit_log() if e.event == "total_budget"]
        assert reopened.report().total_budget == 2 * BUDGET
    assert changes == [
        {"budget": str(BUDGET), "previous": "0"},
        {"budget": str(2 * BUDGET), "previous": str(BUDGET)},
    ]
