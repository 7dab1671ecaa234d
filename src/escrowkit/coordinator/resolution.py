"""Resolving spends from what the chain says: a funding that raised, ``recover()`` after a
crash, ``settle`` and ``cancel`` as the requester, and ``sync()`` for refunds.

An exception never proves that a transaction failed (a receipt can time out after it was
mined), so every unclear case reads the escrow and decides from its state; what cannot be
read stays PENDING, and counted, for the next ``recover()``.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from escrowkit.budget import SpendStatus
from escrowkit.coordinator.commit import Committer, hex32
from escrowkit.coordinator.context import Context, Remaining
from escrowkit.coordinator.executors import PlannedSpend
from escrowkit.coordinator.outbox import record_escrow
from escrowkit.coordinator.results import RecoveryReport, SpendResult, SyncReport
from escrowkit.core.errors import (
    ConfigurationError,
    ContractRevert,
    InvalidRequest,
    NotFound,
    describe_error,
)
from escrowkit.core.escrow_state import EscrowState
from escrowkit.core.inputs import bytes32
from escrowkit.core.reasons import Reason
from escrowkit.ledger import COUNTED, Ledger, Reservation, ReservationStatus

__all__ = ["SYNCED_BLOCK", "Resolution"]

#: The ledger's meta key for the last block ``sync()`` has read.
SYNCED_BLOCK = "synced_block"

logger = logging.getLogger(__name__)


class Resolution:
    """Brings ledger rows in line with their escrows."""

    def __init__(self, context: Context, committer: Committer) -> None:
        self.context = context
        self.committer = committer

    # ---- PENDING rows ----------------------------------------------------------------------

    def resolve(
        self,
        reservation: Reservation,
        tx_hashes: list[str],
        why: str,
        remaining: Remaining | None = None,
        error: dict[str, Any] | None = None,
        *,
        fence: bool = True,
    ) -> SpendResult:
        """Settle a PENDING row from the chain: the one path for errors and recover.

        FUNDED/SETTLED -> commit; INITIATED -> cancel, then void; CANCELLED -> void;
        missing, once the sending key has nothing in flight -> fence the id (so that a
        spender that was only paused can never fund it), then void. Anything unreadable
        leaves the row PENDING (and counted). ``why`` starts the reason recorded.
        ``fence=False``: the caller knows nothing of this spend was ever sent.
        """

        def done(to: ReservationStatus, reason: str, event: str) -> SpendResult:
            _, result = self.committer.finish(
                reservation, to, tx_hashes, reason, event, remaining, error
            )
            return result

        try:
            state, idle = self._read(reservation)
            if state is EscrowState.NONE and idle and not fence:
                reason = f"{why}; nothing was sent"
                return done(ReservationStatus.VOIDED, reason, "voided")
            if state is EscrowState.NONE and idle:
                state = self._fence(reservation, tx_hashes)
                if state is EscrowState.CANCELLED:
                    why += "; no escrow existed and nothing was in flight: its id is fenced"
            if state is EscrowState.INITIATED:
                state = self._cancel_initiated(reservation.escrow_id, tx_hashes)
                if state is EscrowState.CANCELLED:
                    why += "; the escrow was cancelled"
            if state is EscrowState.FUNDED:
                return done(
                    ReservationStatus.COMMITTED, f"{why}; the escrow is funded", "committed"
                )
            if state is EscrowState.SETTLED:
                return done(ReservationStatus.SETTLED, f"{why}; the escrow is settled", "committed")
            if state is EscrowState.CANCELLED:
                if self.context.settings.mode == "pool":
                    self.try_reconcile(reservation.escrow_id)
                return done(ReservationStatus.VOIDED, f"{why}; nothing was spent", "voided")
            note = "no escrow yet but a transaction is still in flight"
        except Exception as exc:
            note = f"the escrow could not be resolved ({describe_error(exc)})"
            logger.error("reservation %s left PENDING: %s", reservation.id, note)
        return self._left_pending(reservation, tx_hashes, f"{why}; {note}", error)

    def _read(self, reservation: Reservation) -> tuple[EscrowState, bool]:
        """The escrow's state, and whether the sending key is idle (only asked when there
        is no escrow)."""
        executor = self.context.executor
        state = executor.state(reservation.escrow_id)
        if state is not EscrowState.NONE:
            return state, False
        idle = executor.idle(executor.sender_of(reservation.sender, reservation.requester))
        if idle:
            # Read again: a transaction mined between the first read and the nonce check
            # shows in neither, and voiding it would leave a funded escrow outside the ledger.
            state = executor.state(reservation.escrow_id)
        return state, idle

    def _fence(self, reservation: Reservation, tx_hashes: list[str]) -> EscrowState:
        """Make the row's escrow id unusable; the escrow's state afterwards (CANCELLED
        when fenced; what the spender made of it when its transaction landed first)."""
        executor = self.context.executor
        agent = self.context.agents.get(reservation.agent_id)
        # Rows written before schema revision 0002 do not know the address: the agent's
        # current one, if it still gives the row's escrow id.
        address = reservation.agent_address or (agent.address if agent else "")
        if not address or executor.escrow_id(address, reservation.salt) != reservation.escrow_id:
            raise ConfigurationError(
                f"cannot fence escrow {hex32(reservation.escrow_id)}: the agent address it "
                "was reserved for is unknown"
            )
        plan = PlannedSpend(
            reservation_id=reservation.id,
            agent_address=address,
            provider=reservation.provider,
            amount=reservation.amount,
            salt=reservation.salt,
            escrow_id=reservation.escrow_id,
            metadata=b"",
        )
        try:
            executor.fence(plan, tx_hashes)
        except ContractRevert as exc:
            if exc.name != "InvalidState":
                raise
            # The spender's transaction landed first: the id exists; decide from it.
        return executor.state(reservation.escrow_id)

    def _left_pending(
        self,
        reservation: Reservation,
        tx_hashes: list[str],
        reason: str,
        error: dict[str, Any] | None,
    ) -> SpendResult:
        now = self.context.clock()
        with self.context.store.write() as ledger:
            ledger.audit(
                "left_pending",
                now,
                agent_id=reservation.agent_id,
                reservation_id=reservation.id,
                amount=reservation.amount,
                reason=reason,
                tx_hashes=list(tx_hashes),
            )
        return SpendResult(
            status=SpendStatus.FAILED,
            reason=f"{reason}; the reservation stays pending until recover()",
            escrow_id=hex32(reservation.escrow_id),
            reservation_id=reservation.id,
            approval_id=reservation.approval_id,
            tx_hashes=tuple(tx_hashes),
            code=Reason.FUNDING_FAILED,
            error=error,
        )

    def _cancel_initiated(self, escrow_id: bytes, tx_hashes: list[str]) -> EscrowState:
        """Cancel an INITIATED escrow, with one retry: the first attempt can fail on a
        stale nonce (another process used the key; the chain resyncs after a failed
        send) or land without its receipt, so the second looks at the chain first."""
        executor = self.context.executor
        try:
            tx_hashes.append(executor.cancel(escrow_id))
            return EscrowState.CANCELLED
        except Exception as exc:
            logger.warning(
                "cancelling 0x%s failed, retrying: %s", escrow_id.hex(), describe_error(exc)
            )
        state = executor.state(escrow_id)
        if state is EscrowState.INITIATED:
            tx_hashes.append(executor.cancel(escrow_id))
            return EscrowState.CANCELLED
        return state

    def try_reconcile(self, escrow_id: bytes) -> None:
        try:
            self.context.executor.reconcile(escrow_id)
        except ContractRevert as exc:  # already reconciled, or cancelled through the pool
            logger.debug("reconcile 0x%s: %s", escrow_id.hex(), exc)

    def _reconcile(self, refunded: list[Reservation]) -> list[str]:
        """Reconcile the pool for refunded rows, all at once where the executor can;
        the ids of those that could not be (left for the next sync)."""
        many = getattr(self.context.executor, "reconcile_many", None)
        if many is not None and len(refunded) > 1:
            try:
                many([row.escrow_id for row in refunded])
                return []
            except Exception as exc:
                logger.warning("sync could not reconcile: %s", describe_error(exc))
                return [row.id for row in refunded]
        failed = []
        for row in refunded:
            try:
                self.try_reconcile(row.escrow_id)
            except Exception as exc:
                logger.warning("sync could not apply %s: %s", row.id, describe_error(exc))
                failed.append(row.id)
        return failed

    def recover(self, older_than: float = 300) -> RecoveryReport:
        """Resolve every PENDING row whose lease began ``older_than`` seconds ago or
        earlier (0: all, except those this process is funding right now)."""
        if (
            isinstance(older_than, bool)
            or not isinstance(older_than, (int, float))
            or older_than < 0
        ):
            raise InvalidRequest("older_than must be a number of seconds >= 0")
        now = self.context.clock()
        with self.context.store.read() as ledger:
            self.context.refresh(ledger)
            rows = ledger.reservations([ReservationStatus.PENDING], lease_before=now - older_than)
        committed: list[str] = []
        voided: list[str] = []
        left: list[str] = []
        for row in rows:
            if self.context.in_flight(row.id):
                continue
            result = self.resolve(row, list(row.tx_hashes), "recovered")
            with self.context.store.read() as ledger:
                current = ledger.reservation(row.id)
            status = current.status if current is not None else row.status
            if status is ReservationStatus.PENDING:
                left.append(row.id)
            elif status in COUNTED:
                committed.append(row.id)
            else:
                voided.append(row.id)
            logger.info("recover %s: %s", row.id, result.reason)
        return RecoveryReport(tuple(committed), tuple(voided), tuple(left))

    # ---- after the spend -------------------------------------------------------------------

    def reservation_for(self, escrow_id: bytes | str) -> Reservation:
        raw = bytes32(escrow_id, name="escrow id")
        with self.context.store.read() as ledger:
            row = ledger.reservation_by_escrow(raw)
        if row is None:
            raise NotFound(f"no spend of this coordinator has escrow {hex32(raw)}")
        return row

    def settle(self, escrow_id: bytes | str) -> Reservation:
        """Release a funded escrow to its provider (as the requester). Stays counted."""
        row = self.reservation_for(escrow_id)
        if row.status is ReservationStatus.SETTLED:
            return row
        if row.status is not ReservationStatus.COMMITTED:
            raise InvalidRequest(f"spend {row.id} is {row.status.value}, not COMMITTED")
        try:
            tx_hash = self.context.executor.settle(row.escrow_id)
        except ContractRevert:
            self._sync_row(row)
            raise
        return self._after_chain(row, ReservationStatus.SETTLED, tx_hash, "settled")

    def cancel(self, escrow_id: bytes | str) -> Reservation:
        """Cancel as the requester (Escrow's rules: a funded escrow only between its
        deadline and the end of its dispute window). A refund is credited back."""
        row = self.reservation_for(escrow_id)
        if row.status in (ReservationStatus.REFUNDED, ReservationStatus.VOIDED):
            return row
        executor = self.context.executor
        if row.status is ReservationStatus.PENDING:
            if self.context.in_flight(row.id):
                raise InvalidRequest(f"spend {row.id} is still being funded; try again")
            with contextlib.suppress(ContractRevert):  # resolved below from the chain
                executor.cancel(row.escrow_id)
            self.resolve(row, [], "cancelled by the coordinator")
            return self.reservation_for(escrow_id)
        try:
            tx_hash = executor.cancel(row.escrow_id)
        except ContractRevert:
            self._sync_row(row)
            raise
        # (In pool mode pool.cancel has credited the pool's counters back itself.)
        return self._after_chain(row, ReservationStatus.REFUNDED, tx_hash, "refunded")

    def _after_chain(
        self, row: Reservation, to: ReservationStatus, tx_hash: str, event: str
    ) -> Reservation:
        with self.context.store.write() as ledger:
            return self._apply(ledger, row, to, tx_hash, event, self.context.clock())

    @staticmethod
    def _apply(
        ledger: Ledger,
        row: Reservation,
        to: ReservationStatus,
        tx_hash: str,
        event: str,
        now: float,
    ) -> Reservation:
        """Move ``row`` to ``to`` with its audit entry (in the caller's write)."""
        hashes = [*row.tx_hashes, tx_hash] if tx_hash else list(row.tx_hashes)
        final = ledger.transition(row, to, now, tx_hashes=hashes)
        if final is None:
            current = ledger.reservation(row.id)
            assert current is not None
            return current
        ledger.audit(
            event,
            now,
            agent_id=row.agent_id,
            reservation_id=row.id,
            amount=row.amount,
            escrow_id=hex32(row.escrow_id),
            tx_hash=tx_hash,
        )
        record_escrow(ledger, now, final, tx_hash)
        logger.info("spend %s %s", row.id, event)
        return final

    def _sync_row(self, row: Reservation, state: EscrowState | None = None) -> str | None:
        """Bring one COMMITTED row in line with its escrow (``state`` if known, else read);
        the new status's event or None."""
        if state is None:
            state = self.context.executor.state(row.escrow_id)
        if state is EscrowState.SETTLED:
            self._after_chain(row, ReservationStatus.SETTLED, "", "settled")
            return "settled"
        if state is EscrowState.CANCELLED:
            if self.context.settings.mode == "pool":
                self.try_reconcile(row.escrow_id)
            self._after_chain(row, ReservationStatus.REFUNDED, "", "refunded")
            return "refunded"
        return None

    def sync(self) -> SyncReport:
        """Read what changed on-chain since the last sync (the escrows' settle and cancel
        events, from the block after the last one synced, so downtime is caught up):
        settled escrows become SETTLED; ones the provider cancelled become REFUNDED and
        are credited back (in pool mode the pool is reconciled too). O(what changed): one
        head read and the event reads, one ledger read and one ledger write for all the
        rows that moved."""
        executor = self.context.executor
        with self.context.store.read() as ledger:
            synced = ledger.meta().get(SYNCED_BLOCK)
        start = executor.first_block if synced is None else int(synced) + 1
        head = executor.head()
        changes = executor.final_states(start, head) if start <= head else {}
        with self.context.store.read() as ledger:
            found = [(ledger.reservation_by_escrow(eid), state) for eid, state in changes.items()]
        # Not ours, or already in line (we settled or cancelled it): nothing to do.
        moved = [
            (row, state)
            for row, state in found
            if row is not None and row.status is ReservationStatus.COMMITTED
        ]
        unreadable: list[str] = []
        if self.context.settings.mode == "pool":
            unreadable = self._reconcile(
                [row for row, state in moved if state is EscrowState.CANCELLED]
            )
        settled: list[str] = []
        refunded: list[str] = []
        now = self.context.clock()
        with self.context.store.write() as ledger:
            for row, state in moved:
                if row.id in unreadable:
                    continue
                if state is EscrowState.SETTLED:
                    self._apply(ledger, row, ReservationStatus.SETTLED, "", "settled", now)
                    settled.append(row.id)
                elif state is EscrowState.CANCELLED:
                    self._apply(ledger, row, ReservationStatus.REFUNDED, "", "refunded", now)
                    refunded.append(row.id)
            if not unreadable:  # else the next sync reads the same blocks again
                ledger.set_meta(SYNCED_BLOCK, str(head))
        return SyncReport(tuple(settled), tuple(refunded), tuple(unreadable))
