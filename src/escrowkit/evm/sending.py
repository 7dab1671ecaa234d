"""The transaction pipeline of a :class:`~escrowkit.evm.chain.Chain`, mixed into it.

``submit`` builds a transaction (fees read at most once a second), estimates its gas (a
revert surfaces here, named, before anything is sent; on eth-tester the transport runs the
transaction once instead, see :mod:`escrowkit.evm.embedded`), takes the sender's next nonce
from its nonce source, signs and sends, and returns a
:class:`~escrowkit.evm.pending.PendingTransaction` as soon as the node accepted it: the
nonce lock is held that long, not until the block. The receipt comes from the chain's one
:class:`~escrowkit.evm.watcher.ReceiptWatcher`.

``atransact`` is submit plus the wait, as a coroutine; ``transact`` is the same coroutine
run to its end in the caller's thread (:func:`escrowkit.core.drive.run_sync`), so blocking
and asyncio callers take one path.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from escrowkit.core.addresses import to_address
from escrowkit.core.drive import offload, run_sync
from escrowkit.core.errors import ChainError, ContractRevert, NonceConflict, TransactionTimeout
from escrowkit.evm.nonces import NonceManager, NonceSource
from escrowkit.evm.pending import PendingTransaction
from escrowkit.evm.prepared import describe_call, encode_call
from escrowkit.evm.reverts import revert_from_exception, translate, translated
from escrowkit.evm.transports import is_nonce_conflict, with_buffer

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from eth_typing import ChecksumAddress
    from web3 import Web3
    from web3.types import TxReceipt

    from escrowkit.evm.miner import DemandMiner
    from escrowkit.evm.transports import Transport
    from escrowkit.evm.watcher import ReceiptWatcher

__all__ = ["Fees", "Sending"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fees:
    """EIP-1559 fees for the next transactions, and when they were read."""

    max_fee: int
    priority: int
    read_at: float


class Sending:
    """Submit, send and wait; mixed into Chain, which provides what is declared here."""

    w3: Web3
    transport: Transport
    chain_id: int
    receipt_timeout: float
    nonces: NonceManager
    watcher: ReceiptWatcher
    miner: DemandMiner | None
    _nonce_sources: dict[str, NonceSource]
    _fees: Fees | None
    _fees_lock: threading.Lock
    _pinned: int | None

    def _signer(self, sender: str) -> LocalAccount:
        raise NotImplementedError

    def _latest_block(self) -> Any:
        raise NotImplementedError

    # ---- the pipeline ------------------------------------------------------------------

    def transact(
        self,
        fn: Any,
        *,
        sender: str,
        value: int = 0,
        gas: int | None = None,
        context: str | None = None,
    ) -> TxReceipt:
        """Sign, send and wait for ``fn`` (a bound contract function or constructor).

        Returns the successful receipt. Raises the named ContractRevert when the call
        would revert (before anything is sent, ``tx_hash`` None) or did revert (``tx_hash``
        set), :class:`TransactionTimeout` when no receipt comes in time, and ChainError for
        transport problems. The blocking form of :meth:`atransact` (the same code).
        """
        return run_sync(self.atransact(fn, sender=sender, value=value, gas=gas, context=context))

    async def atransact(
        self,
        fn: Any,
        *,
        sender: str,
        value: int = 0,
        gas: int | None = None,
        context: str | None = None,
    ) -> TxReceipt:
        """:meth:`transact` as a coroutine: the send runs in the event loop's thread pool
        (a few milliseconds); the wait for the block holds no thread at all."""
        submit = functools.partial(
            self.submit, fn, sender=sender, value=value, gas=gas, context=context
        )
        pending = await offload(submit)
        receipt = await pending.areceipt()
        logger.debug("%s: tx %s gas %s", pending.context, pending.tx_hash, receipt["gasUsed"])
        return receipt

    def submit(
        self,
        fn: Any,
        *,
        sender: str,
        value: int = 0,
        gas: int | None = None,
        context: str | None = None,
    ) -> PendingTransaction:
        """Build, estimate (a revert raises here, named), sign and send ``fn``; returns as
        soon as the node accepted it, the receipt still to come."""
        signer = self._signer(sender)
        context = context or describe_call(fn)
        tx = self._build_transaction(fn, signer.address, value, gas, context)
        once = gas is None and self.transport.executes_on_send
        if gas is None and not once:
            tx["gas"] = self._estimate_gas(tx, context)
        tx_hash = self._send(signer, tx, context, once=once)
        self._pinned = None  # this transaction takes the pinned block
        future = self._receipt_future(tx_hash)
        return PendingTransaction(
            tx_hash, tx, context, future, self.receipt_timeout, self.w3, self.watcher
        )

    def transact_many(
        self, fns: Sequence[Any], *, sender: str, context: str | None = None
    ) -> list[TxReceipt | ContractRevert]:
        """Send every call of ``fns`` from ``sender``, then wait for all of them (they
        share blocks instead of waiting one block each). Each entry is the successful
        receipt or the call's named revert (at estimation or mined); anything else
        raises once every sent transaction is waited for."""
        submitted: list[PendingTransaction | ContractRevert] = []
        for fn in fns:
            try:
                submitted.append(self.submit(fn, sender=sender, context=context))
            except ContractRevert as exc:
                submitted.append(exc)
        out: list[TxReceipt | ContractRevert] = []
        failure: Exception | None = None
        for item in submitted:
            if isinstance(item, ContractRevert):
                out.append(item)
                continue
            try:
                out.append(item.receipt())
            except ContractRevert as exc:
                out.append(exc)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return out

    def wait_for_receipt(self, tx_hash: str, timeout: float | None = None) -> TxReceipt:
        """Wait (through the receipt watcher) for any receipt of ``tx_hash``;
        :class:`TransactionTimeout` (with the hash) if none comes."""
        wait = self.receipt_timeout if timeout is None else timeout
        future = self._receipt_future(tx_hash)
        try:
            return future.result(timeout=wait)
        except concurrent.futures.TimeoutError:
            self.watcher.discard(tx_hash, future)
            raise TransactionTimeout(tx_hash, wait) from None

    def _receipt_future(self, tx_hash: str) -> concurrent.futures.Future[TxReceipt]:
        if self.transport.executes_on_send:
            # Mined as it was sent: the receipt is there (unless auto-mining is off).
            receipt = self.transport.get_receipt(tx_hash)
            if receipt is not None:
                done: concurrent.futures.Future[TxReceipt] = concurrent.futures.Future()
                done.set_result(receipt)
                return done
        return self.watcher.watch(tx_hash)

    def _build_transaction(
        self, fn: Any, sender: str, value: int, gas: int | None, context: str
    ) -> dict[str, Any]:
        """``fn`` as a transaction from ``sender``, fees included; gas (when not given)
        and nonce are filled in later."""
        fees = self._current_fees()
        tx: dict[str, Any] = {
            "from": sender,
            "value": value,
            "chainId": self.chain_id,
            "gas": gas or 0,
            "maxFeePerGas": fees.max_fee,
            "maxPriorityFeePerGas": fees.priority,
            "nonce": 0,  # filled in by the sender's nonce source
        }
        data = encode_call(fn)
        if data is not None:
            tx.update(to=fn.address, data=data)
            return tx
        try:
            # Every field is given, so web3 asks the node nothing: it only encodes.
            return dict(fn.build_transaction(tx))
        except Exception as exc:
            raise translate(exc, context=context) from None

    def _estimate_gas(self, tx: dict[str, Any], context: str) -> int:
        """Gas for ``tx`` with a buffer; a revert surfaces here, named, before any send."""
        call: dict[str, Any] = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        # Judge the call on the latest block, or, while set_next_block_timestamp has pinned
        # the next block's timestamp, in that block (a deadline edge), with the tag the
        # transport knows for it. Not always "pending": on a node with block times that
        # block holds every transaction waiting for it, and anvil runs them all again for
        # each estimate (with 256 in flight, a fifth of the throughput).
        transport = self.transport
        block = transport.estimate_block
        if self._pinned is None and block is not None:
            block = "latest"
        estimate = transport.estimate_gas(call, block, context=context)
        return with_buffer(estimate)

    def _send(self, signer: LocalAccount, tx: dict[str, Any], context: str, *, once: bool) -> str:
        """Sign and send under the sender's nonce source; the tx hash once accepted."""
        sender = signer.address
        transport = self.transport

        def send(nonce: int) -> str:
            tx["nonce"] = nonce
            try:
                if once:
                    return transport.send_once(signer, tx, context=context)
                return transport.sign_and_send(signer, tx, context=context)
            except ChainError as exc:
                if is_nonce_conflict(exc):
                    raise NonceConflict(f"{context}: nonce {nonce}: {exc}") from exc
                raise

        try:
            tx_hash = self.nonce_source(sender).send(
                sender, send, functools.partial(self._pending_count, sender)
            )
        except Exception as exc:
            revert = revert_from_exception(exc, context=context)
            if revert is not None:
                raise revert from None
            raise
        if self.miner is not None:
            self.miner.poke()
        return tx_hash

    # ---- nonces ------------------------------------------------------------------------

    def nonce_source(self, sender: str) -> NonceSource:
        """Who allocates ``sender``'s nonces: the source set with :meth:`use_nonce_source`,
        else this chain's in-process :attr:`nonces`."""
        return self._nonce_sources.get(sender, self.nonces)

    def use_nonce_source(self, sender: str, source: NonceSource | None) -> None:
        """Allocate ``sender``'s nonces through ``source`` (None: back to the in-process
        manager), such as a ledger's, shared by every process that sends with the key."""
        address = to_address(sender, name="sender")
        if source is None:
            self._nonce_sources.pop(address, None)
        else:
            self._nonce_sources[address] = source

    def resync_nonces(self) -> None:
        """Forget every sender's next nonce, in every source (after a snapshot revert)."""
        self.nonces.resync()
        for source in self._nonce_sources.values():
            source.resync()

    def _pending_count(self, sender: str) -> int:
        checked = cast("ChecksumAddress", sender)
        return int(translated(lambda: self.w3.eth.get_transaction_count(checked, "pending")))

    # ---- fees --------------------------------------------------------------------------

    def _current_fees(self) -> Fees:
        # Base fee read at most once a second; twice it plus the tip survives six full
        # blocks of EIP-1559 increases, so a slightly stale read never underprices.
        cached = self._fees
        if cached is not None and time.monotonic() - cached.read_at < 1.0:
            return cached
        with self._fees_lock:
            cached = self._fees  # another thread may have refreshed while we waited
            if cached is not None and time.monotonic() - cached.read_at < 1.0:
                return cached
            block = self._latest_block()
            base_fee = int(block.get("baseFeePerGas", 0) or 0)
            try:
                priority = int(translated(lambda: self.w3.eth.max_priority_fee))
            except ChainError:
                priority = 10**9
            self._fees = Fees(2 * base_fee + priority, priority, time.monotonic())
            return self._fees
