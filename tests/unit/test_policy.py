"""The coordinator's rules as pure functions: plain numbers in, decisions out."""

from __future__ import annotations

from decimal import Decimal

import pytest

from escrowkit.budget import AgentConfig, SpendRequest, SpendStatus
from escrowkit.budget.policy import (
    PolicyInputs,
    Usage,
    check_approval_threshold,
    check_category,
    check_category_budget,
    check_daily_limit,
    check_frozen,
    check_hourly_limit,
    check_per_transaction_limit,
    check_provider,
    check_total_budget,
    evaluate,
)
from escrowkit.core.reasons import Reason
from escrowkit.core.units import TokenUnits
from escrowkit.errors import InvalidRequest

USDC = TokenUnits(6, "USDC")
U = 10**6
AGENT = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
PROVIDER = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"
OTHER = "0x6813Eb9362372EEF6200f3b1dbC3f819671cBA69"


def research(**extra: object) -> AgentConfig:
    values: dict[str, object] = {
        "address": AGENT,
        "spending_limit": 100 * U,
        "daily_limit": 300 * U,
        "requires_approval": 50 * U,
    }
    values.update(extra)
    return AgentConfig("research-agent", "Research", **values)  # type: ignore[arg-type]


def request(amount: int, **extra: object) -> SpendRequest:
    return SpendRequest("research-agent", amount, PROVIDER, "papers", **extra)  # type: ignore[arg-type]


def inputs(**extra: object) -> PolicyInputs:
    values: dict[str, object] = {"agent": research(), "units": USDC}
    values.setdefault("total_budget", 1_000 * U)
    values.update(extra)
    return PolicyInputs(**values)  # type: ignore[arg-type]


# ---- token units ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("units", "amount", "text"),
    [
        (USDC, 150 * U, "150.00 USDC"),
        (USDC, 1, "0.000001 USDC"),
        (USDC, 25_500_000, "25.50 USDC"),
        (TokenUnits(18, "WETH"), 10**15, "0.001 WETH"),
        (TokenUnits(18, "WETH"), 2**96 - 1, "79228162514.264337593543950335 WETH"),
        (TokenUnits(0, "PTS"), 7, "7 PTS"),
    ],
)
def test_amounts_show_in_token_units(units: TokenUnits, amount: int, text: str) -> None:
    assert units.format(amount) == text


# ---- each check ----------------------------------------------------------------------


def test_frozen() -> None:
    assert check_frozen(None) is None
    assert check_frozen("incident 42") == "Spending is frozen: incident 42"
    assert check_frozen("") == "Spending is frozen"


def test_category_rules() -> None:
    listed = research(categories=["data", "compute"])
    assert check_category(listed, "data", category_has_budget=False) is None
    assert "must give a category" in (check_category(listed, None, False) or "")
    assert "Unknown category 'travel'" in (check_category(listed, "travel", True) or "")
    unlisted = research()
    assert check_category(unlisted, None, False) is None
    assert check_category(unlisted, "travel", category_has_budget=True) is None
    assert check_category(unlisted, "travel", category_has_budget=False) == (
        "Unknown category 'travel': it has no budget"
    )


def test_provider_allow_list() -> None:
    assert check_provider(research(), PROVIDER) is None
    agent = research(allowed_providers=[PROVIDER.lower()])
    assert agent.allowed_providers == (PROVIDER,)
    assert check_provider(agent, PROVIDER) is None
    assert check_provider(agent, OTHER) == (
        f"Provider not allowed: {OTHER} is not on the list of agent 'research-agent'"
    )


def test_per_transaction_limit_reason_names_amounts_in_token_units() -> None:
    agent = research()
    assert check_per_transaction_limit(agent, 100 * U, USDC) is None
    assert check_per_transaction_limit(agent, 150 * U, USDC) == (
        "Amount 150.00 USDC exceeds per-transaction limit 100.00 USDC"
    )


def test_hourly_limit_only_when_set() -> None:
    assert check_hourly_limit(research(), 90 * U, 10**12, USDC) is None
    agent = research(hourly_limit=60 * U)
    assert check_hourly_limit(agent, 20 * U, 40 * U, USDC) is None  # exactly at the limit
    reason = check_hourly_limit(agent, 21 * U, 40 * U, USDC)
    assert reason == (
        "Amount 21.00 USDC exceeds hourly limit 60.00 USDC "
        "(40.00 USDC used in the last hour, 20.00 USDC left)"
    )


def test_daily_limit_boundary() -> None:
    agent = research()
    assert check_daily_limit(agent, 50 * U, 250 * U, USDC) is None
    reason = check_daily_limit(agent, 50 * U + 1, 250 * U, USDC)
    assert reason is not None and reason.startswith(
        "Amount 50.000001 USDC exceeds daily limit 300.00 USDC"
    )


