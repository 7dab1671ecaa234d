"""Budget scopes and delegation on real contracts (DESIGN.md section 8; issue 17): the
patterns Cycles publishes (a workspace cap over agent budgets that add up to more, one
budget per workflow), delegation (children narrow their parent and charge its scope;
removing the parent stops them), and the figures: denials name the scope, refunds
credit every charged scope, reservations count until voided, balances in path order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from coordinator_helpers import USDC, Team

from escrowkit import AgentConfig, Reason, ScopeBalance, SpendRequest, SpendStatus
from escrowkit.contracts.escrow import EscrowState
from escrowkit.errors import ChainError, InvalidRequest, NotFound
from escrowkit.ledger import ReservationStatus

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack
    from escrowkit.coordinator import BudgetCoordinator

ALPHA = "workspace:alpha"


def place(coordinator: BudgetCoordinator, scope: str = ALPHA) -> None:
    """Move the reference agents (research, data, compute) into ``scope``."""
    for agent in list(coordinator.agents.values()):
        coordinator.register_agent(AgentConfig(**{**agent.__dict__, "scope": scope}))


def spend(coordinator: BudgetCoordinator, team: Team, agent: str, amount: int, **extra: Any) -> Any:
    return coordinator.request_spending(
        SpendRequest(agent, amount * USDC, team.provider, "work", **extra)
    )


def balance(coordinator: BudgetCoordinator, scope: str) -> ScopeBalance:
    [found] = [b for b in coordinator.balances(scope) if b.scope == scope]
    return found


# ---- Cycles' patterns ------------------------------------------------------------------


def test_a_workspace_cap_binds_whatever_the_agents_have_left(
    coordinator: BudgetCoordinator, team: Team
) -> None:
    """$50 over agents allocated 20/30/10 (60 in sum): the spend that would pass 50 is
    denied, naming the workspace, though its agent still has budget left."""
    place(coordinator)
    coordinator.set_budget(ALPHA, 50 * USDC)
    for agent, amount in (("research-agent", 20), ("data-agent", 30), ("compute-agent", 10)):
        coordinator.set_budget(f"{ALPHA}/agent:{agent}", amount * USDC)
    assert spend(coordinator, team, "research-agent", 20).approved
    assert spend(coordinator, team, "data-agent", 25).approved
    denied = spend(coordinator, team, "compute-agent", 10)  # compute has 10 of its own left
    assert (denied.status, denied.code) == (SpendStatus.DENIED, Reason.SCOPE_BUDGET)
    assert denied.reason == (
        "Amount 10.00 USDC exceeds scope budget 'workspace:alpha' 50.00 USDC "
        "(45.00 USDC used so far, 5.00 USDC left)"
    )
    assert spend(coordinator, team, "compute-agent", 5).approved  # exactly to the cap
    own = spend(coordinator, team, "research-agent", 1)
    assert own.code is Reason.SCOPE_BUDGET and "'workspace:alpha'" in own.reason  # outermost
    assert [(b.scope, b.spent, b.remaining) for b in coordinator.balances(ALPHA)] == [
        (ALPHA, 50 * USDC, 0),
        (f"{ALPHA}/agent:compute-agent", 5 * USDC, 5 * USDC),
        (f"{ALPHA}/agent:data-agent", 25 * USDC, 5 * USDC),
        (f"{ALPHA}/agent:research-agent", 20 * USDC, 0),
    ]


def test_two_workflows_with_a_budget_each_are_isolated(
    coordinator: BudgetCoordinator, team: Team
) -> None:
    place(coordinator)
    for task in ("t1", "t2"):
        coordinator.set_budget(f"{ALPHA}/workflow:{task}", 10 * USDC)
    assert spend(coordinator, team, "research-agent", 10, workflow="t1").approved
    over = spend(coordinator, team, "data-agent", 1, workflow="t1")
    assert over.code is Reason.SCOPE_BUDGET and "'workspace:alpha/workflow:t1'" in over.reason
    assert spend(coordinator, team, "data-agent", 10, workflow="t2").approved  # t1 took nothing
    # A workflow never escapes the agent's own budget: its plain path is charged too.
    coordinator.set_budget(f"{ALPHA}/agent:research-agent", 12 * USDC)
    coordinator.set_budget(f"{ALPHA}/workflow:t3", 10 * USDC)
    own = spend(coordinator, team, "research-agent", 5, workflow="t3")
    assert (
        own.code is Reason.SCOPE_BUDGET and "'workspace:alpha/agent:research-agent'" in own.reason
    )
    assert balance(coordinator, f"{ALPHA}/workflow:t1").spent == 10 * USDC
    assert balance(coordinator, f"{ALPHA}/workflow:t3").spent == 0


def test_a_child_with_limits_above_its_parents_is_refused(
    coordinator: BudgetCoordinator, team: Team
) -> None:
    too_much = AgentConfig("child", "Child", team.other_provider, 101 * USDC, 200 * USDC, 0)
    with pytest.raises(InvalidRequest, match=r"only narrow.*spending_limit"):
        coordinator.spawn_agent("research-agent", too_much)
    daily = AgentConfig("child", "Child", team.other_provider, 10 * USDC, 301 * USDC, 0)
    with pytest.raises(InvalidRequest, match=r"only narrow.*daily_limit"):
        coordinator.spawn_agent("research-agent", daily)
    # The per-agent rule holds for a child too: a daily limit below its per-transaction one.
    below = AgentConfig("child", "Child", team.other_provider, 10 * USDC, 5 * USDC, 0)
    with pytest.raises(InvalidRequest, match=r"daily_limit .* is below spending_limit"):
        coordinator.spawn_agent("research-agent", below)
    with pytest.raises(InvalidRequest, match="leave scope empty"):
        coordinator.spawn_agent(
            "research-agent", AgentConfig("child", "C", team.other_provider, 1, 1, 0, scope=ALPHA)
        )
    with pytest.raises(NotFound, match="not registered"):
        coordinator.spawn_agent("nobody", AgentConfig("child", "C", team.other_provider, 1, 1, 0))
    assert "child" not in coordinator.agents


def test_a_childs_spends_charge_its_parents_scope(
    coordinator: BudgetCoordinator, team: Team
) -> None:
    place(coordinator)
    child = coordinator.spawn_agent(
        "research-agent",
        AgentConfig("scraper", "Scraper", team.other_provider, 20 * USDC, 100 * USDC, 10 * USDC),
    )
    parent_path = f"{ALPHA}/agent:research-agent"
    assert child.scope == parent_path and child.path == f"{parent_path}/agent:scraper"
    coordinator.set_budget(parent_path, 30 * USDC)
    assert spend(coordinator, team, "scraper", 10).approved
    assert spend(coordinator, team, "research-agent", 15).approved
    denied = spend(coordinator, team, "scraper", 10)
    assert denied.code is Reason.SCOPE_BUDGET and f"{parent_path!r}" in denied.reason
    assert balance(coordinator, parent_path).spent == 25 * USDC
    # The child's own per-agent limits are its own.
    assert spend(coordinator, team, "scraper", 25).code is Reason.PER_TRANSACTION_LIMIT


def test_removing_a_parent_stops_its_children_at_once_and_closes_their_approvals(
    coordinator: BudgetCoordinator, stack: Stack, team: Team
) -> None:
    child = AgentConfig("scraper", "Scraper", team.other_provider, 50 * USDC, 100 * USDC, 5 * USDC)
    coordinator.spawn_agent("research-agent", child)
    coordinator.spawn_agent(
        "scraper", AgentConfig("grandchild", "G", team.other_provider, 5 * USDC, 5 * USDC, 0)
    )
    funded = spend(coordinator, team, "scraper", 5)
    waiting = spend(coordinator, team, "scraper", 20)
    assert funded.approved and waiting.status is SpendStatus.PENDING_APPROVAL

    removed = coordinator.remove_agent("research-agent")
    assert sorted(removed) == ["grandchild", "research-agent", "scraper"]
    for agent in removed:
        later = spend(coordinator, team, agent, 1)
        assert (later.status, later.code) == (SpendStatus.DENIED, Reason.UNKNOWN_AGENT)
        assert "removed" in later.reason
    approved = coordinator.approve_spending(waiting.approval_id or "", "ops")
    assert (approved.status, approved.code) == (SpendStatus.DENIED, Reason.APPROVAL_REJECTED)
    assert "'research-agent' was removed" in approved.reason
    closed = [
        e.data
        for e in coordinator.outbox.after(0, limit=1000)
        if e.type == "approval" and e.data["approval_id"] == waiting.approval_id
    ]
    assert [e["status"] for e in closed] == ["PENDING", "REJECTED"]  # streams and webhooks
    # What they funded stays funded and counted.
    assert stack.escrow.get(funded.escrow_id or "").state is EscrowState.FUNDED
    report = coordinator.report()
    assert report.total_spent == 5 * USDC and report.pending_approvals == {}
    assert report.by_agent["scraper"].removed and report.by_agent["scraper"].spent == 5 * USDC
    assert coordinator.remove_agent("scraper") == ()  # already removed: nothing to do
    # Registering again re-enables that id (its children stay removed until registered).
    coordinator.register_agent(
        AgentConfig("research-agent", "Research", team.research, 100 * USDC, 300 * USDC, 50 * USDC)
    )
    assert spend(coordinator, team, "research-agent", 1).approved
    assert spend(coordinator, team, "scraper", 1).code is Reason.UNKNOWN_AGENT
    coordinator.spawn_agent("research-agent", child)
    assert spend(coordinator, team, "scraper", 1).approved


def test_an_agent_with_children_does_not_move(coordinator: BudgetCoordinator, team: Team) -> None:
    coordinator.spawn_agent(
        "research-agent", AgentConfig("scraper", "S", team.other_provider, 1, 1, 0)
    )
    research = coordinator.agents["research-agent"]
    with pytest.raises(InvalidRequest, match="children"):
        coordinator.register_agent(AgentConfig(**{**research.__dict__, "scope": ALPHA}))
    coordinator.register_agent(research)  # updating in place is fine
    with pytest.raises(InvalidRequest, match="spawn_agent"):
        coordinator.register_agent(
            AgentConfig("orphan", "O", team.other_provider, 1, 1, 0, scope="agent:nobody")
        )


# ---- the figures -----------------------------------------------------------------------


def test_refunds_credit_every_charged_scope(
    coordinator: BudgetCoordinator, stack: Stack, team: Team
) -> None:
    place(coordinator)
    coordinator.spawn_agent(
        "research-agent",
        AgentConfig("scraper", "S", team.other_provider, 50 * USDC, 50 * USDC, 50 * USDC),
    )
    scopes = [ALPHA, f"{ALPHA}/workflow:t1", f"{ALPHA}/agent:research-agent"]
    for scope in scopes:
        coordinator.set_budget(scope, 100 * USDC)
    result = spend(coordinator, team, "scraper", 30, workflow="t1")
    assert [balance(coordinator, s).spent for s in scopes] == [30 * USDC] * 3
    stack.escrow.cancel(result.escrow_id or "", sender=team.provider)  # the provider refunds
    assert len(coordinator.sync().refunded) == 1
    assert [(balance(coordinator, s).spent, balance(coordinator, s).remaining) for s in scopes] == [
        (0, 100 * USDC)
    ] * 3
    assert coordinator.report().total_spent == 0


def test_reservations_count_in_every_scope_until_voided(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    place(coordinator)
    coordinator.set_budget(ALPHA, 100 * USDC)
    coordinator.set_budget(f"{ALPHA}/agent:data-agent", 40 * USDC)
    seen: list[list[tuple[str, int, int]]] = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        seen.append([(b.scope, b.reserved, b.remaining) for b in coordinator.balances()])
        raise ChainError("node unreachable")

    monkeypatch.setattr(stack.escrow, "create_and_fund", failing)
    failed = spend(coordinator, team, "data-agent", 25)
    assert failed.status is SpendStatus.FAILED
    assert seen == [
        [
            ("", 25 * USDC, 975 * USDC),
            (ALPHA, 25 * USDC, 75 * USDC),
            (f"{ALPHA}/agent:data-agent", 25 * USDC, 15 * USDC),
        ]
    ]
    assert coordinator.reservation(failed.reservation_id or "").status is ReservationStatus.VOIDED
    assert [(b.reserved, b.spent) for b in coordinator.balances()] == [(0, 0)] * 3


def test_balances_match_by_segment_in_path_order_and_report_shows_them(
    coordinator: BudgetCoordinator, team: Team
) -> None:
    for scope in ("workspace:alphabet", "workspace:alpha/app:crm", ALPHA, "workspace:alpha-2"):
        coordinator.set_budget(scope, 10 * USDC)
    assert [b.scope for b in coordinator.balances(ALPHA)] == [ALPHA, f"{ALPHA}/app:crm"]
    everything = coordinator.balances()
    assert [b.scope for b in everything] == [
        "",
        ALPHA,
        f"{ALPHA}/app:crm",
        "workspace:alpha-2",
        "workspace:alphabet",
    ]
    assert everything[0] == ScopeBalance("", 1_000 * USDC, 0, 0, 1_000 * USDC)  # the total
    assert coordinator.report().scopes == everything
    coordinator.set_budget("workspace:alphabet", None)
    assert "workspace:alphabet" not in [b.scope for b in coordinator.balances()]
    with pytest.raises(InvalidRequest, match="set_total_budget"):
        coordinator.set_budget("", 10)
    with pytest.raises(InvalidRequest, match="malformed scope"):
        coordinator.set_budget("workspace:alpha/", 10)
    with pytest.raises(InvalidRequest, match="malformed scope"):
        coordinator.balances("alpha")
    # Categories are not scopes: their budgets are not rows here.
    coordinator.set_category_budget("data", 10 * USDC)
    assert len(coordinator.balances()) == 4


def test_a_workflow_twice_is_an_invalid_request(coordinator: BudgetCoordinator, team: Team) -> None:
    place(coordinator, f"{ALPHA}/workflow:fixed")
    with pytest.raises(InvalidRequest, match="only agent may repeat"):
        spend(coordinator, team, "research-agent", 1, workflow="other")
    assert spend(coordinator, team, "research-agent", 1).approved


@pytest.mark.parametrize("mode", ["pool"], indirect=True)
def test_in_pool_mode_spawn_and_remove_write_the_on_chain_limits(
    coordinator: BudgetCoordinator, stack: Stack, team: Team, accounts: list[str]
) -> None:
    child_address = accounts[7]
    coordinator.spawn_agent(
        "compute-agent", AgentConfig("gpu", "GPU", child_address, 40 * USDC, 80 * USDC, 40 * USDC)
    )
    limits = stack.pool.agent(child_address)
    assert (limits.per_tx_limit, limits.period_limit) == (40 * USDC, 80 * USDC)
    assert spend(coordinator, team, "gpu", 30).approved
    coordinator.remove_agent("compute-agent")
    assert stack.pool.agent(child_address).period == 0
    assert stack.pool.agent(team.compute).period == 0
    assert spend(coordinator, team, "gpu", 1).code is Reason.UNKNOWN_AGENT
    assert stack.pool.net_spent() == 30 * USDC  # what it funded is untouched
