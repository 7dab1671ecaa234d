"""The coordinator's spending rules as pure functions: no I/O, no clock, no database.

Each check of DESIGN.md section 6 is one function that returns ``None`` when the spend
passes and the reason a user reads when it does not; :func:`evaluate` runs them in the
binding order (first failure wins). The lifetime budgets (the category's, each charged
scope's outermost first, the root's "total budget") are one mechanism: one loop over
:meth:`PolicyInputs.budgets`, one check, :func:`check_budget`. The caller gathers the
figures (usage, budgets, the freeze state) under its lock and passes them in, so the
rules can be tested with plain numbers and the same code decides in every process.

Amounts are ``int`` base units. Reasons show them in token units through
:class:`~escrowkit.core.units.TokenUnits`:
``"Amount 150.00 USDC exceeds per-transaction limit 100.00 USDC"``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from escrowkit.budget.outcomes import Decision, SpendStatus
from escrowkit.budget.requests import AgentConfig, SpendRequest
from escrowkit.core.reasons import Reason
from escrowkit.core.units import TokenUnits

__all__ = [
    "PolicyInputs",
    "ScopeUsage",
    "Usage",
    "check_approval_threshold",
    "check_budget",
    "check_category",
    "check_category_budget",
    "check_daily_limit",
    "check_frozen",
    "check_hourly_limit",
    "check_invalid_provider",
    "check_known_agent",
    "check_per_transaction_limit",
    "check_provider",
    "check_scope_budget",
    "check_total_budget",
    "evaluate",
]


@dataclass(frozen=True)
class Usage:
    """What counts against the limits before this spend (committed + reserved, net of
    refunds). ``category`` is the category's lifetime usage, ``total`` the treasury's."""

    hourly: int = 0
    daily: int = 0
    category: int = 0
    total: int = 0


class ScopeUsage(NamedTuple):
    """A charged scope that has a budget: what counts against it before this spend. (A
    tuple: one is made per charged scope and decision.)"""

    scope: str
    budget: int
    used: int


# --------------------------------------------------------------------------------------
# The checks, in order
# --------------------------------------------------------------------------------------


def check_frozen(freeze_reason: str | None) -> str | None:
    """Spending is frozen (``freeze_reason`` is not None)."""
    if freeze_reason is None:
        return None
    return f"Spending is frozen: {freeze_reason}" if freeze_reason else "Spending is frozen"


def check_known_agent(
    agent_id: str, agent: AgentConfig | None, known: Sequence[str] = ()
) -> str | None:
    """The agent is registered; if not, the reason suggests the closest of ``known``."""
    if agent is not None:
        return None
    import difflib

    close = difflib.get_close_matches(agent_id, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"Unknown agent {agent_id!r}{hint}"


def check_category(
    agent: AgentConfig, category: str | None, category_has_budget: bool
) -> str | None:
    """An agent with a category list must name one of them; an agent without a list may
    name none, or a category that has a budget."""
    if agent.categories is not None:
        allowed = ", ".join(agent.categories) or "none"
        if category is None:
            return f"Agent {agent.id!r} must give a category (one of: {allowed})"
        if category not in agent.categories:
            return f"Unknown category {category!r} for agent {agent.id!r} (allowed: {allowed})"
        return None
    if category is not None and not category_has_budget:
        return f"Unknown category {category!r}: it has no budget"
    return None


def check_invalid_provider(provider: str, forbidden: Mapping[str, str]) -> str | None:
    """The provider is not an address a spend can never pay: the paying account (an
    escrow cannot pay its own requester), the Escrow or the BudgetPool."""
    what = forbidden.get(provider)
    if what is None:
        return None
    return f"Invalid provider: {provider} is {what}; a spend can never pay it"


def check_provider(agent: AgentConfig, provider: str) -> str | None:
    """The provider is on the agent's list, when it has one."""
    if agent.allowed_providers is None or provider in agent.allowed_providers:
        return None
    return f"Provider not allowed: {provider} is not on the list of agent {agent.id!r}"


def check_per_transaction_limit(agent: AgentConfig, amount: int, units: TokenUnits) -> str | None:
    """``amount`` is at most the agent's per-transaction limit."""
    if amount <= agent.spending_limit:
        return None
    return (
        f"Amount {units.format(amount)} exceeds per-transaction limit "
        f"{units.format(agent.spending_limit)}"
    )


def _window(
    amount: int, used: int, limit: int, label: str, units: TokenUnits, when: str
) -> str | None:
    if used + amount <= limit:
        return None
    left = max(limit - used, 0)
    return (
        f"Amount {units.format(amount)} exceeds {label} {units.format(limit)} "
        f"({units.format(used)} used {when}, {units.format(left)} left)"
    )


def check_hourly_limit(agent: AgentConfig, amount: int, used: int, units: TokenUnits) -> str | None:
    """Usage over the last 3,600 s plus ``amount`` is at most the hourly limit, if any."""
    if agent.hourly_limit is None:
        return None
    return _window(amount, used, agent.hourly_limit, "hourly limit", units, "in the last hour")


def check_daily_limit(agent: AgentConfig, amount: int, used: int, units: TokenUnits) -> str | None:
    """Today's usage (calendar day) plus ``amount`` is at most the daily limit."""
    return _window(amount, used, agent.daily_limit, "daily limit", units, "today")


