"""Dev-chain controls of a :class:`~escrowkit.evm.chain.Chain`: snapshot and revert, time
and mining, for tests and simulations on eth-tester or anvil.

:class:`DevChain` is mixed into Chain. Each backend does these its own way (eth-tester
through its own API, a node through ``evm_*`` calls): the chain's transport decides.
What is checked here is the same on every backend, and so is what a control makes the
chain forget: the latest block it read, its fee estimate, its senders' next nonces, and
which blocks its receipt watcher has looked at.

A revert on anvil also gives the blocks after it a new coinbase, so that none of them can
be a block the revert removed. anvil keeps the state of each recent block in a queue of
block hashes and never takes a reverted block's hash out of it. Sent again after a
revert, the same transactions (same nonces and signatures; anvil's clock put back to the
snapshot's second, its base fee at its floor after some hundred blocks) mine a block
with the same hash; when the old entry of that hash leaves the queue, it takes the new
block's state with it. With ``--prune-history`` (which
:meth:`Chain.anvil <escrowkit.evm.chain.Chain.anvil>` passes) the state is then gone: a
read of that block a few blocks later fails with ``BlockOutOfRangeError``, and so does an
estimate on "latest", which anvil pins to the head's number before it runs, whenever a
concurrent send mines a block in between. The block a snapshot was taken on is built on
again after each revert, so its state is queued once per revert: the pytest plugin starts
each test on an empty block of its own (:func:`escrowkit.testing.plugin.fresh_snapshot`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from escrowkit.core.errors import InvalidRequest

if TYPE_CHECKING:
    from escrowkit.evm.transports import Backend, Transport
    from escrowkit.evm.watcher import ReceiptWatcher

__all__ = ["DevChain"]


class DevChain:
    """Snapshot, revert, time travel and mining; mixed into Chain, which provides the
    transport, the nonces, :meth:`now` and the two reads these controls make stale."""

    transport: Transport
    watcher: ReceiptWatcher
    backend: Backend
    #: (latest block timestamp, monotonic time read), which :meth:`now` may reuse.
    _seen: tuple[int, float] | None
    #: The fee estimate transactions reuse for a second.
    _fees: object | None
    #: A timestamp pinned for the next block and not used yet (see Sending._estimate_gas).
    _pinned: int | None

    def now(self, max_age: float = 0.0) -> int:
        """The latest block's timestamp (Chain's)."""
        raise NotImplementedError

    def resync_nonces(self) -> None:
        """Forget every sender's next nonce (Chain's)."""
        raise NotImplementedError

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks."""
        for _ in range(blocks):
            self.transport.mine()
        self._seen = None
        self._pinned = None

    def set_next_block_timestamp(self, timestamp: int) -> None:
        """The next block (so the next transaction) gets exactly ``timestamp``.

        It must be later than the latest block. On eth-tester this mines a block at
        ``timestamp - 1`` (that is how its clock moves); on anvil it mines nothing.
        """
        latest = self.now()
        if timestamp <= latest:
            raise InvalidRequest(f"timestamp {timestamp} is not after the latest block {latest}")
        self.transport.set_next_block_timestamp(timestamp)
        self._seen = None
        self._pinned = timestamp

    def time_travel(self, seconds: int) -> int:
        """Move the chain's clock forward by ``seconds`` and mine; returns the new ``now()``."""
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
            raise InvalidRequest(f"time_travel needs a positive int of seconds, got {seconds!r}")
        target = self.now() + seconds
        self.set_next_block_timestamp(target)
        if self.now() != target:
            self.mine()
        self._fees = None
        return self.now()

    def snapshot(self) -> Any:
        """Take a state snapshot; :meth:`revert` goes back to it."""
        return self.transport.snapshot()

    def revert(self, snapshot: Any) -> None:
        """Go back to a snapshot (anvil consumes it: take a new one to revert again).

        On anvil the blocks mined after it get a new coinbase, so that none repeats a
        reverted block's hash (whose state anvil would then drop early; see the module).
        """
        self.transport.revert(snapshot)
        if self.backend == "anvil":
            self.transport.rpc("anvil_setCoinbase", ["0x" + os.urandom(20).hex()])
        self.resync_nonces()
        self.watcher.reset()
        self._fees = None
        self._seen = None
        self._pinned = None
