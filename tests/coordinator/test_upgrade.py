"""A coordinator on a ledger made by escrowkit 0.1.0 (tests/fixtures/ledger_v1.db): the
ledger upgrades in place and keeps working, figures, replays and recovery included."""

from __future__ import annotations

import shutil
from pathlib import Path

from escrowkit import BudgetCoordinator, Chain, SpendRequest, SpendStatus, deploy_stack
from escrowkit.contracts.stack import Stack
from escrowkit.ledger import ReservationStatus

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ledger_v1.db"
USDC = 10**6
NOON = 1_767_355_200.0


def the_fixtures_chain() -> tuple[Chain, Stack]:
    """The same addresses the fixture's ledger is bound to: a fresh embedded chain, the
    stack deployed first thing, as make_ledger_v1.py.txt did."""
    chain = Chain.embedded()
    stack = deploy_stack(chain, owner=chain.accounts[0])
    stack.token.mint(chain.accounts[0], 10_000 * USDC, sender=chain.accounts[0])
    return chain, stack


def test_an_upgraded_v1_ledger_keeps_its_figures_replays_and_recovers(tmp_path: Path) -> None:
    shutil.copy(FIXTURE, tmp_path / "ledger.db")
    chain, stack = the_fixtures_chain()
    treasury, provider = chain.accounts[0], chain.accounts[3]
    coordinator = BudgetCoordinator(
        stack,
        treasury=treasury,
        store=f"sqlite:///{tmp_path / 'ledger.db'}",
        clock=lambda: NOON + 600,
    )
    with coordinator:
        report = coordinator.report()
        assert (report.total_budget, report.total_spent, report.reserved) == (
            1_000 * USDC,
            205 * USDC,
            10 * USDC,
        )
        assert len(report.pending_approvals) == 1
        # A denial recorded by 0.1.0 replays for the agent that asked.
        denied = SpendRequest(
            "research-agent", 150 * USDC, provider, "denied", idempotency_key="k-2"
        )
        replay = coordinator.request_spending(denied)
        assert replay.status is SpendStatus.DENIED and "per-transaction limit" in replay.reason
        assert len(coordinator.reservations()) == 4  # nothing new was reserved
        # The spend the crash left PENDING has no escrow on this chain: recovery fences
        # its id and voids it, and its key now holds that outcome.
        summary = coordinator.recover(older_than=0)
        assert len(summary.voided) == 1
        crashed = SpendRequest(
            "research-agent", 10 * USDC, provider, "crashed", idempotency_key="k-3"
        )
        assert coordinator.request_spending(crashed).status is SpendStatus.FAILED
        assert coordinator.report().reserved == 0
        statuses = {r.status for r in coordinator.reservations()}
        assert ReservationStatus.PENDING not in statuses