def check_budget(
    code: Reason, name: str, amount: int, used: int, budget: int, units: TokenUnits
) -> str | None:
    """A lifetime budget (net of refunds): its usage plus ``amount`` is within it. ``code``
    says whose: CATEGORY_BUDGET (``name`` the category), SCOPE_BUDGET (the scope) or
    TOTAL_BUDGET (the root)."""
    if used + amount <= budget:
        return None
    if code is Reason.TOTAL_BUDGET:
        label = "total budget"
    else:
        label = f"{'category' if code is Reason.CATEGORY_BUDGET else 'scope'} budget {name!r}"
    return _window(amount, used, budget, label, units, "so far")


def check_category_budget(
    category: str | None, amount: int, used: int, budget: int | None, units: TokenUnits
) -> str | None:
    """The category's lifetime usage plus ``amount`` is within its budget (if capped)."""
    if category is None or budget is None:
        return None
    return check_budget(Reason.CATEGORY_BUDGET, category, amount, used, budget, units)


def check_scope_budget(scope: ScopeUsage, amount: int, units: TokenUnits) -> str | None:
    """The scope's lifetime usage plus ``amount`` is within its budget."""
    return check_budget(Reason.SCOPE_BUDGET, scope.scope, amount, scope.used, scope.budget, units)


def check_total_budget(amount: int, used: int, budget: int, units: TokenUnits) -> str | None:
    """The treasury's usage plus ``amount`` is within the total budget."""
    return check_budget(Reason.TOTAL_BUDGET, "", amount, used, budget, units)


def check_approval_threshold(agent: AgentConfig, amount: int, units: TokenUnits) -> str | None:
    """A spend strictly above ``requires_approval`` needs a person's approval."""
    if amount <= agent.requires_approval:
        return None
    return (
        f"Amount {units.format(amount)} is above the approval threshold "
        f"{units.format(agent.requires_approval)} of agent {agent.id!r}: needs approval"
    )


@dataclass(frozen=True)
class PolicyInputs:
    """Everything :func:`evaluate` reads besides the request, gathered under the lock."""

    agent: AgentConfig | None
    units: TokenUnits
    total_budget: int
    usage: Usage = field(default_factory=Usage)
    freeze_reason: str | None = None
    category_budget: int | None = None
    category_has_budget: bool = False
    #: Addresses no spend may pay, with what each is ("the paying account", "the Escrow"...).
    forbidden_providers: Mapping[str, str] = field(default_factory=dict)
    #: The registered ids, given only when ``agent`` is None (for a "did you mean").
    known_agents: Sequence[str] = ()
    #: The charged scopes (but the root) that have a budget, in the order they are checked.
    scopes: Sequence[ScopeUsage] = ()
    #: The agent was registered and then removed (its denial says so).
    agent_removed: bool = False

    def budgets(self, category: str | None) -> Iterator[tuple[Reason, str, int, int]]:
        """Every lifetime budget a spend in ``category`` is checked against, in order:
        (code, name, budget, used) of the category's (if capped), each scope's, the root's."""
        if category is not None and self.category_budget is not None:
            yield Reason.CATEGORY_BUDGET, category, self.category_budget, self.usage.category
        for scope in self.scopes:
            yield Reason.SCOPE_BUDGET, scope.scope, scope.budget, scope.used
        yield Reason.TOTAL_BUDGET, "", self.total_budget, self.usage.total


def evaluate(
    request: SpendRequest, inputs: PolicyInputs, *, approval_threshold: bool = True
) -> Decision:
    """Run every check of DESIGN.md section 6 in order; the first failure decides.

    ``approval_threshold=False`` skips the last check: that is how an approval re-runs
    the rules.
    """
    agent, units, usage, amount = inputs.agent, inputs.units, inputs.usage, request.amount
    reason = check_frozen(inputs.freeze_reason)
    if reason is not None:
        return Decision(SpendStatus.DENIED, reason, Reason.FROZEN)
    if agent is None:
        reason = check_known_agent(request.agent_id, agent, inputs.known_agents) or ""
        if inputs.agent_removed:
            reason += " (it was removed)"
        return Decision(SpendStatus.DENIED, reason, Reason.UNKNOWN_AGENT)
    # Straight-line on purpose: this runs under the lock for every decision.
    for check, reason in (
        (Reason.CATEGORY, check_category(agent, request.category, inputs.category_has_budget)),
        (
            Reason.INVALID_PROVIDER,
            check_invalid_provider(request.provider, inputs.forbidden_providers),
        ),
        (Reason.PROVIDER_NOT_ALLOWED, check_provider(agent, request.provider)),
        (Reason.PER_TRANSACTION_LIMIT, check_per_transaction_limit(agent, amount, units)),
        (Reason.HOURLY_LIMIT, check_hourly_limit(agent, amount, usage.hourly, units)),
        (Reason.DAILY_LIMIT, check_daily_limit(agent, amount, usage.daily, units)),
    ):
        if reason is not None:
            return Decision(SpendStatus.DENIED, reason, check)
    # One mechanism for every lifetime budget: category, scopes (outermost first), root.
    for code, name, budget, used in inputs.budgets(request.category):
        reason = check_budget(code, name, amount, used, budget, units)
        if reason is not None:
            return Decision(SpendStatus.DENIED, reason, code)
    if approval_threshold:
        reason = check_approval_threshold(agent, amount, units)
        if reason is not None:
            return Decision(SpendStatus.PENDING_APPROVAL, reason, Reason.APPROVAL_REQUIRED)
    return Decision.APPROVE
