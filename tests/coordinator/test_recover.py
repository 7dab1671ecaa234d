"""A coordinator that dies mid-spend leaves a PENDING row; a new one's recover() settles it
from the chain: FUNDED -> COMMITTED, INITIATED -> cancel + VOIDED, missing -> VOIDED.

The death is an injected BaseException (never caught by the coordinator, exactly as a
KeyboardInterrupt or SystemExit would not be). A real SIGKILL of a process is in
test_processes.py (it needs a chain shared between processes: anvil).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from coordinator_helpers import BUDGET, USDC, Clock, Team

from escrowkit import Reason
from escrowkit.contracts.escrow import EscrowState
from escrowkit.coordinator import (
    BudgetCoordinator,
    RecoveryReport,
    ReservationStatus,
    SpendRequest,
    SpendStatus,
)
from escrowkit.errors import IdempotencyConflict

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack

pytestmark = pytest.mark.parametrize("store_url", ["file"], indirect=True)


class Crash(BaseException):
    """The process dies here."""


def _crash_at(monkeypatch: pytest.MonkeyPatch, stack: Stack, where: str) -> None:
    escrow = stack.escrow
    if where == "before create":
        monkeypatch.setattr(escrow, "create", _raise)
    elif where == "between create and fund":
        monkeypatch.setattr(escrow, "fund", _raise)
    else:  # after fund, before the ledger commit
        fund = escrow.fund

        def fund_then_die(escrow_id: bytes, sender: str) -> Any:
            fund(escrow_id, sender)
            raise Crash

        monkeypatch.setattr(escrow, "fund", fund_then_die)


def _raise(*args: Any, **kwargs: Any) -> Any:
    raise Crash


def _restart(stack: Stack, team: Team, store_url: str | None, clock: Clock) -> BudgetCoordinator:
    return BudgetCoordinator(
        stack, treasury=team.treasury, total_budget=BUDGET, store=store_url, clock=clock
    )


@pytest.mark.parametrize(
    ("where", "chain_state", "final"),
    [
        # Nothing was sent: recover fences the id (the treasury creates it empty and
        # cancels it) before it voids the row, so a paused spender can never fund it.
        ("before create", EscrowState.CANCELLED, ReservationStatus.VOIDED),
        ("between create and fund", EscrowState.CANCELLED, ReservationStatus.VOIDED),
        ("after fund", EscrowState.FUNDED, ReservationStatus.COMMITTED),
    ],
)
def test_recover_after_a_crash(
    coordinator: BudgetCoordinator,
    stack: Stack,
    team: Team,
    store_url: str,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    chain_state: EscrowState,
    final: ReservationStatus,
) -> None:
    stack.token.approve(stack.escrow.address, 0, sender=team.treasury)  # create, approve, fund
    escrow_before = stack.token.balance_of(stack.escrow.address)
    _crash_at(monkeypatch, stack, where)
    request = SpendRequest("research-agent", 25 * USDC, team.provider, "x", idempotency_key="k-1")
    with pytest.raises(Crash):
        coordinator.request_spending(request)
    monkeypatch.undo()
    (row,) = coordinator.reservations()
    assert row.status is ReservationStatus.PENDING  # the crash left it for recover
    coordinator.close()

    restarted = _restart(stack, team, store_url, clock)
    assert restarted.report().reserved == 25 * USDC  # still counted meanwhile
    with pytest.raises(IdempotencyConflict, match="in progress"):
        restarted.request_spending(request)

    assert restarted.recover() == RecoveryReport()  # its lease (300 s) is not over yet
    assert restarted.reservation(row.id).status is ReservationStatus.PENDING
    clock.advance(300)
    summary = restarted.recover()

    recovered = restarted.reservation(row.id)
    assert recovered.status is final
    assert stack.escrow.get(row.escrow_id).state is chain_state
    assert summary.left_pending == ()
    assert (summary.committed if final is ReservationStatus.COMMITTED else summary.voided) == (
        row.id,
    )
    report = restarted.report()
    spent = 25 * USDC if final is ReservationStatus.COMMITTED else 0
    assert (report.total_spent, report.reserved) == (spent, 0)
    # The escrow holds exactly what the ledger counts.
    assert stack.token.balance_of(stack.escrow.address) - escrow_before == spent

    # Recover also wrote the result for the idempotency key: the replay returns it.
    replay = restarted.request_spending(request)
    expected = SpendStatus.APPROVED if final is ReservationStatus.COMMITTED else SpendStatus.FAILED
    assert replay.status is expected
    assert replay.reservation_id == row.id
    assert len(restarted.reservations()) == 1  # and no second escrow
    restarted.close()


def test_recover_leaves_alone_what_this_process_is_still_funding(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """recover(older_than=0) from another thread must not cancel a spend in flight."""
    seen: list[Any] = []
    fund = stack.escrow.create_and_fund

    def fund_while_recovering(*args: Any, **kwargs: Any) -> Any:
        seen.append(coordinator.recover(older_than=0))
        return fund(*args, **kwargs)

    monkeypatch.setattr(stack.escrow, "create_and_fund", fund_while_recovering)
    result = coordinator.agent("research-agent").purchase_service(team.provider, 5 * USDC, "x")
    assert result.approved
    assert seen[0].committed == seen[0].voided == seen[0].left_pending == ()


def _pending_row(
    coordinator: BudgetCoordinator, stack: Stack, monkeypatch: pytest.MonkeyPatch, team: Team
) -> Any:
    """A reservation left PENDING by a crash before anything was sent."""
    monkeypatch.setattr(stack.escrow, "create_and_fund", _raise)
    monkeypatch.setattr(stack.escrow, "create", _raise)
    with pytest.raises(Crash):
        coordinator.agent("research-agent").purchase_service(team.provider, 25 * USDC, "x")
    monkeypatch.undo()
    (row,) = coordinator.reservations(ReservationStatus.PENDING)
    return row


def test_recover_rereads_the_escrow_once_the_key_is_idle(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The funding transaction is mined between recover's first read of the escrow (none
    yet) and its nonce check (nothing pending any more): the escrow must be read again,
    or a funded escrow would be voided and the money escrowed outside the ledger."""
    row = _pending_row(coordinator, stack, monkeypatch, team)
    pending = stack.chain.pending_transactions

    def mined_meanwhile(address: str) -> int:
        stack.escrow.create_and_fund(
            row.provider,
            row.amount,
            deadline=stack.chain.now() + 86_400,
            dispute_window=3_600,
            salt=row.salt,
            sender=team.treasury,
        )
        monkeypatch.setattr(stack.chain, "pending_transactions", pending)
        return pending(address)

    monkeypatch.setattr(stack.chain, "pending_transactions", mined_meanwhile)
    summary = coordinator.recover(older_than=0)

    assert stack.escrow.get(row.escrow_id).state is EscrowState.FUNDED
    assert summary.committed == (row.id,)
    assert coordinator.reservation(row.id).status is ReservationStatus.COMMITTED
    assert coordinator.report().total_spent == 25 * USDC


