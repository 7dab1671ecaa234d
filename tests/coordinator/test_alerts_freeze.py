"""Alerts at 80/90/100 % fire once each; a freeze denies everything until unfreeze."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from coordinator_helpers import BUDGET, USDC, Clock, Team, reference_agents

from escrowkit import Reason
from escrowkit.coordinator import Alert, BudgetCoordinator, SpendRequest, SpendStatus

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack


def test_total_and_daily_alerts_fire_once_each(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, caplog: pytest.LogCaptureFixture
) -> None:
    escrow_before = stack.token.balance_of(stack.escrow.address)
    fired: list[Alert] = []
    coordinator.on_alert(fired.append)

    @coordinator.on_alert
    def broken(alert: Alert) -> None:  # a failing callback is logged, never breaks a spend
        raise RuntimeError("pager down")

    compute = coordinator.agent("compute-agent")  # daily limit 1,000 = the total budget
    seen: list[list[tuple[str, int]]] = []
    for amount in (200, 200, 200, 200, 100, 50, 50):
        assert compute.purchase_service(team.provider, amount * USDC, "gpu").approved
        seen.append([(a.kind, a.threshold) for a in fired])
        fired.clear()
    both = [("total_budget", 80), ("daily_limit", 80)]
    assert seen == [
        [],
        [],
        [],
        both,  # 800 of 1,000
        [("total_budget", 90), ("daily_limit", 90)],
        [],  # 950: nothing new
        [("total_budget", 100), ("daily_limit", 100)],
    ]
    assert "pager down" in caplog.text
    report = coordinator.report()
    assert [(a.kind, a.threshold) for a in report.alerts] == [
        ("total_budget", 80),
        ("daily_limit", 80),
        ("total_budget", 90),
        ("daily_limit", 90),
        ("total_budget", 100),
        ("daily_limit", 100),
    ]
    total_80 = report.alerts[0]
    assert (total_80.scope, total_80.spent, total_80.limit) == ("total", 800 * USDC, BUDGET)
    assert report.alerts[1].scope == "compute-agent" and report.alerts[1].period == "2026-01-02"
    # The alerts follow what the chain holds: the whole budget is escrowed.
    assert stack.token.balance_of(stack.escrow.address) - escrow_before == BUDGET
    assert report.total_spent == BUDGET


def test_daily_alerts_fire_again_on_a_new_day(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, clock: Clock
) -> None:
    escrow_before = stack.token.balance_of(stack.escrow.address)
    fired: list[Alert] = []
    coordinator.on_alert(fired.append)
    research = coordinator.agent("research-agent")  # daily limit 300
    for _ in range(2):
        for amount in (50, 50, 50, 50, 40):  # 240 of 300: 80 %
            assert research.purchase_service(team.provider, amount * USDC, "papers").approved
        clock.advance(86_400)
    assert [(a.kind, a.threshold, a.period) for a in fired] == [
        ("daily_limit", 80, "2026-01-02"),
        ("daily_limit", 80, "2026-01-03"),
    ]  # 480 of the 1,000 total: no total alert
    assert stack.token.balance_of(stack.escrow.address) - escrow_before == 480 * USDC


@pytest.mark.parametrize("store_url", ["file"], indirect=True)
def test_freeze_denies_everything_until_unfreeze(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, store_url: str, clock: Clock
) -> None:
    waiting = coordinator.request_spending(
        SpendRequest("data-agent", 150 * USDC, team.provider, "data")
    )
    assert waiting.approval_id is not None
    balance = stack.token.balance_of(team.treasury)
    # Another coordinator (another process) on the same store sees the freeze too.
    other = BudgetCoordinator(
        stack, treasury=team.treasury, total_budget=BUDGET, store=store_url, clock=clock
    )
    coordinator.freeze("suspicious activity")

    for who in (coordinator, other):
        result = who.agent("research-agent").purchase_service(team.provider, 1 * USDC, "x")
        assert result.status is SpendStatus.DENIED and result.code is Reason.FROZEN
        assert result.reason == "Spending is frozen: suspicious activity"
    approval = other.approve_spending(waiting.approval_id, approver="cfo")
    assert approval.status is SpendStatus.DENIED and approval.code is Reason.FROZEN
    assert coordinator.report().frozen == "suspicious activity"
    assert stack.token.balance_of(team.treasury) == balance
    assert coordinator.report().total_spent == 0 and coordinator.reservations() == []

    coordinator.unfreeze()
    assert other.agent("research-agent").purchase_service(team.provider, 1 * USDC, "x").approved
    # The approval tried during the freeze was closed: it cannot be used afterwards.
    closed = coordinator.approve_spending(waiting.approval_id, approver="cfo")
    assert closed.status is SpendStatus.DENIED and closed.code is Reason.APPROVAL_REJECTED
    assert "already denied" in closed.reason
    other.close()


@pytest.mark.parametrize("store_url", ["file"], indirect=True)
def test_a_changed_limit_re_arms_its_alerts(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, clock: Clock, store_url: str
) -> None:
    """An alert fires once per limit: after the daily limit or the budget is raised, the
    same threshold of the new limit fires again."""
    fired: list[Alert] = []
    coordinator.on_alert(fired.append)
    research = coordinator.agent("research-agent")  # 300 a day, 50 each without approval

    def spend(times: int) -> list[tuple[str, int, int]]:
        for _ in range(times):
            assert research.purchase_service(team.provider, 50 * USDC, "x").approved
        seen = [(a.kind, a.threshold, a.limit) for a in fired]
        fired.clear()
        return seen

    assert spend(5) == [("daily_limit", 80, 300 * USDC)]  # 250 of 300
    config = next(a for a in reference_agents(team) if a.id == "research-agent")
    coordinator.register_agent(replace(config, daily_limit=600 * USDC))
    assert spend(4) == []  # 450 of 600
    assert spend(1) == [("daily_limit", 80, 600 * USDC)]  # 500 of 600
    # 500 of the 1,000 budget so far; 800 fires the total's 80 %.
    clock.advance(86_400)
    assert spend(6) == [("total_budget", 80, BUDGET)]
    coordinator.close()
    # Another coordinator on the same ledger doubles the budget: 1,600 fires it again.
    with BudgetCoordinator(stack, treasury=team.treasury, store=store_url, clock=clock) as raised:
        raised.set_total_budget(2 * BUDGET)
        raised.on_alert(fired.append)
        research = raised.agent("research-agent")
        clock.advance(86_400)
        assert spend(6) == []  # 1,100 of 2,000 (300 of 600 today)
        clock.advance(86_400)
        assert spend(10) == [("total_budget", 80, 2 * BUDGET), ("daily_limit", 80, 600 * USDC)]
        report = raised.report()
        assert [(a.kind, a.threshold, a.limit) for a in report.alerts if a.scope == "total"] == [
            ("total_budget", 80, 2 * BUDGET)
        ]
        assert report.total_spent == 1_600 * USDC
