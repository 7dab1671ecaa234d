"""The event outbox: what happened, for the service's event streams and webhooks.

Events are written in the same transaction as the decision that caused them (the
``record_*`` functions here are called from spending, commit, approvals, alerts and
resolution, inside their transactions), so an event exists exactly when its decision
does, in every process on the ledger, with one id sequence for all of them.

- ``decision``: a spend's outcome as its caller got it (APPROVED, DENIED,
  PENDING_APPROVAL, FAILED): the SpendResult's fields and the request's.
- ``approval``: an approval opened (PENDING) or closed (APPROVED, DENIED, REJECTED,
  EXPIRED), with who decided and why.
- ``alert``: an :class:`~escrowkit.coordinator.results.Alert` fired.
- ``escrow``: a funded escrow was settled or refunded.

:class:`Outbox` reads them in id order and keeps each webhook endpoint's delivery cursor
(a lease, so that of several processes one delivers, and a restart resumes where the
last 2xx left off).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from escrowkit.core.errors import InvalidRequest
from escrowkit.core.inputs import int_in_range
from escrowkit.core.units import TokenUnits
from escrowkit.ledger import Approval, Event, Ledger, Reservation, Store, WebhookCursor

if TYPE_CHECKING:
    from escrowkit.budget import SpendRequest
    from escrowkit.coordinator.results import Alert, SpendResult

__all__ = [
    "EVENT_TYPES",
    "Event",
    "Outbox",
    "WebhookCursor",
    "describe",
    "record_alert",
    "record_approval",
    "record_decision",
    "record_escrow",
]

EVENT_TYPES = ("decision", "approval", "alert", "escrow")


# ---- written inside the decisions' transactions ------------------------------------------


def record_decision(
    ledger: Ledger,
    now: float,
    result: SpendResult,
    *,
    request: SpendRequest | None = None,
    reservation: Reservation | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """A spend's outcome, from the request (denied, pending) or its reservation (final).
    ``data``: ``result.to_json()`` when the caller has it already (it is copied, not
    changed)."""
    source: Any = request if request is not None else reservation
    assert source is not None
    data = result.to_json() if data is None else dict(data)
    data.update(
        agent_id=source.agent_id,
        amount=str(source.amount),
        provider=source.provider,
        purpose=source.purpose,
        category=source.category,
        workflow=source.workflow,
    )
    ledger.emit("decision", now, data, agent_id=source.agent_id)


def record_approval(
    ledger: Ledger,
    now: float,
    approval: Approval,
    status: str,
    *,
    by: str | None = None,
    reason: str | None = None,
    reservation_id: str | None = None,
) -> None:
    """An approval opened (``PENDING``) or closed (its new status)."""
    request = approval.request
    data = {
        "approval_id": approval.id,
        "status": status,
        "agent_id": request.agent_id,
        "amount": str(request.amount),
        "provider": request.provider,
        "purpose": request.purpose,
        "category": request.category,
        "workflow": request.workflow,
        "decided_by": by,
        "reason": reason,
        "reservation_id": reservation_id,
        "expires_at": approval.expires_at,
    }
    ledger.emit("approval", now, data, agent_id=request.agent_id)


def record_alert(ledger: Ledger, alert: Alert) -> None:
    data = {
        "kind": alert.kind,
        "scope": alert.scope,
        "threshold": alert.threshold,
        "spent": str(alert.spent),
        "limit": str(alert.limit),
        "period": alert.period,
    }
    agent_id = alert.scope if alert.kind == "daily_limit" else None
    ledger.emit("alert", alert.at, data, agent_id=agent_id)


def record_escrow(ledger: Ledger, now: float, row: Reservation, tx_hash: str) -> None:
    """A funded escrow settled or refunded (``row`` as it is now)."""
    data = {
        "reservation_id": row.id,
        "agent_id": row.agent_id,
        "escrow_id": "0x" + row.escrow_id.hex(),
        "status": row.status.value,
        "amount": str(row.amount),
        "provider": row.provider,
        "tx_hash": tx_hash or None,
    }
    ledger.emit("escrow", now, data, agent_id=row.agent_id)


# ---- read by the service -----------------------------------------------------------------


class Outbox:
    """The outbox of one ledger: events in id order, and webhook delivery cursors."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def after(
        self, cursor: int = 0, *, agent_id: str | None = None, limit: int = 100
    ) -> list[Event]:
        """Events with ids above ``cursor``, oldest first (only ``agent_id``'s, if given)."""
        cursor = int_in_range(cursor, "cursor", 0, 2**63 - 1)
        limit = int_in_range(limit, "limit", 1, 1_000)
        with self.store.read() as ledger:
            return ledger.events_after(cursor, agent_id=agent_id, limit=limit)

    def head(self) -> int:
        """The last event's id (0: none yet)."""
        with self.store.read() as ledger:
            return ledger.event_head()

    def claim(self, endpoint: str, owner: str, lease: float) -> WebhookCursor | None:
        """Take (or renew) the lease on ``endpoint``'s deliveries for ``lease`` seconds.

        None when another owner's lease still runs, or the next attempt is not due yet. A
        new endpoint starts at the current head: it gets what happens from now on."""
        if not endpoint or not owner:
            raise InvalidRequest("claim needs an endpoint and an owner")
        now = self.clock()
        with self.store.write() as ledger:
            cursor = ledger.webhook_cursor(endpoint)
            if cursor is None:
                ledger.insert_webhook_cursor(endpoint, ledger.event_head(), now)
                cursor = ledger.webhook_cursor(endpoint)
                assert cursor is not None
            if cursor.lease_owner not in (None, owner) and cursor.lease_until > now:
                return None
            if cursor.next_attempt_at > now:
                return None
            ledger.update_webhook_cursor(endpoint, now, lease_owner=owner, lease_until=now + lease)
            return ledger.webhook_cursor(endpoint)

    def delivered(self, endpoint: str, owner: str, through: int, lease: float) -> bool:
        """Every event up to ``through`` is delivered (answered 2xx, or not wanted by the
        endpoint); renews the lease. False when ``owner`` lost the lease meanwhile."""
        now = self.clock()
        with self.store.write() as ledger:
            cursor = ledger.webhook_cursor(endpoint)
            if cursor is None or cursor.lease_owner != owner:
                return False
            ledger.update_webhook_cursor(
                endpoint,
                now,
                delivered_through=max(through, cursor.delivered_through),
                attempts=0,
                next_attempt_at=0.0,
                last_error=None,
                lease_until=now + lease,
            )
            return True

    def failed(self, endpoint: str, owner: str, retry_in: float, error: str) -> int:
        """The next event's delivery failed: try again in ``retry_in`` seconds (the lease
        is given up meanwhile). Returns the number of failed attempts so far."""
        now = self.clock()
        with self.store.write() as ledger:
            cursor = ledger.webhook_cursor(endpoint)
            if cursor is None or cursor.lease_owner != owner:
                return 0
            attempts = cursor.attempts + 1
            ledger.update_webhook_cursor(
                endpoint,
                now,
                attempts=attempts,
                next_attempt_at=now + retry_in,
                last_error=error[:500],
                lease_owner=None,
                lease_until=0.0,
            )
            return attempts

    def release(self, endpoint: str, owner: str) -> None:
        """Give up the lease (a clean shutdown), so another process need not wait."""
        now = self.clock()
        with self.store.write() as ledger:
            cursor = ledger.webhook_cursor(endpoint)
            if cursor is not None and cursor.lease_owner == owner:
                ledger.update_webhook_cursor(endpoint, now, lease_owner=None, lease_until=0.0)

    def cursor(self, endpoint: str) -> WebhookCursor | None:
        with self.store.read() as ledger:
            return ledger.webhook_cursor(endpoint)


