"""What a decision can be: the statuses a spend ends in and the policy's verdict."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from escrowkit.core.reasons import Reason

__all__ = ["Decision", "SpendStatus"]


class SpendStatus(StrEnum):
    """The outcome of a spend request."""

    APPROVED = "APPROVED"
    """Checks passed and the escrow is funded on-chain."""
    DENIED = "DENIED"
    """A check failed (``code`` names it, ``reason`` says it); nothing was reserved."""
    PENDING_APPROVAL = "PENDING_APPROVAL"
    """Above the agent's approval threshold: waits for ``approve_spending(approval_id)``."""
    FAILED = "FAILED"
    """Checks passed but funding failed on-chain; nothing is counted as spent."""


@dataclass(frozen=True)
class Decision:
    """What :func:`~escrowkit.budget.policy.evaluate` decided: ``status`` is APPROVED (go
    ahead and reserve), PENDING_APPROVAL or DENIED; ``code`` names the check that decided
    (None when approved), ``reason`` says it to a person."""

    status: SpendStatus
    reason: str = ""
    code: Reason | None = None

    APPROVE: ClassVar[Decision]

    @property
    def allowed(self) -> bool:
        return self.status is SpendStatus.APPROVED


Decision.APPROVE = Decision(SpendStatus.APPROVED, "approved")
