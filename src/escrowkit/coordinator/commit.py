"""Phase 3 of a spend: a PENDING reservation becomes final (COMMITTED, SETTLED or
VOIDED), its idempotency key gets the result, and the alerts it crosses fire."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from escrowkit.budget import SpendStatus
from escrowkit.coordinator.alerts import Alerts
from escrowkit.coordinator.context import Context, Remaining
from escrowkit.coordinator.outbox import record_decision
from escrowkit.coordinator.results import Alert, SpendResult
from escrowkit.core.drive import either, offload, run_sync
from escrowkit.core.reasons import Reason
from escrowkit.ledger import COUNTED, Ledger, Reservation, ReservationStatus

__all__ = ["Committer", "hex32"]

logger = logging.getLogger(__name__)

#: What the ledger step of a finish returns: (row, result, alerts fired, whether it moved).
_Finished = tuple[Reservation, SpendResult, list[Alert], bool]


def hex32(value: bytes) -> str:
    """``0x`` + hex of an escrow id or salt."""
    return "0x" + value.hex()


class Committer:
    """Moves PENDING rows to their final status and builds the result the caller sees."""

    def __init__(self, context: Context, alerts: Alerts) -> None:
        self.context = context
        self.alerts = alerts

    def finish(
        self,
        reservation: Reservation,
        to: ReservationStatus,
        tx_hashes: list[str],
        reason: str,
        event: str,
        remaining: Remaining | None = None,
        error: dict[str, Any] | None = None,
    ) -> tuple[Reservation, SpendResult]:
        """Move the PENDING row to ``to`` (if nobody else has) under the lock; the row as
        it is now, and the result to hand back (:meth:`afinish` run in this thread).

        The idempotency key gets the very result the caller returns (``remaining`` is
        what phase 1 computed), so a replay is equal to the first answer. When another
        process resolved the row first, the caller gets what that process recorded."""
        return run_sync(self.afinish(reservation, to, tx_hashes, reason, event, remaining, error))

    async def afinish(
        self,
        reservation: Reservation,
        to: ReservationStatus,
        tx_hashes: list[str],
        reason: str,
        event: str,
        remaining: Remaining | None = None,
        error: dict[str, Any] | None = None,
    ) -> tuple[Reservation, SpendResult]:
        """:meth:`finish` as a coroutine: no thread while the commit group runs (alert
        callbacks, which may block, run in a worker thread)."""
        step = self._finishing(reservation, to, tx_hashes, reason, event, remaining, error)
        store = self.context.store
        outcome: _Finished = await either(
            store.run, store.arun, step, reservation_ids=(reservation.id,)
        )
        final, result, fired, moved = outcome
        if fired:
            await offload(self.alerts.fire, fired)
        if moved:
            self._log(final, reason)
        return final, result

    def _finishing(
        self,
        reservation: Reservation,
        to: ReservationStatus,
        tx_hashes: list[str],
        reason: str,
        event: str,
        remaining: Remaining | None,
        error: dict[str, Any] | None,
    ) -> Callable[[Ledger], _Finished]:
        """The ledger step of :meth:`finish` (see ``_Finished``)."""

        def finish(ledger: Ledger) -> _Finished:
            now = self.context.clock()
            self.context.refresh(ledger)
            final = ledger.transition(reservation, to, now, tx_hashes=tx_hashes, reason=reason)
            if final is None:  # another process (recover) resolved it first
                current = self._resolved_elsewhere(ledger, reservation, to, now)
                return current, self.recorded_result(ledger, current), [], False
            ledger.audit(
                event,
                now,
                agent_id=reservation.agent_id,
                reservation_id=reservation.id,
                approval_id=reservation.approval_id,
                amount=reservation.amount,
                reason=reason,
                escrow_id=hex32(reservation.escrow_id),
                tx_hashes=list(tx_hashes),
            )
            result = self.result_for(final, remaining, error)
            data = result.to_json()  # once: the event, the key and the approval share it
            record_decision(ledger, now, result, reservation=final, data=data)
            if reservation.idempotency_key is not None:
                agent, key = reservation.agent_id, reservation.idempotency_key
                ledger.finish_idempotency(agent, key, data)
            if reservation.approval_id is not None:
                ledger.set_approval_result(reservation.approval_id, data)
            fired = self.alerts.crossed(ledger, final, now) if final.counted else []
            return final, result, fired, True

        return finish

    @staticmethod
    def _resolved_elsewhere(
        ledger: Ledger, reservation: Reservation, to: ReservationStatus, now: float
    ) -> Reservation:
        """The row as another process left it. Recovery fences an id before it voids a
        row, so a funding cannot land on a voided row; if one does, the row is still
        never re-opened (that could count past a limit): it is reported instead."""
        current = ledger.reservation(reservation.id)
        assert current is not None
        if current.status is ReservationStatus.VOIDED and to in COUNTED:
            logger.error(
                "spend %s was voided elsewhere but its escrow %s is funded",
                reservation.id,
                hex32(reservation.escrow_id),
            )
            ledger.audit(
                "funded_after_void",
                now,
                agent_id=reservation.agent_id,
                reservation_id=reservation.id,
                amount=reservation.amount,
                escrow_id=hex32(reservation.escrow_id),
            )
        return current

    def recorded_result(self, ledger: Ledger, row: Reservation) -> SpendResult:
        """The result recorded for ``row`` by whoever resolved it (its key's), else one
        built from the row."""
        key = row.idempotency_key
        found = ledger.idempotency(row.agent_id, key) if key is not None else None
        if found is not None and found.result is not None:
            return SpendResult.from_json(found.result)
        return self.result_for(row, None)

    def _log(self, final: Reservation, reason: str) -> None:
        if not logger.isEnabledFor(logging.INFO):  # formatting amounts costs: only when shown
            return
        if final.counted:
            logger.info(
                "spend %s committed: %s %s escrow %s",
                final.id,
                final.agent_id,
                self.context.units.format(final.amount),
                hex32(final.escrow_id),
            )
        else:
            logger.info("spend %s voided: %s", final.id, reason)

    @staticmethod
    def result_for(
        row: Reservation, remaining: Remaining | None, error: dict[str, Any] | None = None
    ) -> SpendResult:
        """The SpendResult a row stands for: APPROVED when it counts and is final,
        FAILED (``funding_failed``) otherwise."""
        left_daily, left_total = remaining if remaining is not None else (None, None)
        if row.counted and row.status is not ReservationStatus.PENDING:
            status, reason, code = SpendStatus.APPROVED, row.reason or "escrow funded", None
            error = None
        elif row.counted:
            status, reason, code = (
                SpendStatus.FAILED,
                row.reason or "pending",
                Reason.FUNDING_FAILED,
            )
        else:
            status, reason, code = SpendStatus.FAILED, row.reason or "voided", Reason.FUNDING_FAILED
            # The reservation was released: what it held is available again.
            if left_daily is not None:
                left_daily += row.amount
            if left_total is not None:
                left_total += row.amount
        return SpendResult(
            status=status,
            reason=reason,
            escrow_id=hex32(row.escrow_id) if row.counted else None,
            approval_id=row.approval_id,
            reservation_id=row.id,
            remaining_daily=left_daily,
            remaining_total=left_total,
            tx_hashes=row.tx_hashes,
            code=code,
            error=error,
        )
