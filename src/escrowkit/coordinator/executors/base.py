"""The chain work of a spend, behind one small interface the coordinator calls.

:class:`~escrowkit.coordinator.executors.TreasuryExecutor` pays from the treasury account
through ``stack.escrow``; :class:`~escrowkit.coordinator.executors.PoolExecutor` spends
from the BudgetPool through ``stack.pool``;
:class:`~escrowkit.coordinator.executors.NoopExecutor` touches no chain at all. The
coordinator never talks to the chain except through one of these.

An executor records every transaction hash it sends into the ``tx_hashes`` list it is
given as soon as the receipt is back, so the ledger knows them even when a later step
raises.

An executor may also offer ``async def afund(spend, tx_hashes)``, the same work as a
coroutine; ``BudgetCoordinator.arequest_spending`` uses it so that many spends can wait
for their blocks without a thread each (without it, ``fund`` runs in a worker thread).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from escrowkit.budget import AgentConfig
from escrowkit.core.errors import ConfigurationError, ContractRevert
from escrowkit.core.escrow_state import EscrowState
from escrowkit.core.units import TokenUnits

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack
    from escrowkit.ledger import Store

__all__ = [
    "POOL_PERIOD",
    "ChainExecutor",
    "PlannedSpend",
    "SpendExecutor",
    "tx_hash_of",
    "with_advice",
]

#: BudgetPool windows for the agents' daily limits: the UTC calendar day.
POOL_PERIOD = 86_400


@dataclass(frozen=True)
class PlannedSpend:
    """What the coordinator reserved and now asks the executor to put on-chain."""

    reservation_id: str
    agent_address: str
    provider: str
    amount: int
    salt: bytes
    escrow_id: bytes
    metadata: bytes


class SpendExecutor(Protocol):
    """The chain work of the coordinator. Every method may raise; none may lie."""

    #: How to show amounts of the token the escrows hold.
    units: TokenUnits
    #: The on-chain requester of every escrow (treasury account or pool contract).
    requester: str
    #: Identifies the chain, escrow and mode a ledger belongs to.
    binding: str
    #: Addresses no spend may pay, with what each is (the paying account, the Escrow,
    #: the BudgetPool): such a spend is DENIED ``invalid_provider`` before anything is sent.
    forbidden_providers: Mapping[str, str]

    def escrow_id(self, agent_address: str, salt: bytes) -> bytes:
        """The id the escrow for ``salt`` will have (known before anything is sent)."""
        ...

    def fund(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        """Create and fund the escrow ``spend.escrow_id``; return once it is FUNDED."""
        ...

    def state(self, escrow_id: bytes) -> EscrowState:
        """The escrow's state on-chain (NONE when it does not exist)."""
        ...

    def fence(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        """Make ``spend.escrow_id`` unusable on-chain (it then exists, CANCELLED, and was
        never funded), so that a spender that was only paused can never fund it. Raises
        the Escrow's ``InvalidState`` when the id already exists."""
        ...

    def cancel(self, escrow_id: bytes) -> str:
        """Cancel as the requester; returns the transaction hash."""
        ...

    def settle(self, escrow_id: bytes) -> str:
        """Release to the provider as the requester; returns the transaction hash."""
        ...

    def reconcile(self, escrow_id: bytes) -> str | None:
        """Bring on-chain counters up to date after a refund (pool mode); hash or None."""
        ...

    @property
    def sender(self) -> str:
        """The key this executor sends with (recorded on every reservation it makes)."""
        ...

    def sender_of(self, recorded: str | None, requester: str) -> str:
        """The key that sends for a row: the one it recorded, or, for a row from before
        senders were recorded, the one its mode implies."""
        ...

    def idle(self, sender: str) -> bool:
        """True when ``sender`` has no transaction waiting to be mined."""
        ...

    @property
    def first_block(self) -> int:
        """The first block that can hold this deployment's escrow events."""
        ...

    def head(self) -> int:
        """The latest block number (what :meth:`final_states` may read up to)."""
        ...

    def final_states(self, from_block: int, to_block: int) -> dict[bytes, EscrowState]:
        """Escrows that became SETTLED or CANCELLED in ``[from_block, to_block]``."""
        ...

    def register_agent(self, config: AgentConfig) -> str | None:
        """Write the agent's on-chain limits where the mode has them; hash or None."""
        ...

    def remove_agent(self, config: AgentConfig) -> str | None:
        """Remove the agent's on-chain limits where the mode has them; hash or None."""
        ...

    def shortfall(self, amount: int) -> str | None:
        """None when the paying account holds ``amount`` now (treasury: its balance; pool:
        the pool's spendable balance), else a sentence saying what is short and what to
        do. Reads the chain; the allowance is no part of it (approving is the executor's
        own business)."""
        ...


def with_advice(exc: ContractRevert, advice: str | None) -> None:
    """Add ``advice`` to the revert's message (its name, arguments and transaction stay as
    they are, so it is still recorded as that revert, with its data)."""
    if advice:
        exc.args = (f"{exc}; {advice}",)


def tx_hash_of(receipt: Any) -> str:
    """A receipt's transaction hash as 0x hex."""
    value = receipt["transactionHash"]
    return value.to_0x_hex() if hasattr(value, "to_0x_hex") else str(value)


class ChainExecutor:
    """What both on-chain modes share: reading escrows, ids, pending transactions."""

    def __init__(
        self, stack: Stack, treasury: str, *, escrow_ttl: int, dispute_window: int
    ) -> None:
        self.stack = stack
        self.chain = stack.chain
        self.treasury = treasury
        self.escrow_ttl = escrow_ttl
        self.dispute_window = dispute_window
        self.units = TokenUnits(stack.token.decimals, stack.token.symbol)
        self.forbidden_providers: Mapping[str, str] = {
            stack.escrow.address: "the Escrow",
            stack.pool.address: "the BudgetPool",
        }
        if not self.chain.can_sign(treasury):
            raise ConfigurationError(
                f"the chain has no key for treasury {treasury}; pass an account to "
                "Chain.connect or choose one of chain.accounts"
            )

    def shortfall(self, amount: int) -> str | None:
        raise NotImplementedError  # each mode knows who pays

    def advice(self, amount: int) -> str | None:
        """:meth:`shortfall` after a failure: a node that fails this read too must not
        hide the error that is being reported."""
        try:
            return self.shortfall(amount)
        except Exception:  # the original error is the one to report
            return None

    def _deadline(self) -> int:
        # A deadline a day away does not need this block's exact second: reuse a chain
        # time read within the last second instead of a round trip per spend.
        return self.chain.now(max_age=1.0) + self.escrow_ttl

    def state(self, escrow_id: bytes) -> EscrowState:
        return EscrowState(int(self.stack.escrow.get(escrow_id).state))

    def share_nonces(self, store: Store | None) -> None:
        """Send with the treasury key through ``store``'s nonce row, shared by every
        process on that ledger (None: back to this process's own nonces)."""
        source = None
        if store is not None:
            from escrowkit.ledger.nonces import LedgerNonces

            source = LedgerNonces(store, self.chain.chain_id)
        self.chain.use_nonce_source(self.treasury, source)

    @property
    def sender(self) -> str:
        return self.treasury

    def sender_of(self, recorded: str | None, requester: str) -> str:
        # Pool mode: the pool is every row's requester; an old row does not say which
        # operator sent, so this key is the best guess.
        return recorded or self.treasury

    def idle(self, sender: str) -> bool:
        return self.chain.pending_transactions(sender) == 0

    @property
    def first_block(self) -> int:
        return self.stack.escrow.from_block

    def head(self) -> int:
        return self.chain.block_number()

    def final_states(self, from_block: int, to_block: int) -> dict[bytes, EscrowState]:
        return {
            bytes(k): v for k, v in self.stack.escrow.final_states(from_block, to_block).items()
        }
