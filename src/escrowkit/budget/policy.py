"""The coordinator's spending rules as pure functions: no I/O, no clock, no database.

Each check of DESIGN.md section 6 is one function that returns ``None`` when the spend
passes and the reason a user reads when it does not; :func:`evaluate` runs them in the
binding order (first failure wins). The caller gathers the figures (usage, budgets, the
freeze state) under its lock and passes them in, so the rules can be tested with plain
numbers and the same code decides in every process.

Amounts are ``int`` base units. Reasons show them in token units through
:class:`TokenUnits`: ``"Amount 150.00 USDC exceeds per-transaction limit 100.00 USDC"``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal

from escrowkit.core.errors import InvalidRequest
from escrowkit.core.units import check_amount, format_units
from escrowkit.evm.chain import to_address

__all__ = [
    "ROLE_PRESETS",
    "AgentConfig",
    "Check",
    "Decision",
    "PolicyInputs",
    "SpendRequest",
    "SpendStatus",
    "TokenUnits",
    "Usage",
    "check_approval_threshold",
    "check_category",
    "check_category_budget",
    "check_daily_limit",
    "check_frozen",
    "check_hourly_limit",
    "check_known_agent",
    "check_per_transaction_limit",
    "check_provider",
    "check_total_budget",
    "evaluate",
    "validate_name",
]

#: Agent ids, categories and idempotency keys: printable, no surrounding blanks.
_NAME = re.compile(r"^[^\s\x00-\x1f](?:[^\x00-\x1f]{0,126}[^\s\x00-\x1f])?$")
MAX_KEY_LENGTH = 255


class SpendStatus(StrEnum):
    """The outcome of a spend request."""

    APPROVED = "APPROVED"
    """Checks passed and the escrow is funded on-chain."""
    DENIED = "DENIED"
    """A check failed (``reason`` names it); nothing was reserved."""
    PENDING_APPROVAL = "PENDING_APPROVAL"
    """Above the agent's approval threshold: waits for ``approve_spending(approval_id)``."""
    FAILED = "FAILED"
    """Checks passed but funding failed on-chain; nothing is counted as spent."""


class Check(StrEnum):
    """The checks of DESIGN.md section 6, in the order they run."""

    FROZEN = "frozen"
    UNKNOWN_AGENT = "unknown agent"
    CATEGORY = "category"
    PROVIDER = "provider not allowed"
    PER_TRANSACTION = "per-transaction limit"
    HOURLY = "hourly limit"
    DAILY = "daily limit"
    CATEGORY_BUDGET = "category budget"
    TOTAL_BUDGET = "total budget"
    APPROVAL = "approval threshold"


# --------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenUnits:
    """How to show base units to a person: ``TokenUnits(6, "USDC").format(150_000_000)``."""

    decimals: int
    symbol: str

    def format(self, amount: int) -> str:
        """``"150.00 USDC"``: at least two decimals, more when the amount has them."""
        text = format_units(amount, self.decimals)
        whole, _, fraction = text.partition(".")
        if self.decimals >= 2 and len(fraction) < 2:
            text = f"{whole}.{fraction.ljust(2, '0')}"
        return f"{text} {self.symbol}"


def validate_name(value: object, what: str) -> str:
    """``value`` if it is a usable name (agent id, category, approver), else InvalidRequest."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidRequest(
            f"{what} must be a non-empty string of at most 128 printable characters without "
            f"surrounding blanks, got {value!r}"
        )
    return value


def _optional_amount(value: object, name: str) -> int | None:
    return None if value is None else check_amount(value, name=name)


def _string_tuple(values: object, what: str) -> tuple[str, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise InvalidRequest(f"{what} must be a list of names, not {type(values).__name__}")
    return tuple(dict.fromkeys(validate_name(v, what[:-1]) for v in values))


@functools.lru_cache(maxsize=4_096)
def _checked_provider(value: str) -> str:
    return to_address(value, name="provider")


def _provider_address(value: object) -> str:
    """``to_address`` for providers, cached: agents pay the same few providers over and
    over, and checksum validation (two keccaks) would dominate a decision's cost."""
    if isinstance(value, str):
        return _checked_provider(value)
    return to_address(value, name="provider")


