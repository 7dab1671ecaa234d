"""What the coordinator hands back: spend results, reports, alerts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from escrowkit.budget import SpendStatus
from escrowkit.core.errors import ContractRevert
from escrowkit.core.reasons import Reason
from escrowkit.core.urls import redact_secrets

__all__ = [
    "AgentReport",
    "Alert",
    "BudgetReport",
    "CategoryReport",
    "PendingApproval",
    "RecoveryReport",
    "ScopeBalance",
    "SpendResult",
    "SyncReport",
    "error_data",
]


@dataclass(frozen=True)
class SpendResult:
    """The outcome of a spend request or of an approval.

    ``escrow_id`` (0x-hex) and ``tx_hashes`` are set when an escrow was funded;
    ``approval_id`` when the spend waits for (or came from) an approval;
    ``remaining_daily`` / ``remaining_total`` are what is left for the agent today and
    in the treasury after this decision (int base units), when the coordinator knew them.
    ``code`` is what programs branch on (None when APPROVED); ``reason`` is for people.
    ``error`` is set only when FAILED: ``{"name", "arguments"}`` of the revert that stopped
    the funding, or ``{"type", "message"}`` of another error (see :func:`error_data`).
    """

    status: SpendStatus
    reason: str
    escrow_id: str | None = None
    approval_id: str | None = None
    reservation_id: str | None = None
    remaining_daily: int | None = None
    remaining_total: int | None = None
    tx_hashes: tuple[str, ...] = ()
    code: Reason | None = None
    error: dict[str, Any] | None = None

    @property
    def approved(self) -> bool:
        """True when the money is escrowed on-chain for the provider."""
        return self.status is SpendStatus.APPROVED

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (amounts as decimal strings); :meth:`from_json` reverses it."""
        return {
            "status": self.status.value,
            "code": None if self.code is None else self.code.value,
            "reason": self.reason,
            "escrow_id": self.escrow_id,
            "approval_id": self.approval_id,
            "reservation_id": self.reservation_id,
            "remaining_daily": _str(self.remaining_daily),
            "remaining_total": _str(self.remaining_total),
            "tx_hashes": list(self.tx_hashes),
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SpendResult:
        return cls(
            status=SpendStatus(data["status"]),
            reason=data["reason"],
            escrow_id=data.get("escrow_id"),
            approval_id=data.get("approval_id"),
            reservation_id=data.get("reservation_id"),
            remaining_daily=_int(data.get("remaining_daily")),
            remaining_total=_int(data.get("remaining_total")),
            tx_hashes=tuple(data.get("tx_hashes", ())),
            code=None if data.get("code") is None else Reason(data["code"]),
            error=data.get("error"),
        )


def error_data(exc: BaseException) -> dict[str, Any]:
    """What went wrong, as data: ``{"name", "arguments"}`` of a contract revert (amounts
    and other integers as decimal strings, bytes as 0x hex), else ``{"type", "message"}``
    with any URL cut (RPC URLs carry API keys)."""
    if isinstance(exc, ContractRevert):
        return {
            "name": exc.name or "ContractRevert",
            "arguments": {key: _plain(value) for key, value in exc.arguments.items()},
        }
    message = redact_secrets(str(exc))
    return {"type": type(exc).__name__, "message": message[:500]}


def _plain(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def _str(value: int | None) -> str | None:
    return None if value is None else str(value)


def _int(value: str | None) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class Alert:
    """Net committed spend reached ``threshold`` percent of a limit.

    ``kind`` is ``"total_budget"`` (``scope`` ``"total"``) or ``"daily_limit"`` (``scope``
    the agent id, ``period`` the day). Each (kind, scope, threshold, period) fires once
    for a given ``limit``: a changed limit (a raised budget, an agent's new daily limit)
    re-arms it, and it fires again when spend reaches the threshold of the new limit (of
    a limit changed back, too: only the latest limit an alert fired for is kept).
    """

    kind: str
    scope: str
    threshold: int
    spent: int
    limit: int
    period: str = ""
    at: float = 0.0


@dataclass(frozen=True)
class PendingApproval:
    """A spend waiting for a person: what was asked, and until when it can be approved."""

    approval_id: str
    agent_id: str
    amount: int
    provider: str
    purpose: str
    category: str | None
    requested_at: float
    expires_at: float


@dataclass(frozen=True)
class AgentReport:
    """One agent's figures: ``spent`` is net committed spend (lifetime), ``reserved``
    what is in flight, ``spent_today`` today's net committed spend and ``remaining_today``
    what today's limit still allows (reservations count against it). Removed agents are
    reported too (``removed``): what they spent still counts."""

    agent_id: str
    name: str
    spent: int
    reserved: int
    spent_today: int
    daily_limit: int
    remaining_today: int
    #: Where the agent sits, and whether remove_agent disabled it.
    scope: str = ""
    removed: bool = False


@dataclass(frozen=True)
class CategoryReport:
    """A category's lifetime net committed spend, reservations and budget (None: uncapped)."""

    category: str
    spent: int
    reserved: int
    budget: int | None
    remaining: int | None


@dataclass(frozen=True)
class ScopeBalance:
    """One scope's budget (DESIGN.md section 8): ``allocated`` is its lifetime budget,
    ``spent`` committed spend net of refunds, ``reserved`` what spends in flight hold,
    ``remaining = allocated - spent - reserved`` (never below 0) of this scope alone: its
    ancestors' budgets may leave less. The root ``""`` is the total budget."""

    scope: str
    allocated: int
    spent: int
    reserved: int
    remaining: int


@dataclass(frozen=True)
class BudgetReport:
    """The treasury at one moment.

    ``total_spent`` is net committed spend (refunds credited back), ``reserved`` the
    amount of spends still in flight, ``remaining = total_budget - total_spent - reserved``.
    ``pending_approvals`` is keyed by approval id; ``scopes`` is
    :meth:`BudgetCoordinator.balances` (every scope with a budget, the root first).
    """

    total_budget: int
    total_spent: int
    reserved: int
    remaining: int
    by_agent: dict[str, AgentReport] = field(default_factory=dict)
    by_category: dict[str, CategoryReport] = field(default_factory=dict)
    pending_approvals: dict[str, PendingApproval] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    frozen: str | None = None
    scopes: list[ScopeBalance] = field(default_factory=list)


@dataclass(frozen=True)
class RecoveryReport:
    """What :meth:`BudgetCoordinator.recover` did, by reservation id."""

    committed: tuple[str, ...] = ()
    voided: tuple[str, ...] = ()
    left_pending: tuple[str, ...] = ()


@dataclass(frozen=True)
class SyncReport:
    """What :meth:`BudgetCoordinator.sync` changed, by reservation id."""

    settled: tuple[str, ...] = ()
    refunded: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()
