"""The escrows the dashboard lists: each spend's escrow with its on-chain state, and
whether Settle and Cancel are open to the session, with the reason when they are not.

Escrow's rules for the requester (DESIGN.md section 3) decide: a FUNDED escrow may be
settled any time, and cancelled only from its deadline until the end of its dispute
window; an INITIATED one may be cancelled any time. The button is an offer: the chain
has the last word (a refusal comes back as 409 ``contract_revert``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from escrowkit.coordinator import ReservationStatus
from escrowkit.core.escrow_state import EscrowState

__all__ = ["OPEN_LIMIT", "escrow_rows"]

#: Open escrows listed (newest first), and closed ones after them.
OPEN_LIMIT = 20
CLOSED_LIMIT = 10

#: The word and colour class of each ledger status of a spend with an escrow.
_LEDGER = {
    ReservationStatus.PENDING: "being funded",
    ReservationStatus.COMMITTED: "funded",
    ReservationStatus.SETTLED: "settled",
    ReservationStatus.REFUNDED: "refunded",
}


def _when(seconds: float, tz: dt.tzinfo) -> str:
    return dt.datetime.fromtimestamp(seconds, tz).strftime("%Y-%m-%d %H:%M")


def _chain_view(coordinator: Any, escrow_id: bytes) -> tuple[EscrowState, int | None, int | None]:
    """The escrow's state, deadline and end of its dispute window (None: unknown)."""
    stack = getattr(coordinator, "stack", None)
    if stack is None:  # no chain (a no-op executor): the executor's own states
        return coordinator.executor.state(escrow_id), None, None
    record = stack.escrow.get(escrow_id)
    release = record.release_at
    return EscrowState(int(record.state)), int(record.deadline), release


def _rules(
    state: EscrowState, deadline: int | None, release: int | None, now: int | None, tz: dt.tzinfo
) -> tuple[str | None, str | None]:
    """Why Settle and why Cancel are not open (None: open), by Escrow's rules."""
    if state is EscrowState.INITIATED:
        return "not funded yet: there is nothing to release", None
    if state is not EscrowState.FUNDED:
        final = f"the escrow is {state.name.lower()} on-chain; run escrowkit sync"
        return final, final
    if deadline is None or now is None:
        return None, None
    if now < deadline:
        return None, f"cancel opens at the deadline, {_when(deadline, tz)}"
    if release is not None and now >= release:
        return None, f"the dispute window closed at {_when(release, tz)}"
    return None, None


def _row(coordinator: Any, row: Any, is_admin: bool, now: int | None) -> dict[str, Any]:
    units, tz = coordinator.units, coordinator.timezone
    deadline: int | None = None
    if row.status is ReservationStatus.COMMITTED:
        state, deadline, release = _chain_view(coordinator, row.escrow_id)
        settle, cancel = _rules(state, deadline, release, now, tz)
    else:
        state = {
            ReservationStatus.SETTLED: EscrowState.SETTLED,
            ReservationStatus.REFUNDED: EscrowState.CANCELLED,
        }.get(row.status, EscrowState.INITIATED)
        closed = f"the spend is {_LEDGER[row.status]}"
        settle = cancel = closed
    if not is_admin:  # an approver sees what the rules say, and who could act
        settle = settle or "needs an admin key"
        cancel = cancel or "needs an admin key"
    return {
        "escrow_id": "0x" + row.escrow_id.hex(),
        "reservation_id": row.id,
        "agent_id": row.agent_id,
        "amount": {"value": str(row.amount), "text": units.format(row.amount)},
        "provider": row.provider,
        "purpose": row.purpose,
        "status": _LEDGER.get(row.status, row.status.value.lower()),
        "chain_state": state.name,
        "deadline": None if deadline is None else _when(deadline, tz),
        "created_at": row.created_at,
        "settle": {"allowed": settle is None, "reason": settle},
        "cancel": {"allowed": cancel is None, "reason": cancel},
    }


def escrow_rows(coordinator: Any, *, is_admin: bool) -> list[dict[str, Any]]:
    """Open escrows (newest first, with their chain state), then recently closed ones."""
    open_rows = coordinator.spends(ReservationStatus.COMMITTED, limit=OPEN_LIMIT).data
    closed = coordinator.spends(
        ReservationStatus.SETTLED, ReservationStatus.REFUNDED, limit=CLOSED_LIMIT
    ).data
    stack = getattr(coordinator, "stack", None)
    now = int(stack.chain.now()) if stack is not None and open_rows else None
    return [_row(coordinator, row, is_admin, now) for row in [*open_rows, *closed]]