def test_category_budget_uncapped_without_budget() -> None:
    assert check_category_budget(None, 5 * U, 0, 1, USDC) is None
    assert check_category_budget("data", 5 * U, 10**15, None, USDC) is None
    assert check_category_budget("data", 5 * U, 95 * U, 100 * U, USDC) is None
    reason = check_category_budget("data", 5 * U + 1, 95 * U, 100 * U, USDC)
    assert reason is not None and "category budget 'data' 100.00 USDC" in reason


def test_total_budget() -> None:
    assert check_total_budget(25 * U, 975 * U, 1_000 * U, USDC) is None
    reason = check_total_budget(26 * U, 975 * U, 1_000 * U, USDC)
    assert reason == (
        "Amount 26.00 USDC exceeds total budget 1000.00 USDC (975.00 USDC used so far, "
        "25.00 USDC left)"
    )


def test_approval_threshold_is_strictly_above() -> None:
    agent = research()
    assert check_approval_threshold(agent, 50 * U, USDC) is None
    reason = check_approval_threshold(agent, 50 * U + 1, USDC)
    assert reason is not None and "approval threshold 50.00 USDC" in reason


# ---- evaluate: order and outcomes ------------------------------------------------------


def test_evaluate_approves_within_every_limit() -> None:
    decision = evaluate(request(25 * U), inputs())
    assert decision.status is SpendStatus.APPROVED and decision.allowed and decision.code is None


def test_evaluate_asks_for_approval_above_threshold() -> None:
    decision = evaluate(request(75 * U), inputs())
    assert decision.status is SpendStatus.PENDING_APPROVAL
    assert decision.code is Reason.APPROVAL_REQUIRED
    # An approval re-runs every other check but not this one.
    assert evaluate(request(75 * U), inputs(), approval_threshold=False).allowed


ORDER = [
    Reason.FROZEN,
    Reason.UNKNOWN_AGENT,
    Reason.CATEGORY,
    Reason.INVALID_PROVIDER,
    Reason.PROVIDER_NOT_ALLOWED,
    Reason.PER_TRANSACTION_LIMIT,
    Reason.HOURLY_LIMIT,
    Reason.DAILY_LIMIT,
    Reason.CATEGORY_BUDGET,
    Reason.TOTAL_BUDGET,
]
#: The words of DESIGN.md section 6 a denial's reason names its check in.
WORDS = {
    Reason.FROZEN: "frozen",
    Reason.UNKNOWN_AGENT: "unknown agent",
    Reason.CATEGORY: "category",
    Reason.INVALID_PROVIDER: "invalid provider",
    Reason.PROVIDER_NOT_ALLOWED: "provider not allowed",
    Reason.PER_TRANSACTION_LIMIT: "per-transaction limit",
    Reason.HOURLY_LIMIT: "hourly limit",
    Reason.DAILY_LIMIT: "daily limit",
    Reason.CATEGORY_BUDGET: "category budget",
    Reason.TOTAL_BUDGET: "total budget",
}


def scenario(failing: set[Reason]) -> tuple[SpendRequest, PolicyInputs]:
    """A 10 USDC request for which exactly the checks in ``failing`` fail."""
    amount = 10 * U
    agent = AgentConfig(
        "research-agent",
        "Research",
        AGENT,
        spending_limit=amount - 1 if Reason.PER_TRANSACTION_LIMIT in failing else amount,
        daily_limit=100 * U,
        requires_approval=amount,
        hourly_limit=10 * U,
        categories=["data"],
        allowed_providers=[OTHER if Reason.PROVIDER_NOT_ALLOWED in failing else PROVIDER],
    )
    req = request(amount, category="travel" if Reason.CATEGORY in failing else "data")
    usage = Usage(
        hourly=1 if Reason.HOURLY_LIMIT in failing else 0,
        daily=95 * U if Reason.DAILY_LIMIT in failing else 0,
        category=95 * U if Reason.CATEGORY_BUDGET in failing else 0,
        total=995 * U if Reason.TOTAL_BUDGET in failing else 0,
    )
    return req, inputs(
        agent=None if Reason.UNKNOWN_AGENT in failing else agent,
        freeze_reason="audit" if Reason.FROZEN in failing else None,
        usage=usage,
        category_budget=100 * U,
        category_has_budget=True,
        forbidden_providers=(
            {PROVIDER: "the paying account"} if Reason.INVALID_PROVIDER in failing else {}
        ),
    )


@pytest.mark.parametrize("check", ORDER)
def test_each_check_alone_denies_and_names_itself(check: Reason) -> None:
    decision = evaluate(*scenario({check}))
    assert decision.status is SpendStatus.DENIED
    assert decision.code is check
    assert WORDS[check] in decision.reason.lower()  # the reason names the check


@pytest.mark.parametrize(
    ("first", "later"),
    [(a, b) for i, a in enumerate(ORDER) for b in ORDER[i + 1 :]],
    ids=lambda c: c.name,
)
def test_the_earlier_check_wins(first: Reason, later: Reason) -> None:
    assert evaluate(*scenario({first, later})).code is first


def test_nothing_failing_is_approved() -> None:
    assert evaluate(*scenario(set())).allowed


