"""A transaction the node has accepted, whose receipt is still to come.

:meth:`Chain.submit <escrowkit.evm.chain.Chain.submit>` returns a
:class:`PendingTransaction` as soon as the node took the signed transaction (the sender's
nonce lock is free again by then); its receipt comes from the chain's receipt watcher.
``pending.receipt()`` blocks for it, ``await pending`` waits without a thread: both check
the status the same way, and a transaction that was mined but failed raises its named
:class:`~escrowkit.errors.ContractRevert` (with ``tx_hash``), learnt by running it again
on the block before.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from escrowkit.core.drive import offload, run_sync, wait_for
from escrowkit.core.errors import ContractRevert, TransactionTimeout
from escrowkit.evm.reverts import revert_from_exception

if TYPE_CHECKING:
    from web3 import Web3
    from web3.types import TxReceipt

    from escrowkit.evm.watcher import ReceiptWatcher

__all__ = ["PendingTransaction", "replay_revert"]


@dataclass(frozen=True, eq=False)
class PendingTransaction:
    """An accepted transaction: ``tx_hash`` now, the receipt later (see the module)."""

    tx_hash: str
    tx: dict[str, Any]
    context: str
    future: concurrent.futures.Future[TxReceipt]
    timeout: float
    w3: Web3
    watcher: ReceiptWatcher | None

    def receipt(self) -> TxReceipt:
        """Block until mined; the successful receipt (see :meth:`areceipt`)."""
        return run_sync(self.areceipt())

    async def areceipt(self) -> TxReceipt:
        """The successful receipt. Raises the named ContractRevert when the transaction
        failed on-chain, :class:`~escrowkit.errors.TransactionTimeout` when no receipt came
        within the chain's ``receipt_timeout``."""
        try:
            receipt = await wait_for(self.future, self.timeout)
        except TimeoutError:
            if self.watcher is not None:
                self.watcher.discard(self.tx_hash, self.future)
            raise TransactionTimeout(self.tx_hash, self.timeout) from None
        if receipt["status"] != 1:
            raise await offload(
                replay_revert, self.w3, self.tx, receipt, self.tx_hash, self.context
            )
        return receipt

    def __await__(self) -> Generator[Any, None, TxReceipt]:
        return self.areceipt().__await__()


def replay_revert(
    w3: Web3, tx: dict[str, Any], receipt: TxReceipt, tx_hash: str, context: str
) -> ContractRevert:
    """A mined, failed transaction keeps no revert data: re-run it to learn why."""
    call = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}
    block = max(int(receipt["blockNumber"]) - 1, 0)
    try:
        w3.eth.call(call, block_identifier=block)  # type: ignore[arg-type]
    except Exception as exc:
        revert = revert_from_exception(exc, tx_hash=tx_hash, context=context)
        if revert is not None:
            return revert
    gas_note = " (out of gas?)" if receipt["gasUsed"] >= tx.get("gas", 0) else ""
    return ContractRevert(tx_hash=tx_hash, context=context + gas_note)