# ---- for people ----------------------------------------------------------------------------


def describe(event: Event, units: TokenUnits) -> str:
    """One sentence for a chat message (a webhook's ``text``)."""
    data = event.data
    amount = data.get("amount")
    shown = units.format(int(amount)) if amount is not None else ""
    agent = data.get("agent_id") or "treasury"
    if event.type == "decision":
        status = data.get("status")
        if status == "APPROVED":
            return f"{agent} spent {shown} to {data.get('provider')} for {data.get('purpose')!r}"
        if status == "PENDING_APPROVAL":
            return (
                f"{agent} asks for {shown} to {data.get('provider')} for "
                f"{data.get('purpose')!r}: approval {data.get('approval_id')} waits"
            )
        verb = "was denied" if status == "DENIED" else "could not spend"
        return f"{agent} {verb} {shown}: {data.get('reason')}"
    if event.type == "approval":
        status = str(data.get("status", "")).lower()
        by = f" by {data['decided_by']}" if data.get("decided_by") else ""
        why = f": {data['reason']}" if data.get("reason") and status != "approved" else ""
        if status == "pending":
            return f"Approval {data.get('approval_id')} for {agent} ({shown}) is waiting"
        return f"Approval {data.get('approval_id')} for {agent} ({shown}) was {status}{by}{why}"
    if event.type == "alert":
        spent, limit = int(data["spent"]), int(data["limit"])
        what = (
            "the total budget" if data.get("kind") == "total_budget" else f"{agent}'s daily limit"
        )
        return (
            f"Alert: {what} reached {data.get('threshold')}% "
            f"({units.format(spent)} of {units.format(limit)})"
        )
    status = str(data.get("status", "")).lower()
    return f"Escrow {data.get('escrow_id')} of {agent} ({shown}) was {status}"
