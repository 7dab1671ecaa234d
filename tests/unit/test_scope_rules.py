"""Budget scopes and delegation as pure rules (DESIGN.md section 8): paths, what a spend
charges, the scope budget check, what a spawned child may be given."""

from __future__ import annotations

from dataclasses import replace

import pytest

from escrowkit.budget import AgentConfig, PolicyInputs, ScopeUsage, SpendRequest, Usage, evaluate
from escrowkit.budget.delegation import check_narrower, inherit, parent_id
from escrowkit.budget.scopes import (
    agent_path,
    charged_scopes,
    check_scope,
    in_scope,
    scope_order,
    workflow_path,
)
from escrowkit.core.reasons import Reason
from escrowkit.core.units import TokenUnits
from escrowkit.errors import InvalidRequest

U = 10**6
USDC = TokenUnits(6, "USDC")
AGENT = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
PROVIDER = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"
OTHER = "0x6813Eb9362372EEF6200f3b1dbC3f819671cBA69"


def agent(agent_id: str = "planner", **extra: object) -> AgentConfig:
    values: dict[str, object] = {
        "spending_limit": 100 * U,
        "daily_limit": 300 * U,
        "requires_approval": 50 * U,
    }
    values.update(extra)
    return AgentConfig(agent_id, agent_id, AGENT, **values)  # type: ignore[arg-type]


# ---- paths ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "",
        "tenant:acme",
        "tenant:acme/workspace:alpha/workflow:task-123/agent:planner",
        "workspace:alpha/agent:planner/agent:child/toolset:search",
        "app:crm/agent:a b",  # names may hold inner blanks, like agent ids
    ],
)
def test_well_formed_paths(path: str) -> None:
    assert check_scope(path) == path


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/workspace:alpha", "kind:name"),
        ("workspace:alpha/", "kind:name"),
        ("workspace:alpha//agent:x", "kind:name"),
        ("team:alpha", "kind:name"),
        ("workspace", "kind:name"),
        ("workspace:", "the name"),
        ("workspace: alpha", "the name"),
        ("workspace:a:b", "the name"),
        ("workspace:alpha/tenant:acme", "cannot follow"),
        ("workspace:a/workspace:b", "only agent may repeat"),
        ("agent:x/toolset:t/agent:y", "cannot follow"),
        ("workspace:" + "x" * 129, "the name"),
        ("agent:x/" * 200 + "agent:y", "longer than"),
    ],
)
def test_malformed_paths_are_invalid_requests(path: str, says: str) -> None:
    with pytest.raises(InvalidRequest, match=says):
        check_scope(path)


def test_the_root_is_not_a_scope_one_allocates_to() -> None:
    with pytest.raises(InvalidRequest, match="set_total_budget"):
        check_scope("", root=False)
    with pytest.raises(InvalidRequest, match="string"):
        check_scope(["workspace:alpha"])


def test_prefix_matching_is_by_segment() -> None:
    assert in_scope("workspace:alpha/agent:x", "workspace:alpha")
    assert in_scope("workspace:alpha", "workspace:alpha")
    assert not in_scope("workspace:alphabet", "workspace:alpha")
    assert in_scope("anything:at-all", "")
    paths = ["workspace:a-b", "workspace:a/agent:x", "", "workspace:a"]
    assert sorted(paths, key=scope_order) == [
        "",
        "workspace:a",
        "workspace:a/agent:x",
        "workspace:a-b",
    ]


def test_an_agent_charges_its_path_and_every_prefix() -> None:
    path = agent_path("tenant:acme/workspace:alpha", "planner")
    assert path == "tenant:acme/workspace:alpha/agent:planner"
    assert charged_scopes(path) == (
        "tenant:acme",
        "tenant:acme/workspace:alpha",
        "tenant:acme/workspace:alpha/agent:planner",
    )
    assert charged_scopes(agent_path("", "solo")) == ("agent:solo",)


def test_a_workflow_goes_before_the_first_agent_and_the_plain_path_is_charged_too() -> None:
    child = "workspace:a/agent:p/agent:c"
    assert workflow_path(child, "t1") == "workspace:a/workflow:t1/agent:p/agent:c"
    # Outermost first; on a tie the workflow's path before the plain one.
    assert charged_scopes(child, "t1") == (
        "workspace:a",
        "workspace:a/workflow:t1",
        "workspace:a/agent:p",
        "workspace:a/workflow:t1/agent:p",
        "workspace:a/agent:p/agent:c",
        "workspace:a/workflow:t1/agent:p/agent:c",
    )
    assert charged_scopes("agent:x", "t1") == ("workflow:t1", "agent:x", "workflow:t1/agent:x")


def test_a_workflow_cannot_be_named_twice() -> None:
    with pytest.raises(InvalidRequest, match="only agent may repeat"):
        charged_scopes("workflow:w/agent:x", "t1")
    with pytest.raises(InvalidRequest, match="workflow"):
        SpendRequest("x", U, PROVIDER, "p", workflow="a/b")


