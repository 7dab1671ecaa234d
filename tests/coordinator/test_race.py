"""No overspend: 32 threads racing for the last funds get exactly what fits, in the
ledger and on-chain, through the total budget and through sibling scopes under one cap.
(Processes sharing one SQLite file: test_processes.py.)"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest
from coordinator_helpers import BUDGET, USDC, Team

from escrowkit import Reason
from escrowkit.contracts.escrow import EscrowState
from escrowkit.coordinator import (
    AgentConfig,
    BudgetCoordinator,
    NoopExecutor,
    ReservationStatus,
    SpendRequest,
    SpendResult,
    SpendStatus,
)

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack

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
    assert all(r.code in (Reason.TOTAL_BUDGET, Reason.DAILY_LIMIT) for r in denied)

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


@pytest.mark.parametrize("store_url", ["file", "pg"], indirect=True)
def test_two_stores_on_one_database_never_overspend(store_url: str) -> None:
    """Two coordinators with their own Store (own engine and connections, as two
    processes have) race on one database: only the database's lock (SQLite BEGIN
    IMMEDIATE, PostgreSQL's row lock) stands between them, and exactly what fits is
    approved. Chain work is a shared no-op executor: the ledger is what is under test."""
    executor = NoopExecutor()
    agent = AgentConfig(
        "a", "A", "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf", AMOUNT, BUDGET, AMOUNT
    )
    coordinators = [
        BudgetCoordinator(None, total_budget=BUDGET, store=store_url, executor=executor)
        for _ in range(2)
    ]
    coordinators[0].register_agent(agent)
    results: list[SpendResult] = []
    gate = threading.Barrier(THREADS)
    provider = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"

    def spend(coordinator: BudgetCoordinator) -> None:
        gate.wait()
        results.append(coordinator.request_spending(SpendRequest("a", AMOUNT, provider, "x")))

    threads = [threading.Thread(target=spend, args=(coordinators[n % 2],)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    approved = [r for r in results if r.approved]
    assert len(results) == THREADS and len(approved) == BUDGET // AMOUNT
    for coordinator in coordinators:
        report = coordinator.report()
        assert (report.total_spent, report.reserved) == (len(approved) * AMOUNT, 0)
        coordinator.close()


CAP = 300 * USDC
CHILD_BUDGETS = {
    "research-agent": 100 * USDC,
    "data-agent": 150 * USDC,
    "compute-agent": 200 * USDC,
}
STEP = 20 * USDC  # 32 x 20 = 640 asked; the cap takes 15, the children 5 + 7 + 10 = 22


@pytest.mark.parametrize("store_url", ["memory", "file", "pg"], indirect=True)
def test_threads_through_sibling_scopes_never_pass_the_cap_nor_a_childs_budget(
    coordinator: BudgetCoordinator, stack: Stack, team: Team
) -> None:
    """Three agents under one workspace cap, each with a budget of its own; the children's
    budgets add up to more than the cap (450 against 300). 32 threads race: the cap is
    reached exactly, no child passes its own budget, the chain holds what the ledger says."""
    for agent in list(coordinator.agents.values()):
        coordinator.register_agent(AgentConfig(**{**agent.__dict__, "scope": "workspace:w"}))
    coordinator.set_budget("workspace:w", CAP)
    for agent_id, budget in CHILD_BUDGETS.items():
        coordinator.set_budget(f"workspace:w/agent:{agent_id}", budget)
    agents = list(CHILD_BUDGETS)
    results: list[tuple[str, SpendResult]] = []
    gate = threading.Barrier(THREADS)

    def spend(agent_id: str) -> None:
        gate.wait()
        outcome = coordinator.agent(agent_id).purchase_service(team.provider, STEP, "race")
        results.append((agent_id, outcome))

    threads = [threading.Thread(target=spend, args=(agents[n % 3],)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == THREADS
    approved = [(a, r) for a, r in results if r.approved]
    assert all(r.code is Reason.SCOPE_BUDGET for _, r in results if not r.approved)
    assert len(approved) * STEP == CAP  # the cap binds, exactly
    for agent_id, budget in CHILD_BUDGETS.items():
        assert sum(STEP for a, _ in approved if a == agent_id) <= budget
    balances = {b.scope: b for b in coordinator.balances("workspace:w")}
    assert (balances["workspace:w"].spent, balances["workspace:w"].reserved) == (CAP, 0)
    for agent_id, budget in CHILD_BUDGETS.items():
        mine = balances[f"workspace:w/agent:{agent_id}"]
        assert mine.spent == sum(STEP for a, _ in approved if a == agent_id) <= budget
    records = [stack.escrow.get(r.escrow_id or "") for _, r in approved]
    assert all(rec.state is EscrowState.FUNDED and rec.amount == STEP for rec in records)
    assert coordinator.report().total_spent == CAP


@pytest.mark.parametrize("store_url", ["file", "pg"], indirect=True)
def test_two_stores_racing_through_sibling_workflows_never_pass_a_cap(store_url: str) -> None:
    """Two coordinators with their own Store on one database (as two processes), 32
    threads spending through four sibling workflows (80 each, 320 in sum) under a
    workspace cap of 200 and a three-level path: only the database's lock stands between
    them, and neither the cap nor any workflow's budget is passed."""
    executor = NoopExecutor()
    scope = "tenant:t/workspace:w"
    agent = AgentConfig(
        "a", "A", "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf", AMOUNT, BUDGET, AMOUNT, scope=scope
    )
    coordinators = [
        BudgetCoordinator(None, total_budget=BUDGET, store=store_url, executor=executor)
        for _ in range(2)
    ]
    coordinators[0].register_agent(agent)
    coordinators[0].set_budget(scope, 200 * USDC)
    flows = [f"f{n}" for n in range(4)]
    for flow in flows:
        coordinators[1].set_budget(f"{scope}/workflow:{flow}", 80 * USDC)
    results: list[tuple[str, SpendResult]] = []
    gate = threading.Barrier(THREADS)
    provider = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"

    def spend(n: int) -> None:
        flow = flows[n % 4]
        gate.wait()
        request = SpendRequest("a", 15 * USDC, provider, "x", workflow=flow)
        results.append((flow, coordinators[n % 2].request_spending(request)))

    threads = [threading.Thread(target=spend, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    approved = [(flow, r) for flow, r in results if r.approved]
    assert len(results) == THREADS
    assert len(approved) * 15 * USDC <= 200 * USDC
    assert len(approved) == 13  # 200 // 15: each workflow holds at most 5 (75)
    for flow in flows:
        assert sum(15 * USDC for f, _ in approved if f == flow) <= 80 * USDC
    for coordinator in coordinators:
        spent = {b.scope: b.spent for b in coordinator.balances(scope)}
        assert spent[scope] == len(approved) * 15 * USDC
        coordinator.close()
