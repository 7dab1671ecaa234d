"""The chain work of a spend, behind one small interface the coordinator calls.

:class:`TreasuryExecutor` pays from the treasury account through ``stack.escrow``;
:class:`PoolExecutor` spends from the BudgetPool through ``stack.pool``;
:class:`NoopExecutor` touches no chain at all (benchmarks of the coordinator's own
overhead, and tests of its bookkeeping). The coordinator never talks to the chain
except through one of these.

An executor records every transaction hash it sends into the ``tx_hashes`` list it is
given as soon as the receipt is back, so the ledger knows them even when a later step
raises.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from escrowkit.budget import AgentConfig
from escrowkit.core.errors import ConfigurationError, ContractRevert, revert_class
from escrowkit.core.escrow_state import EscrowState
from escrowkit.core.units import TokenUnits

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack

__all__ = [
    "NoopExecutor",
    "PlannedSpend",
    "PoolExecutor",
    "SpendExecutor",
    "TreasuryExecutor",
]

logger = logging.getLogger(__name__)

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

    def escrow_id(self, agent_address: str, salt: bytes) -> bytes:
        """The id the escrow for ``salt`` will have (known before anything is sent)."""
        ...

    def fund(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        """Create and fund the escrow ``spend.escrow_id``; return once it is FUNDED."""
        ...

    def state(self, escrow_id: bytes) -> EscrowState:
        """The escrow's state on-chain (NONE when it does not exist)."""
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

    def idle(self, requester: str) -> bool:
        """True when the key that sent for ``requester`` (a reservation's) has no
        transaction waiting to be mined."""
        ...

    def register_agent(self, config: AgentConfig) -> str | None:
        """Write the agent's on-chain limits where the mode has them; hash or None."""
        ...


def _hash(receipt: Any) -> str:
    value = receipt["transactionHash"]
    return value.to_0x_hex() if hasattr(value, "to_0x_hex") else str(value)


class _ChainExecutor:
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
        if not self.chain.can_sign(treasury):
            raise ConfigurationError(
                f"the chain has no key for treasury {treasury}; pass an account to "
                "Chain.connect or choose one of chain.accounts"
            )

    def _deadline(self) -> int:
        # A deadline a day away does not need this block's exact second: reuse a chain
        # time read within the last second instead of a round trip per spend.
        return self.chain.now(max_age=1.0) + self.escrow_ttl

    def state(self, escrow_id: bytes) -> EscrowState:
        return EscrowState(int(self.stack.escrow.get(escrow_id).state))

    def idle(self, requester: str) -> bool:
        return self.chain.pending_transactions(self._sender(requester)) == 0

    def _sender(self, requester: str) -> str:
        """The key that sent for ``requester``'s escrows. Pool mode: the pool is every
        row's requester and the ledger does not say which operator sent, so our own key."""
        return self.treasury