#: USDC presets in whole tokens: (per-transaction, daily, approval threshold).
ROLE_PRESETS: dict[str, tuple[int, int, int]] = {
    "junior": (50, 100, 25),
    "senior": (500, 1_000, 200),
    "admin": (10_000, 50_000, 5_000),
}


@dataclass(frozen=True)
class AgentConfig:
    """One agent and its limits (int base units).

    ``requires_approval`` is a threshold: a spend strictly above it waits for approval,
    a spend equal to it is approved automatically. ``categories``: the categories this
    agent may spend in (then every request must name one); ``None`` allows no category
    or any category that has a budget. ``allowed_providers``: ``None`` allows any.
    Values are validated and normalized (checksummed addresses, tuples) on creation.
    """

    id: str
    name: str
    address: str
    spending_limit: int
    daily_limit: int
    requires_approval: int
    hourly_limit: int | None = None
    categories: tuple[str, ...] | None = None
    allowed_providers: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        validate_name(self.id, "agent id")
        if not isinstance(self.name, str):
            raise InvalidRequest(f"agent name must be a string, got {self.name!r}")
        set_ = object.__setattr__
        set_(self, "address", to_address(self.address, name="agent address"))
        check_amount(self.spending_limit, name="spending_limit")
        check_amount(self.daily_limit, name="daily_limit")
        check_amount(self.requires_approval, name="requires_approval", allow_zero=True)
        _optional_amount(self.hourly_limit, "hourly_limit")
        if self.categories is not None:
            set_(self, "categories", _string_tuple(self.categories, "categories"))
        if self.allowed_providers is not None:
            providers = self.allowed_providers
            if isinstance(providers, (str, bytes)) or not isinstance(providers, Iterable):
                raise InvalidRequest("allowed_providers must be a list of addresses")
            set_(
                self,
                "allowed_providers",
                tuple(dict.fromkeys(to_address(p, name="allowed provider") for p in providers)),
            )

    @classmethod
    def for_role(
        cls,
        role: Literal["junior", "senior", "admin"],
        id: str,
        name: str,
        address: str,
        *,
        decimals: int = 6,
        **extra: Any,
    ) -> AgentConfig:
        """A preset: junior 50/100/25, senior 500/1000/200, admin 10000/50000/5000 tokens
        (per-transaction, daily, approval threshold), scaled by the token's ``decimals``.

        ``extra`` sets the optional fields (``hourly_limit``, ``categories``,
        ``allowed_providers``) or overrides a preset value.
        """
        try:
            per_tx, daily, approval = ROLE_PRESETS[role]
        except KeyError:
            known = ", ".join(ROLE_PRESETS)
            raise InvalidRequest(f"unknown role {role!r}; known roles: {known}") from None
        unit = 10**decimals
        values: dict[str, Any] = {
            "spending_limit": per_tx * unit,
            "daily_limit": daily * unit,
            "requires_approval": approval * unit,
        }
        values.update(extra)
        return cls(id=id, name=name, address=address, **values)


@dataclass(frozen=True)
class SpendRequest:
    """An agent asks to pay ``amount`` (int base units) to ``provider``.

    Validated on creation: a malformed request raises :class:`InvalidRequest` before
    anything else happens. The same ``idempotency_key`` with the same request returns
    the first result; with a different request it raises ``IdempotencyConflict``.
    """

    agent_id: str
    amount: int
    provider: str
    purpose: str
    category: str | None = None
    idempotency_key: str | None = None

    def __post_init__(self) -> None:
        # The shape of every registered id: a longer one would fail the store's column
        # (PostgreSQL) with a database error instead of this one.
        validate_name(self.agent_id, "agent_id")
        check_amount(self.amount)
        object.__setattr__(self, "provider", _provider_address(self.provider))
        if not isinstance(self.purpose, str):
            raise InvalidRequest(f"purpose must be a string, got {type(self.purpose).__name__}")
        if self.category is not None:
            validate_name(self.category, "category")
        key = self.idempotency_key
        if key is not None and (
            not isinstance(key, str)
            or not key
            or len(key) > MAX_KEY_LENGTH
            or not key.isprintable()
        ):
            raise InvalidRequest(
                f"idempotency_key must be 1 to {MAX_KEY_LENGTH} printable characters"
            )

    def fingerprint_fields(self) -> dict[str, Any]:
        """What makes two requests "the same" for idempotency (everything but the key)."""
        return {
            "agent_id": self.agent_id,
            "amount": str(self.amount),
            "provider": self.provider,
            "purpose": self.purpose,
            "category": self.category,
        }


