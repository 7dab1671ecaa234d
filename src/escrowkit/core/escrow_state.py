"""The escrow's state machine, as ``IEscrow.State`` numbers it: one enum for every layer."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["EscrowState"]


class EscrowState(IntEnum):
    """``IEscrow.State``: NONE means no such escrow; SETTLED and CANCELLED are final."""

    NONE = 0
    INITIATED = 1
    FUNDED = 2
    SETTLED = 3
    CANCELLED = 4

    @property
    def is_final(self) -> bool:
        return self in (EscrowState.SETTLED, EscrowState.CANCELLED)
