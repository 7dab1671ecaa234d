"""No overspend: 32 threads racing for the last funds get exactly what fits, in the
ledger and on-chain. (Processes sharing one SQLite file: test_processes.py.)"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest
from coordinator_helpers import BUDGET, USDC, Team

from escrowkit.coordinator import BudgetCoordinator, ReservationStatus, SpendResult, SpendStatus
from escrowkit.escrow import EscrowState

if TYPE_CHECKING:
    from escrowkit.stack import Stack

THREADS = 32
AMOUNT = 45 * USDC  # 32 x 45 = 1,440 asked of a 1,000 budget: 22 fit (990)


@pytest.mark.parametrize("store_url", ["memory", "file", "pg"], indirect=True)
def test_threads_racing_for_the_budget_get_exactly_what_fits(
    coordinator: BudgetCoordinator, stack: Stack, team: Team
) -> None:
    treasury_before = stack.token.balance_of(team.treasury)
    escrow_before = stack.token.balance_of(stack.escrow.address)
    results: list[SpendResult] = []
    gate = threading.Barrier(THREADS)

    def spend(agent_id: str) -> None:
        gate.wait()
        results.append(coordinator.agent(agent_id).purchase_service(team.provider, AMOUNT, "race"))

    # data-agent may spend 500 a day (11 x 45), compute-agent 1,000: whatever the
    # interleaving, the total budget is what binds, at exactly 22 spends.
    threads = [
        threading.Thread(target=spend, args=("data-agent" if n % 2 else "compute-agent",))
        for n in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    approved = [r for r in results if r.status is SpendStatus.APPROVED]
    denied = [r for r in results if r.status is SpendStatus.DENIED]
    assert len(results) == THREADS and len(approved) + len(denied) == THREADS
    fits = BUDGET // AMOUNT * AMOUNT
    assert sum(AMOUNT for _ in approved) == fits
    assert all("total budget" in r.reason or "daily limit" in r.reason for r in denied)

    # The chain holds exactly the approved escrows, each funded once.
    records = [stack.escrow.get(r.escrow_id or "") for r in approved]
    assert all(rec.state is EscrowState.FUNDED and rec.amount == AMOUNT for rec in records)
    assert len({r.escrow_id for r in approved}) == len(approved)
    assert stack.token.balance_of(stack.escrow.address) - escrow_before == fits
    assert treasury_before - stack.token.balance_of(team.treasury) == fits

    # And the ledger says the same.
    report = coordinator.report()
    assert (report.total_spent, report.reserved, report.remaining) == (fits, 0, BUDGET - fits)
    committed = coordinator.reservations(ReservationStatus.COMMITTED)
    assert sorted(r.escrow_id.hex() for r in committed) == sorted(
        (r.escrow_id or "")[2:] for r in approved
    )
