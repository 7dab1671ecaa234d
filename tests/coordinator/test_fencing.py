"""A paused spender looks exactly like a dead one. Another process recovers its row with a
clock an hour ahead (fencing the escrow id on-chain, then voiding the row) and spends the
freed budget; then the paused spender wakes up. The budget must hold and the ledger must
equal the chain, in treasury and in pool mode, whether the spender notices the voided row
before it sends (its lease is old by its own clock) or sends and is refused on-chain."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest
from coordinator_helpers import USDC, Clock, Team

from escrowkit import AgentConfig, BudgetCoordinator, Reason, SpendRequest, SpendStatus
from ledger_checks import assert_ledger_matches_chain

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack

HOUR = 3_600
BUDGET = 10 * USDC


def _send_path(stack: Stack, mode: str) -> tuple[Any, str]:
    """The client object and method that sends a spend's funding in ``mode``."""
    return (stack.escrow, "create_and_fund") if mode == "treasury" else (stack.pool, "spend")


@pytest.mark.parametrize("store_url", ["file"], indirect=True)
@pytest.mark.parametrize("mode", ["treasury", "pool"], indirect=True)
@pytest.mark.parametrize("notices", [True, False], ids=["stops-before-sending", "sends-refused"])
def test_a_paused_spender_cannot_spend_what_recovery_freed(
    stack: Stack,
    team: Team,
    mode: str,
    store_url: str,
    funded: None,
    monkeypatch: pytest.MonkeyPatch,
    notices: bool,
) -> None:
    spender_clock, other_clock = Clock(), Clock()
    requester = team.treasury if mode == "treasury" else stack.pool.address

    def coordinator(clock: Clock) -> BudgetCoordinator:
        return BudgetCoordinator(
            stack,
            team.treasury,
            BUDGET,
            mode=mode,
            store=store_url,
            clock=clock,  # type: ignore[arg-type]
        )

    spender = coordinator(spender_clock)
    spender.register_agent(
        AgentConfig("research-agent", "Research", team.research, BUDGET, BUDGET, BUDGET)
    )
    other = coordinator(other_clock)

    owner, name = _send_path(stack, mode)
    send = getattr(owner, name)
    paused, resume = threading.Event(), threading.Event()

    def pause_then_send(*args: Any, **kwargs: Any) -> Any:
        if not paused.is_set():
            paused.set()
            assert resume.wait(60)
        return send(*args, **kwargs)

    results: list[Any] = []
    request = SpendRequest("research-agent", BUDGET, team.provider, "all of it")
    if notices:
        # Paused between reserving and sending: the check before sending sees the row.
        original = spender._spending.execute  # phase 2

        def pause_in_phase_two(reserved: Any) -> Any:
            paused.set()
            assert resume.wait(60)
            spender_clock.advance(HOUR)  # the process slept an hour
            return original(reserved)

        monkeypatch.setattr(spender._spending, "execute", pause_in_phase_two)
    else:
        monkeypatch.setattr(owner, name, pause_then_send)  # paused right before the send
    thread = threading.Thread(target=lambda: results.append(spender.request_spending(request)))
    thread.start()
    assert paused.wait(60)
    if not notices:
        monkeypatch.setattr(owner, name, send)  # the other process sends normally

    other_clock.advance(HOUR)
    summary = other.recover()
    assert len(summary.voided) == 1  # fenced on-chain, then voided
    second = other.request_spending(SpendRequest("research-agent", BUDGET, team.provider, "again"))
    assert second.approved, second.reason

    resume.set()
    thread.join(60)
    (late,) = results
    assert late.status is SpendStatus.FAILED and late.code is Reason.FUNDING_FAILED
    report = other.report()
    assert (report.total_spent, report.reserved) == (BUDGET, 0)  # never 2x the budget
    assert_ledger_matches_chain(other, stack, requester)
    spender.close()
    other.close()
