"""The ledger's rows as Python values, and their conversion to and from table rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from escrowkit.budget import AgentConfig, SpendRequest

__all__ = [
    "COUNTED",
    "Approval",
    "ApprovalStatus",
    "AuditEntry",
    "IdempotencyRecord",
    "Reservation",
    "ReservationStatus",
    "TreasuryState",
    "agent_from_row",
    "agent_to_row",
    "hex32",
    "unhex",
]


class ReservationStatus(StrEnum):
    """A reservation's life: PENDING -> COMMITTED -> SETTLED, or VOIDED, or REFUNDED."""

    PENDING = "PENDING"
    COMMITTED = "COMMITTED"
    SETTLED = "SETTLED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"


#: Statuses whose amount counts against limits and budgets.
COUNTED = (ReservationStatus.PENDING, ReservationStatus.COMMITTED, ReservationStatus.SETTLED)


class ApprovalStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


def hex32(value: bytes) -> str:
    """``0x`` + hex of 32 bytes (an escrow id, a salt)."""
    return "0x" + value.hex()


def unhex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


@dataclass(frozen=True)
class TreasuryState:
    """The single state row: budget, what counts against it, freeze state."""

    total_budget: int
    used: int
    freeze_reason: str | None
    config_version: int
    usage_seq: int = 0


@dataclass(frozen=True)
class Reservation:
    """One spend's row in the ledger."""

    id: str
    agent_id: str
    amount: int
    provider: str
    purpose: str
    category: str | None
    day: str
    created_at: float
    lease_at: float
    status: ReservationStatus
    salt: bytes
    escrow_id: bytes
    requester: str
    tx_hashes: tuple[str, ...] = ()
    reason: str | None = None
    approval_id: str | None = None
    idempotency_key: str | None = None
    updated_at: float = 0.0
    #: The key that sends for this row, and the agent address its escrow id comes from
    #: (None in rows written before schema revision 0002).
    sender: str | None = None
    agent_address: str | None = None
    #: The agent's path and the request's workflow when it was reserved: the scopes it
    #: charges (see :func:`~escrowkit.budget.scopes.charged_scopes`).
    scope: str = ""
    workflow: str | None = None

    @property
    def counted(self) -> bool:
        return self.status in COUNTED

    def moved(
        self,
        status: ReservationStatus,
        updated_at: float,
        tx_hashes: tuple[str, ...],
        reason: str | None,
    ) -> Reservation:
        """This row after a transition: ``dataclasses.replace`` without running
        ``__init__`` again (a third of its cost; every field is already checked)."""
        new = object.__new__(Reservation)
        new.__dict__.update(
            self.__dict__, status=status, updated_at=updated_at, tx_hashes=tx_hashes,
            reason=reason,
        )  # fmt: skip
        return new

    def to_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent_id": self.agent_id,
            "amount": self.amount,
            "provider": self.provider,
            "purpose": self.purpose,
            "category": self.category,
            "day": self.day,
            "created_at": self.created_at,
            "lease_at": self.lease_at,
            "status": self.status.value,
            "salt": hex32(self.salt),
            "escrow_id": hex32(self.escrow_id),
            "requester": self.requester,
            "tx_hashes": json.dumps(list(self.tx_hashes)),
            "reason": self.reason,
            "approval_id": self.approval_id,
            "idempotency_key": self.idempotency_key,
            "updated_at": self.updated_at or self.created_at,
            "sender": self.sender,
            "agent_address": self.agent_address,
            "scope": self.scope,
            "workflow": self.workflow,
        }

    @classmethod
    def from_row(cls, row: Any) -> Reservation:
        m = row._mapping
        return cls(
            id=m["id"],
            agent_id=m["agent_id"],
            amount=m["amount"],
            provider=m["provider"],
            purpose=m["purpose"],
            category=m["category"],
            day=m["day"],
            created_at=m["created_at"],
            lease_at=m["lease_at"],
            status=ReservationStatus(m["status"]),
            salt=unhex(m["salt"]),
            escrow_id=unhex(m["escrow_id"]),
            requester=m["requester"],
            tx_hashes=tuple(json.loads(m["tx_hashes"])),
            reason=m["reason"],
            approval_id=m["approval_id"],
            idempotency_key=m["idempotency_key"],
            updated_at=m["updated_at"],
            sender=m["sender"],
            agent_address=m["agent_address"],
            scope=m["scope"],
            workflow=m["workflow"],
        )


@dataclass(frozen=True)
class Approval:
    """A spend above an agent's threshold, waiting for (or closed by) a person."""

    id: str
    request: SpendRequest
    status: ApprovalStatus
    requested_at: float
    expires_at: float
    decided_at: float | None = None
    decided_by: str | None = None
    reason: str | None = None
    reservation_id: str | None = None
    #: The approval's SpendResult as JSON, once its spend is decided (replayed).
    result: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: Any) -> Approval:
        m = row._mapping
        request = SpendRequest(
            agent_id=m["agent_id"],
            amount=m["amount"],
            provider=m["provider"],
            purpose=m["purpose"],
            category=m["category"],
            idempotency_key=m["idempotency_key"],
            workflow=m["workflow"],
        )
        return cls(
            id=m["id"],
            request=request,
            status=ApprovalStatus(m["status"]),
            requested_at=m["requested_at"],
            expires_at=m["expires_at"],
            decided_at=m["decided_at"],
            decided_by=m["decided_by"],
            reason=m["reason"],
            reservation_id=m["reservation_id"],
            result=None if m["result"] is None else json.loads(m["result"]),
        )


@dataclass(frozen=True)
class IdempotencyRecord:
    """What a key recorded: ``result`` is None while its first request is in flight.
    ``agent_id`` is '' for a key kept from before keys were scoped per agent."""

    agent_id: str
    key: str
    fingerprint: str
    result: dict[str, Any] | None
    reservation_id: str | None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    event: str
    agent_id: str | None
    reservation_id: str | None
    approval_id: str | None
    amount: int | None
    detail: dict[str, Any]


def agent_to_row(config: AgentConfig, now: float) -> dict[str, Any]:
    return {
        "id": config.id,
        "name": config.name,
        "address": config.address,
        "spending_limit": config.spending_limit,
        "daily_limit": config.daily_limit,
        "requires_approval": config.requires_approval,
        "hourly_limit": config.hourly_limit,
        "categories": None if config.categories is None else json.dumps(list(config.categories)),
        "allowed_providers": (
            None if config.allowed_providers is None else json.dumps(list(config.allowed_providers))
        ),
        "updated_at": now,
        "scope": config.scope,
        "removed_at": None,  # registering again re-enables
    }


def agent_from_row(row: Any) -> AgentConfig:
    m = row._mapping
    return AgentConfig(
        id=m["id"],
        name=m["name"],
        address=m["address"],
        spending_limit=m["spending_limit"],
        daily_limit=m["daily_limit"],
        requires_approval=m["requires_approval"],
        hourly_limit=m["hourly_limit"],
        categories=None if m["categories"] is None else tuple(json.loads(m["categories"])),
        allowed_providers=(
            None if m["allowed_providers"] is None else tuple(json.loads(m["allowed_providers"]))
        ),
        scope=m["scope"],
    )
