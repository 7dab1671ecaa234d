"""What each party of an escrow may do, and when: the state table of ``Escrow.sol`` as data.

``Escrow.sol`` enforces it; this reads a record and says it in advance, so that a tool can
tell a person "the requester may cancel from 10:00 until 11:00" instead of letting them
find out from a ``TooEarly`` revert::

    for action in escrow_actions(escrow.get(eid)):
        print(action.party, action.action, action.open_at(chain.now()), action.start)

| state     | party     | action | from                      | until                      |
|-----------|-----------|--------|---------------------------|----------------------------|
| INITIATED | requester | fund   | now                       | deadline                   |
| INITIATED | either    | cancel | now                       | -                          |
| FUNDED    | requester | settle | now                       | -                          |
| FUNDED    | provider  | settle | deadline + dispute window | - (never: no auto-release) |
| FUNDED    | provider  | cancel | now (a full refund)       | -                          |
| FUNDED    | requester | cancel | deadline                  | deadline + dispute window  |

Times are chain timestamps (UTC seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from escrowkit.core.escrow_state import EscrowState

if TYPE_CHECKING:
    from escrowkit.contracts.escrow import EscrowRecord

__all__ = ["EscrowAction", "escrow_actions"]

Party = Literal["requester", "provider"]
Verb = Literal["fund", "settle", "cancel"]


@dataclass(frozen=True)
class EscrowAction:
    """``party`` may ``action`` the escrow from ``start`` (None: already) until ``end``
    (exclusive; None: no end). ``never`` marks an action the escrow's terms rule out."""

    party: Party
    action: Verb
    start: int | None = None
    end: int | None = None
    never: bool = False

    def open_at(self, now: int) -> bool:
        """Whether the contract would allow it at chain time ``now``."""
        if self.never:
            return False
        return (self.start is None or now >= self.start) and (self.end is None or now < self.end)


def escrow_actions(record: EscrowRecord) -> tuple[EscrowAction, ...]:
    """Every action the escrow still allows someone, with its window (none once it is
    SETTLED or CANCELLED, or when it does not exist)."""
    if record.state is EscrowState.INITIATED:
        return (
            EscrowAction("requester", "fund", end=record.deadline),
            EscrowAction("requester", "cancel"),
            EscrowAction("provider", "cancel"),
        )
    if record.state is not EscrowState.FUNDED:
        return ()
    release = record.release_at  # None: the dispute window never ends
    return (
        EscrowAction("requester", "settle"),
        EscrowAction("requester", "cancel", start=record.deadline, end=release),
        EscrowAction("provider", "settle", start=release, never=release is None),
        EscrowAction("provider", "cancel"),
    )
