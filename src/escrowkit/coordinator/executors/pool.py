"""Pool mode: the BudgetPool is every escrow's requester; the coordinator's key operates it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from escrowkit.budget import AgentConfig
from escrowkit.coordinator.executors.base import (
    POOL_PERIOD,
    ChainExecutor,
    PlannedSpend,
    tx_hash_of,
    with_advice,
)
from escrowkit.core.drive import either, offload, run_sync
from escrowkit.core.errors import ConfigurationError, ContractRevert

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack

__all__ = ["PoolExecutor"]

logger = logging.getLogger(__name__)


class PoolExecutor(ChainExecutor):
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
        self.forbidden_providers = {
            **self.forbidden_providers,
            pool.address: "the BudgetPool (the paying account)",
        }
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

    def shortfall(self, amount: int) -> str | None:
        pool = self.stack.pool
        spendable = pool.spendable()
        if spendable >= amount:
            return None
        fmt = self.units.format
        return (
            f"the BudgetPool {pool.address} has {fmt(spendable)} spendable, "
            f"{fmt(amount)} needed: contribute to it first (`escrowkit pool "
            "contribute AMOUNT`, or BudgetPoolClient.contribute)"
        )

    def fund(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        run_sync(self.afund(spend, tx_hashes))

    async def afund(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        """:meth:`fund` as a coroutine (the blocking form runs this same code)."""
        try:
            await self._aspend(spend, tx_hashes)
        except ContractRevert as exc:
            with_advice(exc, await offload(self.advice, spend.amount))
            raise

    async def _aspend(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        pool = self.stack.pool
        created = await either(
            pool.spend,
            pool.aspend,
            spend.agent_address,
            spend.provider,
            spend.amount,
            deadline=self._deadline(),
            dispute_window=self.dispute_window,
            metadata=spend.metadata,
            salt=spend.salt,
            sender=self.treasury,
        )
        tx_hashes.append(tx_hash_of(created.receipt))

    def fence(self, spend: PlannedSpend, tx_hashes: list[str]) -> None:
        fenced = self.stack.pool.fence(spend.agent_address, spend.salt, sender=self.treasury)
        tx_hashes.append(tx_hash_of(fenced.receipt))

    def cancel(self, escrow_id: bytes) -> str:
        return tx_hash_of(self.stack.pool.cancel(escrow_id, sender=self.treasury))

    def settle(self, escrow_id: bytes) -> str:
        return tx_hash_of(self.stack.pool.settle(escrow_id, sender=self.treasury))

    def reconcile(self, escrow_id: bytes) -> str | None:
        record = self.stack.pool.spend_record(escrow_id)
        if record is None or record.refunded:  # not the pool's, or already credited back
            return None
        return tx_hash_of(self.stack.pool.reconcile(escrow_id, sender=self.treasury))

    def reconcile_many(self, escrow_ids: list[bytes]) -> None:
        """:meth:`reconcile` for many refunds at once (sync after downtime): the pool's
        own check (a revert at estimation, nothing sent) stands in for reading each
        escrow's record first. Raises what is neither a receipt nor a revert."""
        if escrow_ids:
            self.stack.pool.reconcile_many(escrow_ids, sender=self.treasury)

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
        return tx_hash_of(receipt)

    def remove_agent(self, config: AgentConfig) -> str | None:
        pool = self.stack.pool
        if pool.agent(config.address).period == 0:  # not (or no longer) on the pool
            return None
        owner = pool.owner()
        if not self.chain.can_sign(owner):
            raise ConfigurationError(
                f"removing an agent from the BudgetPool needs its owner's key ({owner}); "
                "this chain cannot sign for it"
            )
        return tx_hash_of(pool.remove_agent(config.address, sender=owner))
