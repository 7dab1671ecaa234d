"""Dev-chain controls of a :class:`~escrowkit.evm.chain.Chain`: snapshot and revert, time
and mining, for tests and simulations on eth-tester or anvil.

:class:`DevChain` is mixed into Chain. Each backend does these its own way (eth-tester
through its own API, a node through ``evm_*`` calls): the chain's transport decides.
What is checked here is the same on every backend, and so is what a control makes the
chain forget: the latest block it read, its fee estimate, its senders' next nonces, and
which blocks its receipt watcher has looked at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from escrowkit.core.errors import InvalidRequest

if TYPE_CHECKING:
    from escrowkit.evm.transports import Transport
    from escrowkit.evm.watcher import ReceiptWatcher

__all__ = ["DevChain"]


class DevChain:
    """Snapshot, revert, time travel and mining; mixed into Chain, which provides the
    transport, the nonces, :meth:`now` and the two reads these controls make stale."""

    transport: Transport
    watcher: ReceiptWatcher
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
        """Go back to a snapshot (anvil consumes it: take a new one to revert again)."""
        self.transport.revert(snapshot)
        self.resync_nonces()
        self.watcher.reset()
        self._fees = None
        self._seen = None
        self._pinned = None
