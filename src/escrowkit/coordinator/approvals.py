"""Approvals: spends above an agent's threshold wait for a person.

Approving re-runs every check but the threshold, under the same lock; if one fails the
approval closes DENIED. An approval is used once and expires after ``approval_ttl``.
Approving an approved id again replays its result (same escrow), so a client that lost
the answer can retry; rejecting anything but a pending approval raises ApprovalClosed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from escrowkit.budget import SpendStatus, evaluate
from escrowkit.coordinator.commit import Committer
from escrowkit.coordinator.context import Context
from escrowkit.coordinator.outbox import record_approval
from escrowkit.coordinator.results import SpendResult
from escrowkit.coordinator.spending import Reserved, Spending
from escrowkit.core.errors import ApprovalClosed, IdempotencyKeyInUse, InvalidRequest, NotFound
from escrowkit.core.inputs import validate_name
from escrowkit.core.reasons import Reason
from escrowkit.ledger import Approval, ApprovalStatus, Ledger, ReservationStatus

__all__ = ["Approvals"]


class Approvals:
    """Decides pending approvals."""

    def __init__(self, context: Context, spending: Spending) -> None:
        self.context = context
        self.spending = spending

    def approve(self, approval_id: str, approver: str, note: str = "") -> SpendResult:
        validate_name(approver, "approver")
        if not isinstance(note, str):
            raise InvalidRequest(f"note must be a string, got {type(note).__name__}")
        context = self.context
        now = context.clock()
        day = context.days.key(now)
        with context.store.write() as ledger:
            context.refresh(ledger)
            approval, closed = self._open(ledger, approval_id, now)
            if approval.status is ApprovalStatus.APPROVED:
                return self._replay(ledger, approval)
            if closed is not None:
                return closed
            request = approval.request
            inputs, daily = context.inputs(ledger, request, now, day)
            decision = evaluate(request, inputs, approval_threshold=False)
            if not decision.allowed:
                self._close(
                    ledger,
                    approval,
                    ApprovalStatus.DENIED,
                    "approval_denied",
                    now,
                    by=approver,
                    reason=decision.reason,
                    check=decision.code.value if decision.code else None,
                    note=note,
                )
                left_daily, left_total = context.remaining(inputs, daily)
                return SpendResult(
                    SpendStatus.DENIED,
                    decision.reason,
                    approval_id=approval_id,
                    remaining_daily=left_daily,
                    remaining_total=left_total,
                    code=decision.code,
                )
            remaining = context.remaining(inputs, daily, request.amount)
            reserved: Reserved = self.spending.reserve(
                ledger, request, now, day, remaining, approval_id=approval_id
            )
            self._close(
                ledger,
                approval,
                ApprovalStatus.APPROVED,
                "approved",
                now,
                by=approver,
                reservation_id=reserved.reservation.id,
                note=note,
            )
        return self.spending.execute(reserved)

    def reject(self, approval_id: str, reason: str, approver: str = "") -> SpendResult:
        if not isinstance(reason, str):
            raise InvalidRequest("reject_spending needs a reason (a string)")
        if approver:
            validate_name(approver, "approver")
        now = self.context.clock()
        refusal: ApprovalClosed | None = None
        with self.context.store.write() as ledger:
            approval, closed = self._open(ledger, approval_id, now)
            if closed is not None:
                refusal = ApprovalClosed(
                    approval_id, approval.status.value, f"{closed.reason}; nothing was rejected"
                )
            else:
                self._close(
                    ledger,
                    approval,
                    ApprovalStatus.REJECTED,
                    "rejected",
                    now,
                    by=approver or None,
                    reason=reason,
                )
        if refusal is not None:
            # Raised outside the transaction, so that an expiry it recorded is kept.
            raise refusal
        return SpendResult(
            SpendStatus.DENIED,
            f"Rejected: {reason}",
            approval_id=approval_id,
            code=Reason.APPROVAL_REJECTED,
        )

    @staticmethod
    def _close(
        ledger: Ledger,
        approval: Approval,
        status: ApprovalStatus,
        event: str,
        now: float,
        *,
        by: str | None = None,
        reason: str | None = None,
        reservation_id: str | None = None,
        **detail: Any,
    ) -> None:
        """Decide a pending approval and write the decision to the audit log."""
        ledger.close_approval(
            approval.id, status, now, by=by, reason=reason, reservation_id=reservation_id
        )
        record_approval(
            ledger, now, approval, status.value, by=by, reason=reason, reservation_id=reservation_id
        )
        if by is not None:
            detail["approver"] = by
        if reason is not None:
            detail["reason"] = reason
        if not detail.get("note"):
            detail.pop("note", None)
        ledger.audit(
            event,
            now,
            agent_id=approval.request.agent_id,
            approval_id=approval.id,
            reservation_id=reservation_id,
            amount=approval.request.amount,
            **detail,
        )

    def _open(
        self, ledger: Ledger, approval_id: str, now: float
    ) -> tuple[Approval, SpendResult | None]:
        """The approval, and None if it can still be decided, else the DENIED result
        saying why it is closed (the approval's status then says how it closed)."""
        if not isinstance(approval_id, str):
            raise InvalidRequest(f"approval id must be a string, got {approval_id!r}")
        approval = ledger.approval(approval_id)
        if approval is None:
            raise NotFound(f"no approval {approval_id!r}")
        if approval.status is not ApprovalStatus.PENDING:
            reason = f"Approval {approval_id} was already {approval.status.value.lower()}"
            if approval.reason and approval.status is not ApprovalStatus.EXPIRED:
                reason += f": {approval.reason}"
            return approval, _closed(approval_id, reason, approval.status)
        if now >= approval.expires_at:
            self._close(
                ledger, approval, ApprovalStatus.EXPIRED, "approval_expired", now, reason="expired"
            )
            expired = replace(approval, status=ApprovalStatus.EXPIRED)
            reason = f"Approval {approval_id} expired"
            return expired, _closed(approval_id, reason, ApprovalStatus.EXPIRED)
        return approval, None

    @staticmethod
    def _replay(ledger: Ledger, approval: Approval) -> SpendResult:
        """An approved id's result again: the one recorded when its spend was decided
        (for an approval from before results were kept: its spend, as the ledger has it)."""
        if approval.result is not None:
            return SpendResult.from_json(approval.result)
        row = (
            None if approval.reservation_id is None else ledger.reservation(approval.reservation_id)
        )
        if row is None:  # pragma: no cover - an approved approval always has its row
            raise NotFound(f"approval {approval.id} has no spend")
        if row.status is ReservationStatus.PENDING:
            raise IdempotencyKeyInUse(f"approval {approval.id} is still being funded; retry later")
        return Committer.result_for(row, None)


def _closed(approval_id: str, reason: str, status: ApprovalStatus) -> SpendResult:
    code = Reason.APPROVAL_EXPIRED if status is ApprovalStatus.EXPIRED else Reason.APPROVAL_REJECTED
    return SpendResult(SpendStatus.DENIED, reason, approval_id=approval_id, code=code)