@dataclass(frozen=True)
class Usage:
    """What counts against the limits before this spend (committed + reserved, net of
    refunds). ``category`` is the category's lifetime usage, ``total`` the treasury's."""

    hourly: int = 0
    daily: int = 0
    category: int = 0
    total: int = 0


@dataclass(frozen=True)
class Decision:
    """The result of :func:`evaluate`: ``status`` is APPROVED (go ahead and reserve),
    PENDING_APPROVAL or DENIED; ``check`` names the check that decided, when one did."""

    status: SpendStatus
    reason: str = ""
    check: Check | None = None

    APPROVE: ClassVar[Decision]

    @property
    def allowed(self) -> bool:
        return self.status is SpendStatus.APPROVED


Decision.APPROVE = Decision(SpendStatus.APPROVED, "approved")


# --------------------------------------------------------------------------------------
# The checks, in order
# --------------------------------------------------------------------------------------


def check_frozen(freeze_reason: str | None) -> str | None:
    """Spending is frozen (``freeze_reason`` is not None)."""
    if freeze_reason is None:
        return None
    return f"Spending is frozen: {freeze_reason}" if freeze_reason else "Spending is frozen"


def check_known_agent(agent_id: str, agent: AgentConfig | None) -> str | None:
    """The agent is registered."""
    return None if agent is not None else f"Unknown agent {agent_id!r}"


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


def check_category_budget(
    category: str | None, amount: int, used: int, budget: int | None, units: TokenUnits
) -> str | None:
    """The category's lifetime usage plus ``amount`` is within its budget (if capped)."""
    if category is None or budget is None:
        return None
    return _window(amount, used, budget, f"category budget {category!r}", units, "so far")


def check_total_budget(amount: int, used: int, budget: int, units: TokenUnits) -> str | None:
    """The treasury's usage plus ``amount`` is within the total budget."""
    return _window(amount, used, budget, "total budget", units, "so far")


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
        return Decision(SpendStatus.DENIED, reason, Check.FROZEN)
    if agent is None:
        reason = check_known_agent(request.agent_id, agent)
        return Decision(SpendStatus.DENIED, reason or "", Check.UNKNOWN_AGENT)
    # Straight-line on purpose: this runs under the lock for every decision.
    for check, reason in (
        (Check.CATEGORY, check_category(agent, request.category, inputs.category_has_budget)),
        (Check.PROVIDER, check_provider(agent, request.provider)),
        (Check.PER_TRANSACTION, check_per_transaction_limit(agent, amount, units)),
        (Check.HOURLY, check_hourly_limit(agent, amount, usage.hourly, units)),
        (Check.DAILY, check_daily_limit(agent, amount, usage.daily, units)),
        (
            Check.CATEGORY_BUDGET,
            check_category_budget(
                request.category, amount, usage.category, inputs.category_budget, units
            ),
        ),
        (Check.TOTAL_BUDGET, check_total_budget(amount, usage.total, inputs.total_budget, units)),
    ):
        if reason is not None:
            return Decision(SpendStatus.DENIED, reason, check)
    if approval_threshold:
        reason = check_approval_threshold(agent, amount, units)
        if reason is not None:
            return Decision(SpendStatus.PENDING_APPROVAL, reason, Check.APPROVAL)
    return Decision.APPROVE