def test_unknown_agent_reason() -> None:
    decision = evaluate(request(U), PolicyInputs(agent=None, units=USDC, total_budget=1))
    assert decision.reason == "Unknown agent 'research-agent'"


def test_unknown_agent_suggests_the_closest_known_id() -> None:
    known = ("research-agent", "data-agent", "compute-agent")
    typo = SpendRequest("reserch-agent", U, PROVIDER, "x")
    inputs = PolicyInputs(agent=None, units=USDC, total_budget=1, known_agents=known)
    decision = evaluate(typo, inputs)
    assert decision.code is Reason.UNKNOWN_AGENT
    assert decision.reason == "Unknown agent 'reserch-agent' (did you mean 'research-agent'?)"
    far = evaluate(SpendRequest("zzz", U, PROVIDER, "x"), inputs)
    assert far.reason == "Unknown agent 'zzz'"


# ---- value objects ----------------------------------------------------------------------


def test_limits_that_are_probably_not_meant_are_warned_about() -> None:
    # A daily limit below the per-transaction one is refused by register_agent (a ledger
    # that holds such an agent must still open: see tests/coordinator/test_bad_input.py).
    assert research(daily_limit=99 * U).warnings == ()
    # Allowed (an operator may mean it), but no spend would ever wait for approval.
    (warning,) = research(requires_approval=100 * U).warnings
    assert "requires_approval is at or above spending_limit" in warning
    assert "no spend will ever wait for approval" in warning


def test_for_role_presets_scale_with_decimals() -> None:
    junior = AgentConfig.for_role("junior", "j", "Junior", AGENT)
    assert (junior.spending_limit, junior.daily_limit, junior.requires_approval) == (
        50 * U,
        100 * U,
        25 * U,
    )
    senior = AgentConfig.for_role("senior", "s", "Senior", AGENT, hourly_limit=300 * U)
    assert (senior.spending_limit, senior.daily_limit, senior.requires_approval) == (
        500 * U,
        1_000 * U,
        200 * U,
    )
    assert senior.hourly_limit == 300 * U
    admin = AgentConfig.for_role("admin", "a", "Admin", AGENT, decimals=18)
    assert admin.daily_limit == 50_000 * 10**18
    with pytest.raises(InvalidRequest, match="unknown role 'intern'"):
        AgentConfig.for_role("intern", "i", "I", AGENT)  # type: ignore[arg-type]


def test_agent_config_is_frozen_and_normalized() -> None:
    agent = research(categories=["data", "data", "compute"])
    assert agent.categories == ("data", "compute")
    assert agent.address == AGENT
    with pytest.raises(AttributeError):
        agent.daily_limit = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad",
    [
        {"spending_limit": 1.5},
        {"daily_limit": 0},
        {"requires_approval": -1},
        {"hourly_limit": Decimal("1")},
        {"categories": "data"},
        {"allowed_providers": ["0x2b5AD5c4795c026514f8317c7a215E218DcCD6cF"]},
        {"address": "0x" + "00" * 20},
    ],
)
def test_agent_config_refuses_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        research(**bad)


@pytest.mark.parametrize(
    ("amount", "provider", "match"),
    [
        (1.0, PROVIDER, "int of base units"),
        (0, PROVIDER, "> 0"),
        (-5, PROVIDER, "> 0"),
        (2**96, PROVIDER, "2\\*\\*96"),
        (True, PROVIDER, "int"),
        ("25", PROVIDER, "parse_units"),
        (U, PROVIDER.lower()[:-1] + "g", "20-byte hex"),
        (U, "0x2b5AD5c4795c026514f8317c7a215E218DcCD6cF", "checksum"),
        (U, "0x" + "00" * 20, "zero address"),
    ],
)
def test_spend_request_refuses_malformed_input(amount: object, provider: str, match: str) -> None:
    with pytest.raises(InvalidRequest, match=match):
        SpendRequest("research-agent", amount, provider, "x")  # type: ignore[arg-type]


def test_spend_request_normalizes_provider_and_checks_key() -> None:
    req = SpendRequest("a", U, PROVIDER.lower(), "x", idempotency_key="k-1")
    assert req.provider == PROVIDER
    with pytest.raises(InvalidRequest):
        SpendRequest("a", U, PROVIDER, "x", idempotency_key="")
    with pytest.raises(InvalidRequest):
        SpendRequest("a", U, PROVIDER, "x", idempotency_key="k" * 256)
    with pytest.raises(InvalidRequest):
        SpendRequest("", U, PROVIDER, "x")
    # No agent can have such an id (AgentConfig refuses it), and the ledger's columns
    # could not hold it: refused as malformed, not a database error on PostgreSQL.
    for agent_id in ("a" * 129, " research-agent", "research\nagent", None):
        with pytest.raises(InvalidRequest, match="agent_id"):
            SpendRequest(agent_id, U, PROVIDER, "x")  # type: ignore[arg-type]
    assert req.fingerprint_fields()["amount"] == str(U)
