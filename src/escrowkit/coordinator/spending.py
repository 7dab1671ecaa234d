"""A spend, phases 1 and 2: decide and reserve under the lock, then fund on-chain.

1. Under the lock (thread lock + the database's write lock) the checks of
   :mod:`escrowkit.budget.policy` run and a PENDING reservation is written with its escrow
   salt (so its escrow id is known before anything is sent) and a lease time.
2. Without the lock the executor funds the escrow on-chain.
   The blocking :meth:`Spending.request` is :meth:`Spending.arequest` run in the caller's
   thread (:mod:`escrowkit.core.drive`): one path, so ``arequest_spending`` callers can
   keep many spends waiting for their blocks without a thread each.
3. :mod:`~escrowkit.coordinator.commit` makes the row final, or
   :mod:`~escrowkit.coordinator.resolution` decides it from the chain when funding raised.

A failed spend therefore never counts, and a funded one always does.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from escrowkit.budget import Decision, PolicyInputs, SpendRequest, SpendStatus, evaluate
from escrowkit.coordinator.commit import Committer, hex32
from escrowkit.coordinator.context import Context, Remaining
from escrowkit.coordinator.executors import PlannedSpend
from escrowkit.coordinator.outbox import record_approval, record_decision
from escrowkit.coordinator.resolution import Resolution
from escrowkit.coordinator.results import SpendResult, error_data
from escrowkit.core.drive import either, offload, run_sync
from escrowkit.core.errors import (
    ContractRevert,
    IdempotencyKeyInUse,
    IdempotencyKeyMismatch,
    InvalidRequest,
    describe_error,
)
from escrowkit.core.ids import new_id
from escrowkit.ledger import Approval, ApprovalStatus, Ledger, Reservation, ReservationStatus

__all__ = ["Reserved", "Spending", "fingerprint"]

logger = logging.getLogger(__name__)

# One encoder for every fingerprint (json.dumps with options builds one per call).
_canonical_json = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def fingerprint(request: SpendRequest) -> str:
    """What makes two requests "the same" for idempotency, hashed."""
    payload = _canonical_json(request.fingerprint_fields())
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class Reserved:
    """Phase 1's outcome when the spend may go ahead. ``agent_address`` is the agent's
    address the reservation was made with: a pool escrow's id depends on it, and the
    agent may be registered anew before phase 2."""

    reservation: Reservation
    remaining: Remaining
    agent_address: str


class Spending:
    """Decides spend requests and carries the allowed ones through."""

    def __init__(self, context: Context, committer: Committer, resolution: Resolution) -> None:
        self.context = context
        self.committer = committer
        self.resolution = resolution

    def request(self, request: SpendRequest) -> SpendResult:
        """Decide and, when allowed, fund (see ``BudgetCoordinator.request_spending``):
        :meth:`arequest` run to its end in this thread."""
        return run_sync(self.arequest(request))

    async def arequest(self, request: SpendRequest) -> SpendResult:
        """:meth:`request` as a coroutine: the ledger's work runs in worker threads (a few
        milliseconds each), the wait for the block holds none."""
        if not isinstance(request, SpendRequest):
            raise InvalidRequest(
                f"request_spending takes a SpendRequest, not {type(request).__name__}"
            )
        key = request.idempotency_key
        digest = fingerprint(request) if key is not None else ""
        store = self.context.store
        outcome = await either(
            store.run,
            store.arun,
            lambda ledger: self._decide(ledger, request, digest),
            keys=() if key is None else ((request.agent_id, key),),
        )
        if isinstance(outcome, SpendResult):
            return outcome
        return await either(self.execute, self.aexecute, outcome)

    def _decide(self, ledger: Ledger, request: SpendRequest, digest: str) -> SpendResult | Reserved:
        context, key = self.context, request.idempotency_key
        now = context.clock()
        day = context.days.key(now)
        context.refresh(ledger)
        if key is not None:
            found = ledger.idempotency(request.agent_id, key)
            # A key from before keys were scoped per agent counts only for the request
            # that made it (its fingerprint names the agent): another agent's is not ours.
            if found is not None and (found.agent_id or found.fingerprint == digest):
                return _replay(found.fingerprint, found.result, digest, key)
        inputs, daily = context.inputs(ledger, request, now, day)
        decision = evaluate(request, inputs)
        if decision.status is not SpendStatus.APPROVED:
            result = self._decline(ledger, request, decision, inputs, daily, now)
            if key is not None:
                ledger.insert_idempotency(
                    request.agent_id, key, digest, now, result=result.to_json()
                )
            return result
        remaining = context.remaining(inputs, daily, request.amount)
        reserved = self.reserve(ledger, request, now, day, remaining, idempotency_key=key)
        if key is not None:
            reservation_id = reserved.reservation.id
            ledger.insert_idempotency(
                request.agent_id, key, digest, now, reservation_id=reservation_id
            )
        return reserved

    def _decline(
        self,
        ledger: Ledger,
        request: SpendRequest,
        decision: Decision,
        inputs: PolicyInputs,
        daily: int,
        now: float,
    ) -> SpendResult:
        """Record a DENIED or PENDING_APPROVAL decision (nothing is reserved)."""
        left_daily, left_total = self.context.remaining(inputs, daily)
        approval_id = None
        if decision.status is SpendStatus.PENDING_APPROVAL:
            approval_id = new_id("apr")
            expires = now + self.context.settings.approval_ttl
            approval = Approval(approval_id, request, ApprovalStatus.PENDING, now, expires)
            ledger.insert_approval(approval)
            record_approval(ledger, now, approval, ApprovalStatus.PENDING.value)
        ledger.audit(
            "approval_requested" if approval_id else "denied",
            now,
            agent_id=request.agent_id,
            approval_id=approval_id,
            amount=request.amount,
            check=decision.code.value if decision.code else None,
            reason=decision.reason,
            provider=request.provider,
            category=request.category,
        )
        if logger.isEnabledFor(logging.INFO):  # formatting amounts costs: only when shown
            logger.info(
                "%s %s %s: %s",
                decision.status.value,
                request.agent_id,
                self.context.units.format(request.amount),
                decision.reason,
            )
        result = SpendResult(
            status=decision.status,
            reason=decision.reason,
            approval_id=approval_id,
            remaining_daily=left_daily,
            remaining_total=left_total,
            code=decision.code,
        )
        record_decision(ledger, now, result, request=request)
        return result

    def reserve(
        self,
        ledger: Ledger,
        request: SpendRequest,
        now: float,
        day: str,
        remaining: Remaining,
        *,
        approval_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Reserved:
        """Write the PENDING reservation (counted from now on) and its audit entry."""
        context = self.context
        agent = context.agents[request.agent_id]
        salt = secrets.token_bytes(32)
        reservation = Reservation(
            id=new_id("res"),
            agent_id=request.agent_id,
            amount=request.amount,
            provider=request.provider,
            purpose=request.purpose,
            category=request.category,
            day=day,
            created_at=now,
            lease_at=now,
            status=ReservationStatus.PENDING,
            salt=salt,
            escrow_id=context.executor.escrow_id(agent.address, salt),
            requester=context.executor.requester,
            approval_id=approval_id,
            idempotency_key=idempotency_key,
            sender=context.executor.sender,
            agent_address=agent.address,
            scope=agent.path,  # with the workflow: the scopes it charges (budget.scopes)
            workflow=request.workflow,
        )
        ledger.insert_reservation(reservation)
        context.start(reservation.id)
        ledger.audit(
            "reserved",
            now,
            agent_id=request.agent_id,
            reservation_id=reservation.id,
            approval_id=approval_id,
            amount=request.amount,
            escrow_id=hex32(reservation.escrow_id),
            provider=request.provider,
            category=request.category,
        )
        return Reserved(reservation, remaining, agent.address)

    def _resolved_meanwhile(self, reservation: Reservation) -> SpendResult | None:
        """The recorded result when the row is no longer PENDING (someone recovered it
        while this process was paused), so the spend stops before it sends. Free on the
        happy path: the row is read only when the lease is old."""
        if self.context.clock() - reservation.lease_at < STALE_LEASE:
            return None
        with self.context.store.read() as ledger:
            row = ledger.reservation(reservation.id)
            if row is None or row.status is ReservationStatus.PENDING:
                return None
            logger.warning("spend %s was resolved elsewhere (%s): not sent", row.id, row.status)
            return self.committer.recorded_result(ledger, row)

    def execute(self, reserved: Reserved) -> SpendResult:
        """Phase 2: fund on-chain, then commit, or resolve the row from the chain
        (:meth:`aexecute` run to its end in this thread)."""
        return run_sync(self.aexecute(reserved))

    async def aexecute(self, reserved: Reserved) -> SpendResult:
        """:meth:`execute` as a coroutine."""
        reservation, remaining = reserved.reservation, reserved.remaining
        plan = PlannedSpend(
            reservation_id=reservation.id,
            agent_address=reserved.agent_address,
            provider=reservation.provider,
            amount=reservation.amount,
            salt=reservation.salt,
            escrow_id=reservation.escrow_id,
            metadata=bytes.fromhex(reservation.id[4:]).rjust(32, b"\0"),
        )
        tx_hashes: list[str] = []
        try:
            stopped = self._resolved_meanwhile(reservation)
            if stopped is not None:
                return stopped
            try:
                await self._fund(plan, tx_hashes)
            except Exception as exc:  # a BaseException leaves the row PENDING for recover
                cause = describe_error(exc)
                logger.warning("funding %s failed: %s", reservation.id, cause)
                # A revert at estimation, before anything was sent, proves that nothing
                # of this spend can be mined: no fence is needed.
                unsent = not tx_hashes and isinstance(exc, ContractRevert) and not exc.tx_hash
                resolve = functools.partial(
                    self.resolution.resolve,
                    reservation,
                    tx_hashes,
                    f"funding failed: {cause}",
                    remaining,
                    error_data(exc),
                    fence=not unsent,
                )
                return await offload(resolve)
            _, result = await self.committer.afinish(
                reservation,
                ReservationStatus.COMMITTED,
                tx_hashes,
                "escrow funded",
                "committed",
                remaining,
            )
        finally:
            self.context.stop(reservation.id)
        return result

    async def _fund(self, plan: PlannedSpend, tx_hashes: list[str]) -> None:
        """The executor's ``afund`` where it has one (no thread while the block is
        awaited), else its ``fund`` in a worker thread."""
        executor = self.context.executor
        afund = getattr(executor, "afund", None)
        if afund is None or _fund_overridden(executor):
            await offload(executor.fund, plan, tx_hashes)
        else:
            await either(executor.fund, afund, plan, tx_hashes)


#: A spend whose reservation is at least this old (by the coordinator's clock) when it is
#: about to be sent reads its row again first: its process may have been paused, and
#: another one may have recovered (fenced and voided) the row meanwhile.
STALE_LEASE = 1.0


def _replay(stored: str, result: dict[str, Any] | None, digest: str, key: str) -> SpendResult:
    if stored != digest:
        raise IdempotencyKeyMismatch(
            f"idempotency key {key!r} was already used for a different request"
        )
    if result is None:
        raise IdempotencyKeyInUse(
            f"the request with idempotency key {key!r} is still in progress; "
            "retry later (recover() resolves it if its process died)"
        )
    logger.debug("idempotent replay of key %r", key)
    return SpendResult.from_json(result)


# _fund_overridden's answers by (executor class, its fund, its afund).
_OVERRIDDEN: dict[tuple[type, object, object], bool] = {}


def _fund_overridden(executor: object) -> bool:
    """Whether ``executor.fund`` was replaced after its ``afund`` was written: wrapped on
    the instance, or overridden by a subclass that kept the inherited ``afund``. Then
    ``afund`` would skip what the wrapper adds (and a blocking wrapper called from it
    would stall the event loop), so the blocking ``fund`` runs in a worker thread."""
    if "fund" in getattr(executor, "__dict__", {}):
        return True
    kind = type(executor)
    # Once per executor class and pair of methods (a class patched later is looked at
    # again), not a walk of the MRO per spend.
    key = (kind, getattr(kind, "fund", None), getattr(kind, "afund", None))
    found = _OVERRIDDEN.get(key)
    if found is None:
        mro = kind.__mro__
        owner = {name: next(k for k in mro if name in vars(k)) for name in ("fund", "afund")}
        found = owner["fund"] is not owner["afund"] and issubclass(owner["fund"], owner["afund"])
        _OVERRIDDEN[key] = found
    return found
