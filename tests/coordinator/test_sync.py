"""sync() reads what changed (the escrows' settle and cancel events since the last block
it synced), not every open escrow: its RPC calls do not grow with the ledger."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from coordinator_helpers import USDC, Clock, Team

from escrowkit.coordinator import BudgetCoordinator
from escrowkit.ledger import ReservationStatus

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack


@contextmanager
def counted(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Every JSON-RPC request the chain makes, by method."""
    calls: Counter[str] = Counter()
    provider = stack.chain.w3.provider
    make_request = provider.make_request

    def counting(method: Any, params: Any) -> Any:
        calls[str(method)] += 1
        return make_request(method, params)

    monkeypatch.setattr(provider, "make_request", counting)
    yield calls
    monkeypatch.setattr(provider, "make_request", make_request)


def spend_many(coordinator: BudgetCoordinator, team: Team, count: int) -> list[str]:
    agent = coordinator.agent("compute-agent")
    escrows = []
    for n in range(count):
        result = agent.purchase_service(team.provider, 1 * USDC, f"job {n}")
        assert result.approved and result.escrow_id is not None
        escrows.append(result.escrow_id)
    return escrows


@pytest.mark.parametrize("mode", ["treasury", "pool"], indirect=True)
def test_sync_costs_what_changed(
    coordinator: BudgetCoordinator,
    stack: Stack,
    team: Team,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    escrows = spend_many(coordinator, team, 12)
    assert coordinator.sync().refunded == ()  # the first sync reads from the deployment

    with counted(stack, monkeypatch) as calls:
        assert coordinator.sync().refunded == ()
    quiet = sum(calls.values())
    assert quiet <= 3, calls  # the head, one log query: not one call per open escrow

    # The provider refunds two of them on the Escrow directly: sync credits exactly those.
    for escrow_id in escrows[3:5]:
        stack.escrow.cancel(escrow_id, sender=team.provider)
    report = coordinator.sync()
    assert len(report.refunded) == 2 and report.settled == ()
    refunded = {coordinator.reservation(rid).escrow_id for rid in report.refunded}
    assert refunded == {bytes.fromhex(e[2:]) for e in escrows[3:5]}
    assert coordinator.report().total_spent == 10 * USDC
    if mode == "pool":
        assert stack.pool.net_spent() == 10 * USDC  # reconciled on-chain too
    # Nothing changed since: the next sync reads nothing again and changes nothing.
    assert coordinator.sync().refunded == ()
    statuses = Counter(row.status for row in coordinator.reservations())
    assert statuses == {ReservationStatus.COMMITTED: 10, ReservationStatus.REFUNDED: 2}


@pytest.mark.parametrize("store_url", ["file"], indirect=True)
def test_sync_catches_up_after_downtime(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, clock: Clock, store_url: str
) -> None:
    """Escrows refunded while no coordinator ran are credited by the next one's sync."""
    escrows = spend_many(coordinator, team, 4)
    coordinator.sync()
    coordinator.close()
    stack.escrow.cancel(escrows[0], sender=team.provider)
    stack.chain.mine(5)
    stack.escrow.cancel(escrows[1], sender=team.provider)
    with BudgetCoordinator(stack, treasury=team.treasury, store=store_url, clock=clock) as later:
        assert len(later.sync().refunded) == 2
        assert later.report().total_spent == 2 * USDC
        assert later.sync().refunded == ()
