"""What agents are and what they ask for: validated values, no I/O.

:class:`AgentConfig` is one agent and its limits, :class:`SpendRequest` one ask to pay.
Both validate on creation and raise :class:`~escrowkit.errors.InvalidRequest` before
anything else happens. Amounts are ``int`` base units.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from escrowkit.budget.scopes import agent_path, check_scope, check_segment_name
from escrowkit.core.addresses import to_address
from escrowkit.core.errors import InvalidRequest
from escrowkit.core.inputs import check_idempotency_key, validate_name
from escrowkit.core.units import check_amount

__all__ = ["ROLE_PRESETS", "AgentConfig", "SpendRequest"]


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
    ``scope`` places the agent (DESIGN.md section 8): its spends charge
    ``<scope>/agent:<id>`` and every prefix of it; ``""`` (the default) is the root.
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
    scope: str = ""

    def __post_init__(self) -> None:
        validate_name(self.id, "agent id")
        check_scope(self.scope)
        agent_path(self.scope, self.id)  # the agent's own path is well-formed too
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

    @property
    def warnings(self) -> tuple[str, ...]:
        """Limits that are allowed but probably not meant (``register_agent`` logs them)."""
        if self.requires_approval >= self.spending_limit:
            return (
                f"agent {self.id!r}: requires_approval is at or above spending_limit: a spend "
                "above the threshold is also above the per-transaction limit and is denied, "
                "so no spend will ever wait for approval",
            )
        return ()

    @property
    def path(self) -> str:
        """The scope this agent's spends charge (with every prefix): ``<scope>/agent:<id>``."""
        return agent_path(self.scope, self.id)

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
        ``allowed_providers``, ``scope``) or overrides a preset value.
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
    #: Charges ``workflow:<name>`` (put before the agent's first agent segment) besides
    #: the agent's own path: one task cannot use another's budget.
    workflow: str | None = None

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
        check_idempotency_key(self.idempotency_key)
        if self.workflow is not None:
            check_segment_name(self.workflow, "workflow")

    def fingerprint_fields(self) -> dict[str, Any]:
        """What makes two requests "the same" for idempotency (everything but the key)."""
        fields = {
            "agent_id": self.agent_id,
            "amount": str(self.amount),
            "provider": self.provider,
            "purpose": self.purpose,
            "category": self.category,
        }
        if self.workflow is not None:  # absent otherwise: keys recorded before stay valid
            fields["workflow"] = self.workflow
        return fields
