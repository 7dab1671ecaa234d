"""BudgetPoolClient: the typed Python face of ``BudgetPool.sol``.

The pool is a treasury that spends only through its token's Escrow, within limits it
enforces itself: per agent a per-transaction limit and a limit per window (windows on a
grid anchored at the Unix epoch), a cap on net spend, and a pause. Operators (the
coordinator's key) may spend for any agent but never past those limits.

Every call validates its input first (ints, not floats; amounts in range; checksummed
addresses) and raises :class:`~escrowkit.errors.InvalidRequest` before anything is sent.
State-changing calls wait for the receipt and return it; :meth:`BudgetPoolClient.spend`
returns the new escrow's id as an :class:`~escrowkit.escrow.EscrowId` whose ``.receipt``
is the receipt. Reverts raise the :class:`~escrowkit.errors.ContractRevert` subclass named
after the Solidity error (``errors.PeriodLimitExceeded`` ...).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from escrowkit.build.compiler import load_artifact
from escrowkit.contracts.escrow import EscrowId
from escrowkit.core.addresses import ZERO_ADDRESS, to_address
from escrowkit.core.drive import run_sync
from escrowkit.core.errors import ConfigurationError, ContractRevert, InvalidRequest
from escrowkit.core.inputs import bytes32, int_in_range, metadata32
from escrowkit.core.units import (
    MAX_UINT32,
    MAX_UINT40,
    MAX_UINT96,
    MAX_UINT128,
    MAX_UINT256,
    check_amount,
)

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress
    from web3.contract import Contract
    from web3.types import TxReceipt

    from escrowkit.contracts.deploy import Deployments
    from escrowkit.evm.chain import Chain

__all__ = ["UNLIMITED_BUDGET_CAP", "AgentLimits", "BudgetPoolClient", "PoolSpend"]

logger = logging.getLogger(__name__)

#: ``budget_cap()`` when no cap is set (the contract stores caps in 128 bits).
UNLIMITED_BUDGET_CAP = MAX_UINT128


@dataclass(frozen=True)
class AgentLimits:
    """An agent's on-chain limits and its usage of the current window.

    ``period == 0`` means the address is not an agent of the pool. ``window_start`` and
    ``window_spent`` are those of the window a spend made now would count in: a window
    that has ended reads as its successor, with nothing spent.
    """

    per_tx_limit: int
    period_limit: int
    period: int
    window_start: int
    window_spent: int

    @property
    def is_agent(self) -> bool:
        """Whether the address may spend (it has limits set)."""
        return self.period != 0

    @property
    def window_remaining(self) -> int:
        """What the agent may still spend in the current window."""
        return max(self.period_limit - self.window_spent, 0)

    @property
    def window_end(self) -> int:
        """When the current window ends (the next one starts); 0 for a non-agent."""
        return self.window_start + self.period if self.period else 0


@dataclass(frozen=True)
class PoolSpend:
    """What the pool remembers about an escrow it funded."""

    agent: ChecksumAddress
    window_start: int
    refunded: bool


class BudgetPoolClient:
    """A ``BudgetPool`` at ``address``. Amounts are int base units of the pool's token."""

    def __init__(self, chain: Chain, address: str, *, abi: list[dict[str, Any]] | None = None):
        self.chain = chain
        self.address: ChecksumAddress = to_address(address, name="pool address")
        self.contract: Contract = chain.contract(
            self.address, abi or load_artifact("BudgetPool").abi
        )

    def __repr__(self) -> str:
        return f"BudgetPoolClient({self.address})"

    @classmethod
    def deploy(
        cls,
        chain: Chain,
        escrow: str,
        *,
        owner: str | None = None,
        sender: str | None = None,
        deployments: Deployments | None = None,
        force: bool = False,
    ) -> BudgetPoolClient:
        """Deploy a pool over the Escrow at ``escrow`` (the pool's token is the Escrow's).

        ``sender`` (default ``chain.accounts[0]``) pays for the deployment; ``owner``
        (default ``sender``) owns the pool and is its guardian until one is set. With a
        ``deployments`` manifest, a pool already deployed with the same arguments is reused
        unless ``force``.
        """
        from escrowkit.contracts.deploy import deploy

        escrow_address = to_address(escrow, name="escrow address")
        if sender is None:
            if not chain.accounts:
                raise ConfigurationError(
                    "this chain has no signing account; pass sender= to BudgetPoolClient.deploy"
                )
            sender = chain.accounts[0]
        sender = to_address(sender, name="sender")
        owner_address = to_address(owner, name="owner") if owner is not None else sender
        contract = deploy(
            chain,
            "BudgetPool",
            escrow_address,
            owner_address,
            sender=sender,
            deployments=deployments,
            force=force,
        )
        return cls(chain, str(contract.address))

    # ---- views: roles --------------------------------------------------------------------

    @cached_property
    def escrow_address(self) -> ChecksumAddress:
        """The Escrow every spend goes through."""
        return to_address(self._call("escrow"))

    @cached_property
    def token_address(self) -> ChecksumAddress:
        """The pool's token (the Escrow's token)."""
        return to_address(self._call("token"))

    def owner(self) -> ChecksumAddress:
        """The owner (sets limits, operators, guardian and cap; withdraws; unpauses)."""
        return to_address(self._call("owner"))

    def pending_owner(self) -> ChecksumAddress | None:
        """The account that may :meth:`accept_ownership`, or None."""
        return _address_or_none(self._call("pendingOwner"))

    def guardian(self) -> ChecksumAddress:
        """Who may pause besides the owner (the owner itself unless one was set)."""
        return to_address(self._call("guardian"))

    def is_operator(self, addr: str) -> bool:
        """Whether ``addr`` may spend for any agent."""
        return bool(self._call("isOperator", to_address(addr, name="operator")))

    def paused(self) -> bool:
        """Whether spending is paused (settle, cancel, reconcile and yield still work)."""
        return bool(self._call("paused"))

    # ---- views: budget -------------------------------------------------------------------

    def budget_cap(self) -> int:
        """The cap on net spend; :data:`UNLIMITED_BUDGET_CAP` when none is set."""
        return int(self._call("budgetCap"))

    def net_spent(self) -> int:
        """Spent and not refunded, over all agents, since deployment."""
        return int(self._call("netSpent"))

    def agent(self, addr: str) -> AgentLimits:
        """``addr``'s limits and current-window usage (all zero when it is no agent)."""
        result = self._call("agent", to_address(addr, name="agent"))
        return AgentLimits(*(int(v) for v in result))

    def agent_of(self, escrow_id: bytes | str) -> ChecksumAddress | None:
        """The agent the pool funded escrow ``escrow_id`` for, or None if it did not fund it."""
        return _address_or_none(self._call("agentOf", EscrowId(escrow_id)))

    def spend_record(self, escrow_id: bytes | str) -> PoolSpend | None:
        """The pool's record of escrow ``escrow_id``, or None if the pool did not fund it."""
        agent, window_start, refunded = self._call("spendOf", EscrowId(escrow_id))
        if int(agent, 16) == 0:
            return None
        return PoolSpend(to_address(agent), int(window_start), bool(refunded))

    def escrow_id(self, agent: str, salt: bytes | str) -> EscrowId:
        """The Escrow id of ``spend(agent, ..., salt=salt)``, computed locally.

        The pool is the Escrow requester and namespaces the salt by agent:
        ``keccak256(abi.encode(pool, keccak256(abi.encode(agent, salt))))``.
        """
        from eth_utils.crypto import keccak

        agent_word = bytes(12) + bytes.fromhex(to_address(agent, name="agent")[2:])
        escrow_salt = keccak(agent_word + bytes32(salt, name="salt"))
        return EscrowId(keccak(bytes(12) + bytes.fromhex(self.address[2:]) + escrow_salt))

    # ---- views: balances and yield -------------------------------------------------------

    def spendable(self) -> int:
        """Token balance minus distributed-but-unclaimed yield: what spend and withdraw may use."""
        return int(self._call("spendable"))

    def unclaimed_yield(self) -> int:
        """Yield distributed and not yet claimed (held for members, never spent)."""
        return int(self._call("unclaimedYield"))

    def total_distributed(self) -> int:
        """All yield ever distributed."""
        return int(self._call("totalDistributed"))

    def total_contributions(self) -> int:
        """Sum of all contributions."""
        return int(self._call("totalContributions"))

    def contribution_of(self, member: str) -> int:
        """What ``member`` has contributed."""
        return int(self._call("contributionOf", to_address(member, name="member")))

    def claimable(self, member: str) -> int:
        """The yield ``member`` can :meth:`claim` now."""
        return int(self._call("claimable", to_address(member, name="member")))

    # ---- admin (owner) -------------------------------------------------------------------

    def set_agent(
        self, agent: str, per_tx_limit: int, period_limit: int, period: int, sender: str
    ) -> TxReceipt:
        """Add ``agent`` or change its limits; ``period`` in seconds (86_400: UTC days)."""
        agent_address = to_address(agent, name="agent")
        check_amount(per_tx_limit, name="per_tx_limit", maximum=MAX_UINT96)
        check_amount(period_limit, name="period_limit", maximum=MAX_UINT96)
        int_in_range(period, "period", 1, MAX_UINT32)
        return self._transact(
            "setAgent", agent_address, per_tx_limit, period_limit, period, sender=sender
        )

    def remove_agent(self, agent: str, sender: str) -> TxReceipt:
        """Remove ``agent``: it can no longer spend (its escrows stay manageable)."""
        return self._transact("removeAgent", to_address(agent, name="agent"), sender=sender)

    def set_operator(self, addr: str, enabled: bool, sender: str) -> TxReceipt:
        """Let ``addr`` spend for any agent (within the limits), or stop it."""
        if not isinstance(enabled, bool):
            raise InvalidRequest(f"enabled must be a bool, not {type(enabled).__name__}")
        return self._transact(
            "setOperator", to_address(addr, name="operator"), enabled, sender=sender
        )

    def set_guardian(self, addr: str | None, sender: str) -> TxReceipt:
        """Set who may pause besides the owner; None makes the owner the guardian again."""
        guardian = ZERO_ADDRESS if addr is None else to_address(addr, name="guardian")
        return self._transact("setGuardian", guardian, sender=sender)

    def set_budget_cap(self, cap: int | None, sender: str) -> TxReceipt:
        """Cap net spend at ``cap`` base units; None (or ``UNLIMITED_BUDGET_CAP``) removes it."""
        value = UNLIMITED_BUDGET_CAP if cap is None else cap
        check_amount(value, name="cap", allow_zero=True, maximum=MAX_UINT256)
        return self._transact("setBudgetCap", value, sender=sender)

    def transfer_ownership(self, new_owner: str | None, sender: str) -> TxReceipt:
        """Offer ownership to ``new_owner`` (who must :meth:`accept_ownership`); None cancels."""
        target = ZERO_ADDRESS if new_owner is None else to_address(new_owner, name="new owner")
        return self._transact("transferOwnership", target, sender=sender)

    def accept_ownership(self, sender: str) -> TxReceipt:
        """Take ownership offered to ``sender``."""
        return self._transact("acceptOwnership", sender=sender)

    def pause(self, sender: str) -> TxReceipt:
        """Stop spending (owner or guardian). Settle, cancel, reconcile and yield still work."""
        return self._transact("pause", sender=sender)

    def unpause(self, sender: str) -> TxReceipt:
        """Resume spending (owner only: a guardian can stop, never restart)."""
        return self._transact("unpause", sender=sender)

    def withdraw(self, to: str, amount: int, sender: str) -> TxReceipt:
        """Send ``amount`` of the spendable balance to ``to`` (owner only)."""
        target = to_address(to, name="to")
        check_amount(amount, maximum=MAX_UINT256)
        return self._transact("withdraw", target, amount, sender=sender)

    # ---- spending ------------------------------------------------------------------------

    def spend(
        self,
        agent: str,
        provider: str,
        amount: int,
        *,
        deadline: int,
        dispute_window: int,
        metadata: bytes = b"",
        salt: bytes | str | None = None,
        sender: str,
    ) -> EscrowId:
        """Fund an escrow of ``amount`` to ``provider`` for ``agent``, within its limits.

        ``sender`` is the agent itself or an operator. ``deadline`` is an absolute chain
        timestamp, ``dispute_window`` seconds after it. ``salt`` (32 bytes; random when
        None) makes the id predictable: see :meth:`escrow_id`. Returns the escrow's id.
        The blocking form of :meth:`aspend` (the same code).
        """
        return run_sync(
            self.aspend(
                agent,
                provider,
                amount,
                deadline=deadline,
                dispute_window=dispute_window,
                metadata=metadata,
                salt=salt,
                sender=sender,
            )
        )

    async def aspend(
        self,
        agent: str,
        provider: str,
        amount: int,
        *,
        deadline: int,
        dispute_window: int,
        metadata: bytes = b"",
        salt: bytes | str | None = None,
        sender: str,
    ) -> EscrowId:
        """:meth:`spend` as a coroutine (no thread held while the block is awaited)."""
        agent_address = to_address(agent, name="agent")
        provider_address = to_address(provider, name="provider")
        check_amount(amount)
        int_in_range(deadline, "deadline", 1, MAX_UINT40)
        int_in_range(dispute_window, "dispute_window", 0, MAX_UINT32)
        meta = metadata32(metadata)
        salt_bytes = secrets.token_bytes(32) if salt is None else bytes32(salt, name="salt")
        fn = self.chain.prepare(
            self.contract,
            "spend",
            agent_address,
            salt_bytes,
            provider_address,
            amount,
            deadline,
            dispute_window,
            meta,
        )
        receipt = await self.chain.atransact(fn, sender=sender, context="BudgetPool.spend")
        escrow_id = EscrowId(self.escrow_id(agent_address, salt_bytes), receipt)
        logger.info(
            "pool %s spent %d for %s: escrow %s", self.address, amount, agent_address, escrow_id
        )
        return escrow_id

    def fence(self, agent: str, salt: bytes | str, sender: str) -> EscrowId:
        """Make the escrow id of ``spend(agent, ..., salt=salt)`` unusable: the pool creates
        it (amount 1, nothing funded) and cancels it at once, so a spend with that salt can
        never be funded. ``sender``: an operator or the owner. Returns the fenced id.

        Crash recovery uses it before giving up on a reservation whose escrow does not
        exist: a paused spender that wakes up later then fails instead of spending."""
        agent_address = to_address(agent, name="agent")
        salt_bytes = bytes32(salt, name="salt")
        receipt = self._transact("fence", agent_address, salt_bytes, sender=sender)
        escrow_id = EscrowId(self.escrow_id(agent_address, salt_bytes), receipt)
        logger.info("pool %s fenced escrow %s of %s", self.address, escrow_id, agent_address)
        return escrow_id

    def settle(self, id: bytes | str, sender: str) -> TxReceipt:
        """Release escrow ``id`` to its provider (its agent, an operator or the owner)."""
        return self._transact("settle", EscrowId(id), sender=sender)

    def cancel(self, id: bytes | str, sender: str) -> TxReceipt:
        """Cancel escrow ``id`` under Escrow's requester rules and credit it back."""
        return self._transact("cancel", EscrowId(id), sender=sender)

    def reconcile(self, id: bytes | str, sender: str) -> TxReceipt:
        """Credit back escrow ``id`` that its provider cancelled on the Escrow (once; anyone)."""
        return self._transact("reconcile", EscrowId(id), sender=sender)

    def reconcile_many(
        self, ids: Sequence[bytes | str], sender: str
    ) -> list[TxReceipt | ContractRevert]:
        """:meth:`reconcile` for several escrows, sent together and waited for together
        (one block for all, not one each); per escrow its receipt or its revert."""
        fns = [self.chain.prepare(self.contract, "reconcile", EscrowId(id)) for id in ids]
        return self.chain.transact_many(fns, sender=sender, context="BudgetPool.reconcile")

    def pull_owed(self, sender: str) -> TxReceipt:
        """Pull refunds the Escrow could not push to the pool (and holds as owed to it)."""
        return self._transact("pullOwed", sender=sender)

    # ---- yield ---------------------------------------------------------------------------

    def contribute(self, amount: int, sender: str) -> TxReceipt:
        """Add ``amount`` from ``sender`` to the pool and to its contribution (approve first)."""
        check_amount(amount, maximum=MAX_UINT128)
        return self._transact("contribute", amount, sender=sender)

    def distribute(self, amount: int, sender: str) -> TxReceipt:
        """Pull ``amount`` of yield from ``sender`` and share it pro rata to contributions."""
        check_amount(amount, maximum=MAX_UINT128)
        return self._transact("distribute", amount, sender=sender)

    def claim(self, sender: str) -> TxReceipt:
        """Send ``sender`` the yield it can claim."""
        return self._transact("claim", sender=sender)

    # ---- internals -----------------------------------------------------------------------

    def _call(self, name: str, *args: Any) -> Any:
        fn = getattr(self.contract.functions, name)(*args)
        return self.chain.call(fn, context=f"BudgetPool.{name}")

    def _transact(self, function: str, *args: Any, sender: str) -> TxReceipt:
        fn = self.chain.prepare(self.contract, function, *args)
        return self.chain.transact(fn, sender=sender, context=f"BudgetPool.{function}")


def _address_or_none(value: str) -> ChecksumAddress | None:
    return None if int(value, 16) == 0 else to_address(value)