def test_agent_scopes_are_validated_on_creation() -> None:
    assert agent(scope="workspace:alpha").path == "workspace:alpha/agent:planner"
    with pytest.raises(InvalidRequest, match="malformed scope"):
        agent(scope="workspace:alpha/")
    with pytest.raises(InvalidRequest, match="cannot follow"):
        agent(scope="workspace:alpha/toolset:search")  # an agent cannot sit under a toolset
    # An id with '/' or ':' (allowed before scopes) stays at the root, with no path.
    assert agent("ops/eu").path == ""
    assert charged_scopes(agent("ops/eu").path) == ()
    with pytest.raises(InvalidRequest, match="cannot be part of a scope"):
        agent("ops/eu", scope="workspace:alpha")


# ---- the scope budget check ------------------------------------------------------------


def inputs(*scopes: ScopeUsage, total_used: int = 0) -> PolicyInputs:
    return PolicyInputs(
        agent=agent(),
        units=USDC,
        total_budget=1_000 * U,
        scopes=scopes,
        usage=Usage(total=total_used),
    )


def test_the_first_scope_that_would_overflow_denies_and_is_named() -> None:
    request = SpendRequest("planner", 10 * U, PROVIDER, "p")
    decision = evaluate(
        request,
        inputs(
            ScopeUsage("workspace:alpha", 50 * U, 45 * U),
            ScopeUsage("workspace:alpha/agent:planner", 20 * U, 15 * U),
        ),
    )
    assert decision.code is Reason.SCOPE_BUDGET
    assert decision.reason == (
        "Amount 10.00 USDC exceeds scope budget 'workspace:alpha' 50.00 USDC "
        "(45.00 USDC used so far, 5.00 USDC left)"
    )
    exact = evaluate(request, inputs(ScopeUsage("workspace:alpha", 50 * U, 40 * U)))
    assert exact.allowed  # reaching the cap exactly fits


def test_scopes_come_after_the_category_budget_and_before_the_total() -> None:
    request = SpendRequest("planner", 10 * U, PROVIDER, "p", category="data")
    full = ScopeUsage("workspace:alpha", 10 * U, 5 * U)
    with_category = replace(
        inputs(full, total_used=995 * U), category_budget=10 * U, category_has_budget=True
    )
    capped = replace(with_category, usage=Usage(category=9 * U, total=995 * U))
    assert evaluate(request, capped).code is Reason.CATEGORY_BUDGET
    assert evaluate(request, with_category).code is Reason.SCOPE_BUDGET
    roomy = replace(with_category, scopes=(ScopeUsage("workspace:alpha", 20 * U, 5 * U),))
    assert evaluate(request, roomy).code is Reason.TOTAL_BUDGET


# ---- delegation ------------------------------------------------------------------------


def test_a_child_inherits_what_it_leaves_open_and_sits_under_its_parent() -> None:
    parent = agent(scope="workspace:a", hourly_limit=80 * U, categories=["data"])
    child = inherit(parent, agent("child", spending_limit=10 * U))
    assert child.scope == "workspace:a/agent:planner"
    assert child.path == "workspace:a/agent:planner/agent:child"
    assert (child.hourly_limit, child.categories, child.allowed_providers) == (
        80 * U,
        ("data",),
        None,
    )
    check_narrower(parent, child)
    assert parent_id(child.scope) == "planner"
    assert parent_id("workspace:a") is None


def test_a_child_placed_by_hand_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="leave scope empty"):
        inherit(agent(), agent("child", scope="workspace:a"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("spending_limit", 101 * U),
        ("daily_limit", 301 * U),
        ("requires_approval", 51 * U),
        ("hourly_limit", 81 * U),
        ("categories", ["data", "travel"]),
        ("allowed_providers", [PROVIDER, OTHER]),
    ],
)
def test_a_child_can_only_narrow(field: str, value: object) -> None:
    parent = agent(hourly_limit=80 * U, categories=["data"], allowed_providers=[PROVIDER])
    child = inherit(parent, agent("child", **{field: value}))
    with pytest.raises(InvalidRequest, match=field):
        check_narrower(parent, child)


def test_a_limit_the_parent_has_cannot_be_dropped_by_a_child_registered_directly() -> None:
    parent = agent(hourly_limit=80 * U)
    child = agent("child", scope=parent.path)  # no hourly limit: wider than the parent's
    with pytest.raises(InvalidRequest, match="hourly_limit"):
        check_narrower(parent, child)


def test_an_agent_cannot_be_delegated_by_its_own_descendant() -> None:
    child = inherit(agent("root-agent"), agent("planner"))
    with pytest.raises(InvalidRequest, match="own descendant"):
        check_narrower(child, agent("root-agent", scope=child.path))