def test_recover_asks_about_the_key_that_sent_the_row(
    coordinator: BudgetCoordinator,
    stack: Stack,
    team: Team,
    store_url: str,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Processes with their own treasury keys share one ledger (as in test_processes.py).
    A row whose sender still has a transaction in flight must be left alone, whatever
    the recovering process's own key has pending."""
    other_key = stack.chain.accounts[4]
    with BudgetCoordinator(
        stack, treasury=other_key, total_budget=BUDGET, store=store_url, clock=clock
    ) as other:
        row = _pending_row(other, stack, monkeypatch, team)
    assert row.requester == other_key
    monkeypatch.setattr(
        stack.chain, "pending_transactions", lambda address: int(address == other_key)
    )
    summary = coordinator.recover(older_than=0)
    assert summary.left_pending == (row.id,)
    assert coordinator.reservation(row.id).status is ReservationStatus.PENDING
    assert coordinator.report().reserved == 25 * USDC


def test_a_spend_voided_by_another_process_can_no_longer_be_funded(
    coordinator: BudgetCoordinator,
    stack: Stack,
    team: Team,
    store_url: str,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process's recover() saw no escrow yet: it fenced the id and voided the row.
    Then this process's funding went out: it reverts, the spend is FAILED, nothing is
    counted, and the voided row is never re-opened (it once was, past the budget)."""
    request = SpendRequest("research-agent", 25 * USDC, team.provider, "x", idempotency_key="k")
    seen: list[RecoveryReport] = []
    with _restart(stack, team, store_url, clock) as other:
        create_and_fund = stack.escrow.create_and_fund

        def recovered_elsewhere_first(*args: Any, **kwargs: Any) -> Any:
            seen.append(other.recover(older_than=0))
            return create_and_fund(*args, **kwargs)

        monkeypatch.setattr(stack.escrow, "create_and_fund", recovered_elsewhere_first)
        result = coordinator.request_spending(request)
        monkeypatch.undo()

    assert len(seen[0].voided) == 1  # the other process did void it
    # The answer is the one the recovering process recorded for the key.
    assert result.status is SpendStatus.FAILED and result.code is Reason.FUNDING_FAILED
    row = coordinator.reservation(result.reservation_id or "")
    assert row.status is ReservationStatus.VOIDED
    record = stack.escrow.get(row.escrow_id)
    assert (record.state, record.amount) == (EscrowState.CANCELLED, 1)  # the fence
    report = coordinator.report()
    assert (report.total_spent, report.reserved) == (0, 0)
    events = [e.event for e in coordinator.audit_log(reservation_id=row.id)]
    assert "recounted" not in events and "funded_after_void" not in events
    assert coordinator.request_spending(request) == result
