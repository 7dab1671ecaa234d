"""One question asked by the fault and soak suites: does the ledger equal the chain?"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from escrowkit.contracts.escrow import EscrowState
from escrowkit.coordinator import ReservationStatus

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack
    from escrowkit.coordinator import BudgetCoordinator

#: What each final ledger status allows the escrow to be on-chain.
ALLOWED = {
    ReservationStatus.COMMITTED: {EscrowState.FUNDED},
    ReservationStatus.SETTLED: {EscrowState.SETTLED},
    ReservationStatus.REFUNDED: {EscrowState.CANCELLED},
    ReservationStatus.VOIDED: {EscrowState.NONE, EscrowState.CANCELLED},
}


def assert_ledger_matches_chain(
    coordinator: BudgetCoordinator, stack: Stack, requester: str, *, held_before: int = 0
) -> Counter[str]:
    """Every reservation resolved and in line with its escrow; no escrow of ``requester``
    outside the ledger; the escrow contract holds exactly what the ledger says is funded.
    Returns the count of rows per status."""
    rows = coordinator.reservations()
    statuses = Counter(row.status.value for row in rows)
    assert statuses[ReservationStatus.PENDING.value] == 0, statuses

    by_escrow = {}
    funded_total = 0
    for row in rows:
        assert row.escrow_id not in by_escrow, f"two reservations share escrow {row.escrow_id!r}"
        by_escrow[row.escrow_id] = row
        record = stack.escrow.get(row.escrow_id)
        assert record.state in ALLOWED[row.status], (row, record)
        fenced = row.status is ReservationStatus.VOIDED and record.amount == 1
        if record.exists and fenced:  # recovery created it empty and cancelled it
            assert record.requester == requester, (row, record)
        elif record.exists:
            assert (record.amount, record.provider, record.requester) == (
                row.amount,
                row.provider,
                requester,
            ), (row, record)
        if row.status is ReservationStatus.COMMITTED:
            funded_total += row.amount

    created = stack.escrow.contract.events.EscrowCreated.get_logs(
        from_block=0, argument_filters={"requester": requester}
    )
    funded = Counter(
        bytes(log["args"]["id"])
        for log in stack.escrow.contract.events.EscrowFunded.get_logs(from_block=0)
    )
    for log in created:
        escrow_id = bytes(log["args"]["id"])
        assert escrow_id in by_escrow, f"escrow {escrow_id.hex()} is not in the ledger"
        assert funded[escrow_id] <= 1, f"escrow {escrow_id.hex()} funded twice"
        state = stack.escrow.get(escrow_id).state
        assert state is not EscrowState.INITIATED, f"escrow {escrow_id.hex()} left INITIATED"

    # Only this ledger's escrows came into this Escrow contract during the test (it held
    # ``held_before`` when it started).
    assert stack.token.balance_of(stack.escrow.address) - held_before == funded_total
    report = coordinator.report()
    counted = sum(
        row.amount
        for row in rows
        if row.status in (ReservationStatus.COMMITTED, ReservationStatus.SETTLED)
    )
    assert (report.total_spent, report.reserved) == (counted, 0)
    return statuses
