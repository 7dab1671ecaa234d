"""EscrowClient: typed calls to one deployed ``Escrow`` (contracts/Escrow.sol).

Every state-changing call validates its input first (:class:`~escrowkit.errors.InvalidRequest`,
nothing sent), then goes through :meth:`Chain.transact <escrowkit.chain.Chain.transact>`:
it waits for the receipt and returns it, and a revert raises the exception named after the
Solidity error (``errors.InvalidState``, ``errors.TooEarly``...). A call that creates an
escrow returns its :class:`EscrowId`, whose ``.receipt`` is that receipt::

    escrow = EscrowClient.deploy(chain, usdc.address)
    eid = escrow.create_and_fund(provider, 25_000_000, deadline=chain.now() + 86_400,
                                 dispute_window=3_600, sender=alice)
    escrow.settle(eid, sender=alice)
    assert escrow.get(eid).state is EscrowState.SETTLED

Ids are ``keccak256(abi.encode(requester, salt))``: :meth:`EscrowClient.escrow_id` computes
them locally, so a caller who keeps its salt can find its escrow again after a crash.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from escrowkit.build.compiler import load_artifact
from escrowkit.contracts.escrow_events import (
    EVENT_TYPES,
    EscrowCancelled,
    EscrowCreated,
    EscrowEvent,
    EscrowFunded,
    EscrowId,
    EscrowSettled,
    PaymentDeferred,
    decode_event,
)
from escrowkit.core.addresses import ZERO_ADDRESS, checksum, to_address
from escrowkit.core.drive import run_sync
from escrowkit.core.errors import ChainError, InvalidRequest
from escrowkit.core.escrow_state import EscrowState
from escrowkit.core.inputs import bytes32, int_in_range, metadata32
from escrowkit.core.units import MAX_UINT32, MAX_UINT40, check_amount

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress
    from web3.contract import Contract
    from web3.types import LogReceipt, TxReceipt

    from escrowkit.contracts.deploy import Deployments
    from escrowkit.evm.chain import Chain

__all__ = [
    "MAX_FEE_BPS",
    "NEVER",
    "EscrowCancelled",
    "EscrowClient",
    "EscrowCreated",
    "EscrowEvent",
    "EscrowFunded",
    "EscrowId",
    "EscrowRecord",
    "EscrowSettled",
    "EscrowState",
    "PaymentDeferred",
]

logger = logging.getLogger(__name__)

#: The highest fee an Escrow deployment accepts (5 %).
MAX_FEE_BPS = 500
#: A ``dispute_window`` that never ends: the provider can never settle alone.
NEVER = MAX_UINT32
_BPS = 10_000


@dataclass(frozen=True)
class EscrowRecord:
    """An escrow as stored on chain (``getEscrow``). A missing id has state NONE, zeros."""

    id: EscrowId
    requester: ChecksumAddress
    provider: ChecksumAddress
    amount: int
    deadline: int
    dispute_window: int
    state: EscrowState

    @property
    def exists(self) -> bool:
        return self.state is not EscrowState.NONE

    @property
    def release_at(self) -> int | None:
        """When the provider may settle alone (``deadline + dispute_window``); None if never."""
        if self.dispute_window == NEVER:
            return None
        return self.deadline + self.dispute_window


# --------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------


class EscrowClient:
    """One deployed Escrow. Amounts are int base units, times UTC seconds (chain time).

    ``from_block`` is where :meth:`history` starts looking for events (the deployment block
    when the client comes from :meth:`deploy`).
    """

    def __init__(self, chain: Chain, address: str, *, from_block: int = 0) -> None:
        self.chain = chain
        self.address: ChecksumAddress = to_address(address, name="escrow address")
        self.contract: Contract = chain.contract(self.address, load_artifact("Escrow").abi)
        self.from_block = from_block

    def __repr__(self) -> str:
        return f"EscrowClient({self.address})"

    @classmethod
    def deploy(
        cls,
        chain: Chain,
        token: str,
        *,
        fee_bps: int = 0,
        fee_recipient: str | None = None,
        sender: str | None = None,
        deployments: Deployments | None = None,
        force: bool = False,
    ) -> EscrowClient:
        """Deploy an Escrow for ``token`` (or reuse the one in ``deployments`` unless
        ``force``).

        ``fee_bps`` (0..500) of every settled amount goes to ``fee_recipient``, which is
        required exactly when ``fee_bps`` is not 0. Both are immutable.
        """
        from escrowkit.contracts.deploy import deploy

        token_address = to_address(token, name="token")
        fee = int_in_range(fee_bps, "fee_bps", 0, MAX_FEE_BPS)
        recipient = (
            None if fee_recipient is None else to_address(fee_recipient, name="fee_recipient")
        )
        if fee and recipient is None:
            raise InvalidRequest(f"fee_bps={fee} needs a fee_recipient")
        if not fee and recipient is not None:
            raise InvalidRequest("fee_recipient given with fee_bps=0: set a fee or drop it")
        start = chain.block_number()
        contract = deploy(
            chain,
            "Escrow",
            token_address,
            fee,
            recipient or ZERO_ADDRESS,
            sender=sender,
            deployments=deployments,
            force=force,
        )
        entry = deployments.get("Escrow") if deployments is not None else None
        from_block = entry.block if entry and entry.address == contract.address else start
        return cls(chain, str(contract.address), from_block=from_block)

    # ---- immutable configuration -------------------------------------------------------

    @cached_property
    def token(self) -> ChecksumAddress:
        """The ERC-20 this escrow holds."""
        return to_address(self._call("token"), name="token")

    @cached_property
    def fee_bps(self) -> int:
        """The fee taken at settle, in basis points (0..500)."""
        return int(self._call("feeBps"))

    @cached_property
    def fee_recipient(self) -> ChecksumAddress | None:
        """Who receives the fee; None when the escrow charges none."""
        address = str(self._call("feeRecipient"))
        return None if int(address, 16) == 0 else to_address(address, name="fee_recipient")

    def fee_for(self, amount: int) -> int:
        """The fee settling ``amount`` takes (rounded down, as the contract does)."""
        return check_amount(amount) * self.fee_bps // _BPS

    # ---- reads -------------------------------------------------------------------------

    def escrow_id(self, requester: str, salt: bytes | str) -> EscrowId:
        """The id ``requester`` gets with ``salt``: ``keccak256(abi.encode(requester, salt))``."""
        from eth_utils.crypto import keccak

        address = to_address(requester, name="requester")
        raw_salt = bytes32(salt, name="salt")
        return EscrowId(keccak(bytes(12) + bytes.fromhex(address[2:]) + raw_salt))

    def get(self, escrow_id: bytes | str) -> EscrowRecord:
        """The escrow's record; state NONE (and zeros) when no such escrow exists."""
        eid = EscrowId(escrow_id)
        requester, amount, provider, deadline, window, state = self._call("getEscrow", eid)
        return EscrowRecord(
            id=eid,
            requester=checksum(requester),
            provider=checksum(provider),
            amount=int(amount),
            deadline=int(deadline),
            dispute_window=int(window),
            state=EscrowState(state),
        )

    def owed(self, account: str) -> int:
        """What the escrow owes ``account`` because a payment to it could not be pushed."""
        return int(self._call("owed", to_address(account, name="account")))

    def history(self, escrow_id: bytes | str) -> list[EscrowEvent]:
        """The escrow's events in chain order, decoded into typed frozen dataclasses."""
        eid = EscrowId(escrow_id)
        events = self.contract.events
        topics = [events[name]().topic for name in EVENT_TYPES]
        params: dict[str, Any] = {
            "address": self.address,
            "fromBlock": self.from_block,
            "toBlock": "latest",
            "topics": [topics, eid.to_0x_hex()],
        }
        try:
            logs: list[LogReceipt] = self.chain.w3.eth.get_logs(params)  # type: ignore[arg-type]
        except Exception as exc:
            raise ChainError(f"reading the events of escrow {eid} failed: {exc}") from exc
        by_topic = {str(events[name]().topic): name for name in EVENT_TYPES}
        decoded = []
        for log in sorted(logs, key=lambda lg: (int(lg["blockNumber"]), int(lg["logIndex"]))):
            name = by_topic[log["topics"][0].to_0x_hex()]
            decoded.append(decode_event(EVENT_TYPES[name], events[name]().process_log(log)))
        return decoded

    def final_states(
        self, from_block: int, to_block: int, *, chunk: int = 5_000
    ) -> dict[EscrowId, EscrowState]:
        """Escrows that became SETTLED or CANCELLED in blocks ``[from_block, to_block]``,
        read from their events (one ``eth_getLogs`` per ``chunk`` blocks, as nodes cap the
        range): what changed, without reading every escrow. Later events win."""
        events = self.contract.events
        final = {
            str(events.EscrowSettled().topic): EscrowState.SETTLED,
            str(events.EscrowCancelled().topic): EscrowState.CANCELLED,
        }
        found: dict[EscrowId, EscrowState] = {}
        start = max(from_block, 0)
        while start <= to_block:
            end = min(start + chunk - 1, to_block)
            params: dict[str, Any] = {
                "address": self.address,
                "fromBlock": start,
                "toBlock": end,
                "topics": [list(final)],
            }
            try:
                logs: list[LogReceipt] = self.chain.w3.eth.get_logs(params)  # type: ignore[arg-type]
            except Exception as exc:
                raise ChainError(f"reading Escrow events {start}..{end} failed: {exc}") from exc
            for log in sorted(logs, key=lambda lg: (int(lg["blockNumber"]), int(lg["logIndex"]))):
                topics = log["topics"]
                found[EscrowId(bytes(topics[1]))] = final[topics[0].to_0x_hex()]
            start = end + 1
        return found

    # ---- actions -----------------------------------------------------------------------

    def create(
        self,
        provider: str,
        amount: int,
        *,
        deadline: int,
        dispute_window: int,
        metadata: bytes = b"",
        salt: bytes | str | None = None,
        sender: str,
    ) -> EscrowId:
        """Record an escrow (INITIATED; no tokens move). ``sender`` is the requester.

        ``deadline`` is an absolute chain timestamp before which :meth:`fund` must happen;
        ``dispute_window`` the seconds after it before the provider may settle alone
        (:data:`NEVER` for never). ``metadata`` (up to 32 bytes) is emitted, not stored.
        ``salt`` (32 bytes) picks the id; None draws a random one.
        """
        args = self._create_args(provider, amount, deadline, dispute_window, metadata, salt, sender)
        return self._create("create", args, sender)

    def create_and_fund(
        self,
        provider: str,
        amount: int,
        *,
        deadline: int,
        dispute_window: int,
        metadata: bytes = b"",
        salt: bytes | str | None = None,
        sender: str,
    ) -> EscrowId:
        """:meth:`create` and :meth:`fund` in one transaction: the escrow starts FUNDED.

        ``sender`` must have approved this escrow for ``amount`` on the token. The
        blocking form of :meth:`acreate_and_fund` (the same code).
        """
        return run_sync(
            self.acreate_and_fund(
                provider,
                amount,
                deadline=deadline,
                dispute_window=dispute_window,
                metadata=metadata,
                salt=salt,
                sender=sender,
            )
        )

    async def acreate_and_fund(
        self,
        provider: str,
        amount: int,
        *,
        deadline: int,
        dispute_window: int,
        metadata: bytes = b"",
        salt: bytes | str | None = None,
        sender: str,
    ) -> EscrowId:
        """:meth:`create_and_fund` as a coroutine: many can wait for their blocks at once
        without a thread each (see :meth:`Chain.atransact
        <escrowkit.evm.chain.Chain.atransact>`)."""
        args = self._create_args(provider, amount, deadline, dispute_window, metadata, salt, sender)
        requester = to_address(sender, name="sender")
        fn = self.chain.prepare(self.contract, "createAndFund", *args)
        receipt = await self.chain.atransact(fn, sender=requester, context="Escrow.createAndFund")
        return self._created("createAndFund", args, requester, receipt)

    def fund(self, escrow_id: bytes | str, sender: str) -> TxReceipt:
        """Pull the escrow's amount from its requester (``sender``) before the deadline."""
        return self._transact("fund", EscrowId(escrow_id), sender=sender)

    def settle(self, escrow_id: bytes | str, sender: str) -> TxReceipt:
        """Pay the provider (less the fee): the requester any time, the provider after
        ``deadline + dispute_window``."""
        return self._transact("settle", EscrowId(escrow_id), sender=sender)

    def cancel(self, escrow_id: bytes | str, sender: str) -> TxReceipt:
        """Cancel: INITIATED by either party; FUNDED by the provider any time, or by the
        requester from the deadline until the dispute window ends (full refund)."""
        return self._transact("cancel", EscrowId(escrow_id), sender=sender)

    def withdraw_owed(self, to: str, sender: str) -> TxReceipt:
        """Send everything owed to ``sender`` to ``to`` (any address the token accepts,
        except the escrow itself)."""
        target = to_address(to, name="to")
        if target == self.address:
            raise InvalidRequest(f"to {target} is the escrow itself: the tokens would be locked")
        return self._transact("withdrawOwed", target, sender=sender)

    # ---- internals ---------------------------------------------------------------------

    def _create_args(
        self,
        provider: str,
        amount: int,
        deadline: int,
        dispute_window: int,
        metadata: bytes,
        salt: bytes | str | None,
        sender: str,
    ) -> tuple[bytes, ChecksumAddress, int, int, int, bytes]:
        requester = to_address(sender, name="sender")
        provider_address = to_address(provider, name="provider")
        if provider_address == requester:
            raise InvalidRequest(f"provider {provider_address} is the requester itself")
        if provider_address == self.address:
            raise InvalidRequest(
                f"provider {provider_address} is the escrow itself (it could never withdraw)"
            )
        return (
            secrets.token_bytes(32) if salt is None else bytes32(salt, name="salt"),
            provider_address,
            check_amount(amount),
            int_in_range(deadline, "deadline", 1, MAX_UINT40),
            int_in_range(dispute_window, "dispute_window", 0, MAX_UINT32),
            metadata32(metadata),
        )

    def _create(
        self,
        function: str,
        args: tuple[bytes, ChecksumAddress, int, int, int, bytes],
        sender: str,
    ) -> EscrowId:
        requester = to_address(sender, name="sender")
        receipt = self._transact(function, *args, sender=requester)
        return self._created(function, args, requester, receipt)

    def _created(
        self,
        function: str,
        args: tuple[bytes, ChecksumAddress, int, int, int, bytes],
        requester: ChecksumAddress,
        receipt: TxReceipt,
    ) -> EscrowId:
        eid = EscrowId(self.escrow_id(requester, args[0]), receipt)
        logger.info("%s %s: %s -> %s, amount %d", function, eid, requester, args[1], args[2])
        return eid

    def _call(self, function: str, *args: Any) -> Any:
        return self.chain.call(
            self.contract.functions[function](*args), context=f"Escrow.{function}"
        )

    def _transact(self, function: str, *args: Any, sender: str) -> TxReceipt:
        fn = self.chain.prepare(self.contract, function, *args)
        return self.chain.transact(
            fn, sender=to_address(sender, name="sender"), context=f"Escrow.{function}"
        )
