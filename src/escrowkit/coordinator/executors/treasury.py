"""Treasury mode: the treasury account is every escrow's requester and pays directly."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from escrowkit.budget import AgentConfig
from escrowkit.coordinator.executors.base import (
    ChainExecutor,
    PlannedSpend,
    tx_hash_of,
    with_advice,
)
from escrowkit.core.drive import either, offload, run_sync
from escrowkit.core.errors import ContractRevert

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack

__all__ = ["TreasuryExecutor"]

logger = logging.getLogger(__name__)


class TreasuryExecutor(ChainExecutor):
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
        self.forbidden_providers = {
            **self.forbidden_providers,
            treasury: "the treasury (the paying account)",
        }
        self._allowance_lock = threading.Lock()
        self._allowance: int | None = None  # our view; None: read it again
        self._claimed = 0  # claimed by spends in flight, not yet consumed

    def escrow_id(self, agent_address: str, salt: bytes) -> bytes:
        return bytes(self.stack.escrow.escrow_id(self.treasury, salt))

    def sender_of(self, recorded: str | None, requester: str) -> str:
        # The requester is the key that sent: processes with keys of their own may share
        # one ledger, and another's transaction in flight is not this key's business.
        return recorded or requester

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

    def shortfall(self, amount: int) -> str | None:
        balance = self.stack.token.balance_of(self.treasury)
        if balance >= amount:
            return None
        fmt = self.units.format
        return (
            f"the treasury {self.treasury} holds {fmt(balance)}, {fmt(amount)} needed: "
            "send it tokens, or make the account that holds them the treasury "
            "(coordinator.treasury or network.keystore in escrowkit.toml)"
        )

    def fund(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        run_sync(self.afund(spend, tx_hashes))

    async def afund(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        """:meth:`fund` as a coroutine (the blocking form runs this same code)."""
        try:
            await self._afund(spend, tx_hashes)
        except ContractRevert as exc:
            # Only now, when it failed, is the balance worth a read: say what to do.
            with_advice(exc, await offload(self.advice, spend.amount))
            raise

    async def _afund(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
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
                created = await either(
                    escrow.create_and_fund,
                    escrow.acreate_and_fund,
                    spend.provider,
                    spend.amount,
                    **args,
                )
            except ContractRevert:
                self._unclaim(spend.amount, consumed=False)
                if not await offload(self._short, spend.amount):
                    raise
                logger.info(
                    "allowance used elsewhere; funding %s in three steps", spend.escrow_id.hex()
                )
            except BaseException:
                self._unclaim(spend.amount, consumed=None)
                raise
            else:
                self._unclaim(spend.amount, consumed=True)
                tx_hashes.append(tx_hash_of(created.receipt))
                return
        await offload(self._fund_in_three_steps, spend, args, tx_hashes)

    def _short(self, amount: int) -> bool:
        """Whether the allowance, read again, is too small for ``amount`` more."""
        with self._allowance_lock:
            return self._read_allowance() - self._claimed < amount

    def _fund_in_three_steps(
        self, spend: PlannedSpend, args: dict[str, Any], tx_hashes: list[str]
    ) -> None:
        escrow, token = self.stack.escrow, self.stack.token
        created = escrow.create(spend.provider, spend.amount, **args)
        tx_hashes.append(tx_hash_of(created.receipt))
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
                tx_hashes.extend(map(tx_hash_of, receipts))
                self._allowance = wanted
            self._claimed += spend.amount
        try:
            receipt = escrow.fund(created, sender=self.treasury)
        except BaseException:
            self._unclaim(spend.amount, consumed=None)
            raise
        self._unclaim(spend.amount, consumed=True)
        tx_hashes.append(tx_hash_of(receipt))

    def fence(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        # The treasury creates the id itself (nothing is funded, no allowance is used) and
        # cancels it: a late createAndFund with the same salt then reverts.
        created = self.stack.escrow.create(
            spend.provider,
            1,
            deadline=self._deadline(),
            dispute_window=self.dispute_window,
            salt=spend.salt,
            sender=self.treasury,
        )
        tx_hashes.append(tx_hash_of(created.receipt))
        tx_hashes.append(self.cancel(spend.escrow_id))

    def cancel(self, escrow_id: bytes) -> str:
        return tx_hash_of(self.stack.escrow.cancel(escrow_id, sender=self.treasury))

    def settle(self, escrow_id: bytes) -> str:
        return tx_hash_of(self.stack.escrow.settle(escrow_id, sender=self.treasury))

    def reconcile(self, escrow_id: bytes) -> str | None:
        return None

    def register_agent(self, config: AgentConfig) -> str | None:
        return None

    def remove_agent(self, config: AgentConfig) -> str | None:
        return None