class TreasuryExecutor(_ChainExecutor):
    """Treasury mode: the treasury account is the escrows' requester and pays directly.

    With enough allowance one ``createAndFund``; otherwise ``create``, ``approve``, ``fund``.

    Allowance is shared by concurrent spends. This process keeps its own view of it (read
    from the chain, less what its spends consumed since) and each spend claims its amount
    under a lock before relying on it, so parallel spends never take each other's and
    the steady state costs no extra call. A view made stale by another process shows up
    as a reverted ``createAndFund`` (atomic: nothing was created): the view is read again
    and, when the allowance is indeed short, the spend takes the three-step path.
    """

    def __init__(
        self, stack: Stack, treasury: str, *, escrow_ttl: int, dispute_window: int
    ) -> None:
        super().__init__(stack, treasury, escrow_ttl=escrow_ttl, dispute_window=dispute_window)
        self.requester: str = treasury
        self.binding = f"{self.chain.chain_id}:{stack.escrow.address}:treasury"
        self._allowance_lock = threading.Lock()
        self._allowance: int | None = None  # our view; None: read it again
        self._claimed = 0  # claimed by spends in flight, not yet consumed

    def escrow_id(self, agent_address: str, salt: bytes) -> bytes:
        return bytes(self.stack.escrow.escrow_id(self.treasury, salt))

    def _sender(self, requester: str) -> str:
        # The requester is the key that sent: processes with keys of their own may share
        # one ledger, and another's transaction in flight is not this key's business.
        return requester

    def _read_allowance(self) -> int:
        """The chain's figure (call with the lock held)."""
        value = self.stack.token.allowance(self.treasury, self.stack.escrow.address)
        self._allowance = value
        return value

    def _claim(self, amount: int) -> bool:
        """Claim ``amount`` of the allowance for one spend, if it is there."""
        with self._allowance_lock:
            allowance = self._allowance
            if allowance is None or allowance - self._claimed < amount:
                allowance = self._read_allowance()  # someone may have raised it
            if allowance - self._claimed < amount:
                return False
            self._claimed += amount
            return True

    def _unclaim(self, amount: int, *, consumed: bool | None) -> None:
        """The spend is over: ``consumed`` True (funded), False (nothing moved) or None
        (unknown: forget the view, read it next time)."""
        with self._allowance_lock:
            self._claimed -= amount
            if consumed is None:
                self._allowance = None
            elif consumed and self._allowance is not None:
                self._allowance -= amount

    def fund(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        escrow = self.stack.escrow
        args: dict[str, Any] = {
            "deadline": self._deadline(),
            "dispute_window": self.dispute_window,
            "metadata": spend.metadata,
            "salt": spend.salt,
            "sender": self.treasury,
        }
        if self._claim(spend.amount):
            try:
                created = escrow.create_and_fund(spend.provider, spend.amount, **args)
            except ContractRevert:
                self._unclaim(spend.amount, consumed=False)
                with self._allowance_lock:
                    short = self._read_allowance() - self._claimed < spend.amount
                if not short:
                    raise
                logger.info(
                    "allowance used elsewhere; funding %s in three steps", spend.escrow_id.hex()
                )
            except BaseException:
                self._unclaim(spend.amount, consumed=None)
                raise
            else:
                self._unclaim(spend.amount, consumed=True)
                tx_hashes.append(_hash(created.receipt))
                return
        self._fund_in_three_steps(spend, args, tx_hashes)

    def _fund_in_three_steps(
        self, spend: PlannedSpend, args: dict[str, Any], tx_hashes: list[str]
    ) -> None:
        escrow, token = self.stack.escrow, self.stack.token
        created = escrow.create(spend.provider, spend.amount, **args)
        tx_hashes.append(_hash(created.receipt))
        with self._allowance_lock:
            allowance = self._read_allowance()
            if allowance - self._claimed < spend.amount:
                # Enough for the spends in flight and this one. A USDT-like token takes a
                # new allowance only through 0; a spend in flight whose fund lands in
                # between fails and is cancelled like any other failed funding.
                wanted = self._claimed + spend.amount
                receipts = token.force_approve(
                    escrow.address, wanted, sender=self.treasury, current=allowance
                )
                tx_hashes.extend(map(_hash, receipts))
                self._allowance = wanted
            self._claimed += spend.amount
        try:
            receipt = escrow.fund(created, sender=self.treasury)
        except BaseException:
            self._unclaim(spend.amount, consumed=None)
            raise
        self._unclaim(spend.amount, consumed=True)
        tx_hashes.append(_hash(receipt))

    def cancel(self, escrow_id: bytes) -> str:
        return _hash(self.stack.escrow.cancel(escrow_id, sender=self.treasury))

    def settle(self, escrow_id: bytes) -> str:
        return _hash(self.stack.escrow.settle(escrow_id, sender=self.treasury))

    def reconcile(self, escrow_id: bytes) -> str | None:
        return None

    def register_agent(self, config: AgentConfig) -> str | None:
        return None


class PoolExecutor(_ChainExecutor):
    """Pool mode: the BudgetPool is the requester; the treasury key is one of its operators.

    Every spend is one ``pool.spend`` (the pool's own limits apply on top of ours);
    registering an agent writes its per-transaction and daily limits to the pool with the
    owner's key.
    """

    def __init__(
        self, stack: Stack, treasury: str, *, escrow_ttl: int, dispute_window: int
    ) -> None:
        super().__init__(stack, treasury, escrow_ttl=escrow_ttl, dispute_window=dispute_window)
        pool = stack.pool
        self.requester: str = pool.address
        self.binding = f"{self.chain.chain_id}:{stack.escrow.address}:pool:{pool.address}"
        if not pool.is_operator(treasury):
            owner = pool.owner()
            if owner != treasury:
                raise ConfigurationError(
                    f"treasury {treasury} is neither an operator nor the owner ({owner}) of "
                    f"the BudgetPool at {pool.address}: have the owner call "
                    f"set_operator({treasury}, True)"
                )
            logger.info("making treasury %s an operator of pool %s", treasury, pool.address)
            pool.set_operator(treasury, True, sender=treasury)

    def escrow_id(self, agent_address: str, salt: bytes) -> bytes:
        return bytes(self.stack.pool.escrow_id(agent_address, salt))

    def fund(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        created = self.stack.pool.spend(
            spend.agent_address,
            spend.provider,
            spend.amount,
            deadline=self._deadline(),
            dispute_window=self.dispute_window,
            metadata=spend.metadata,
            salt=spend.salt,
            sender=self.treasury,
        )
        tx_hashes.append(_hash(created.receipt))

    def cancel(self, escrow_id: bytes) -> str:
        return _hash(self.stack.pool.cancel(escrow_id, sender=self.treasury))

    def settle(self, escrow_id: bytes) -> str:
        return _hash(self.stack.pool.settle(escrow_id, sender=self.treasury))

    def reconcile(self, escrow_id: bytes) -> str | None:
        record = self.stack.pool.spend_record(escrow_id)
        if record is None or record.refunded:  # not the pool's, or already credited back
            return None
        return _hash(self.stack.pool.reconcile(escrow_id, sender=self.treasury))

    def register_agent(self, config: AgentConfig) -> str | None:
        pool = self.stack.pool
        owner = pool.owner()
        if not self.chain.can_sign(owner):
            raise ConfigurationError(
                f"writing agent limits to the BudgetPool needs its owner's key ({owner}); "
                "this chain cannot sign for it"
            )
        receipt = pool.set_agent(
            config.address, config.spending_limit, config.daily_limit, POOL_PERIOD, sender=owner
        )
        return _hash(receipt)


class NoopExecutor:
    """No chain: every spend is "funded" at once, in memory.

    For measuring the coordinator's own overhead and testing its bookkeeping. The escrow
    id is the salt, states live in a dict.
    """

    requester = "0x000000000000000000000000000000000000dEaD"
    binding = "noop"

    def __init__(self, units: TokenUnits | None = None) -> None:
        self.units = units or TokenUnits(6, "USDC")
        self._states: dict[bytes, EscrowState] = {}
        self._lock = threading.Lock()

    def escrow_id(self, agent_address: str, salt: bytes) -> bytes:
        return salt

    def fund(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        with self._lock:
            self._states[spend.escrow_id] = EscrowState.FUNDED

    def state(self, escrow_id: bytes) -> EscrowState:
        return self._states.get(escrow_id, EscrowState.NONE)

    def _move(self, escrow_id: bytes, allowed: tuple[EscrowState, ...], to: EscrowState) -> str:
        with self._lock:
            state = self._states.get(escrow_id, EscrowState.NONE)
            if state not in allowed:  # what Escrow.sol would revert with
                raise revert_class("InvalidState")({"id": escrow_id, "state": int(state)})
            self._states[escrow_id] = to
        return ""

    def cancel(self, escrow_id: bytes) -> str:
        return self._move(
            escrow_id, (EscrowState.INITIATED, EscrowState.FUNDED), EscrowState.CANCELLED
        )

    def settle(self, escrow_id: bytes) -> str:
        return self._move(escrow_id, (EscrowState.FUNDED,), EscrowState.SETTLED)

    def reconcile(self, escrow_id: bytes) -> str | None:
        return None

    def idle(self, requester: str) -> bool:
        return True

    def register_agent(self, config: AgentConfig) -> str | None:
        return None
