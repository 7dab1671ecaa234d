"""No chain at all: for measuring the coordinator's own overhead and testing its books."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from escrowkit.budget import AgentConfig
from escrowkit.coordinator.executors.base import PlannedSpend
from escrowkit.core.errors import revert_class
from escrowkit.core.escrow_state import EscrowState
from escrowkit.core.units import TokenUnits

__all__ = ["NoopExecutor"]


class NoopExecutor:
    """No chain: every spend is "funded" at once, in memory.

    For measuring the coordinator's own overhead and testing its bookkeeping. The escrow
    id is the salt, states live in a dict.
    """

    requester = "0x000000000000000000000000000000000000dEaD"
    binding = "noop"
    forbidden_providers: Mapping[str, str] = {}

    def __init__(self, units: TokenUnits | None = None) -> None:
        self.units = units or TokenUnits(6, "USDC")
        self._states: dict[bytes, EscrowState] = {}
        self._finals: list[tuple[bytes, EscrowState]] = []  # block n holds _finals[n - 1]
        self._lock = threading.Lock()

    def escrow_id(self, agent_address: str, salt: bytes) -> bytes:
        return salt

    def fund(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        with self._lock:
            self._states[spend.escrow_id] = EscrowState.FUNDED

    async def afund(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        self.fund(spend, tx_hashes)

    def state(self, escrow_id: bytes) -> EscrowState:
        return self._states.get(escrow_id, EscrowState.NONE)

    def _move(self, escrow_id: bytes, allowed: tuple[EscrowState, ...], to: EscrowState) -> str:
        with self._lock:
            state = self._states.get(escrow_id, EscrowState.NONE)
            if state not in allowed:  # what Escrow.sol would revert with
                raise revert_class("InvalidState")({"id": escrow_id, "state": int(state)})
            self._states[escrow_id] = to
            self._finals.append((escrow_id, to))
        return ""

    def fence(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        with self._lock:
            state = self._states.get(spend.escrow_id, EscrowState.NONE)
            if state is not EscrowState.NONE:
                raise revert_class("InvalidState")({"id": spend.escrow_id, "state": int(state)})
            self._states[spend.escrow_id] = EscrowState.CANCELLED

    def cancel(self, escrow_id: bytes) -> str:
        return self._move(
            escrow_id, (EscrowState.INITIATED, EscrowState.FUNDED), EscrowState.CANCELLED
        )

    def settle(self, escrow_id: bytes) -> str:
        return self._move(escrow_id, (EscrowState.FUNDED,), EscrowState.SETTLED)

    def reconcile(self, escrow_id: bytes) -> str | None:
        return None

    sender = requester

    def sender_of(self, recorded: str | None, requester: str) -> str:
        return recorded or requester

    def idle(self, sender: str) -> bool:
        return True

    first_block = 1

    def head(self) -> int:
        return len(self._finals)

    def final_states(self, from_block: int, to_block: int) -> dict[bytes, EscrowState]:
        with self._lock:
            return dict(self._finals[max(from_block, 1) - 1 : to_block])

    def register_agent(self, config: AgentConfig) -> str | None:
        return None

    def shortfall(self, amount: int) -> str | None:
        return None

    def remove_agent(self, config: AgentConfig) -> str | None:
        return None
