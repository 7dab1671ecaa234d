"""Mining on demand: blocks that hold every transaction sent while the last one was mined.

On automine (anvil's default) every transaction gets a block of its own, and anvil 1.7.1
rebuilds the state root from the whole state for each block: on a long-running chain
mining, not executing, is most of anvil's work, and it grows with the chain (BENCHMARKS.md,
"Long run on automine"). A chain from ``Chain.anvil()`` (``mining="demand"``, the
default) runs anvil with ``--no-mining`` and one :class:`DemandMiner` thread instead:

- a send of this process pokes it (:meth:`DemandMiner.poke`); it waits ``gather``
  seconds (a millisecond) for the sends that are on their way, asks the node whether its
  pool holds transactions (``txpool_status``) and, if so, mines one block (``evm_mine``)
  with all of them, and tells the chain's receipt watcher (``mined``), which looks for
  receipts at once instead of at its next, possibly backed-off, poll;
- while that block is mined the next sends queue in the node's pool, so the next block
  takes them all at once: the busier the chain, the fuller its blocks, like a commit group;
- with no poke it still looks every ``idle_poll`` seconds, so a transaction sent by
  another program (``cast send``, a wallet) is mined within that time.

What a user gives up against automine: a transaction is mined a moment after it is
accepted rather than before ``eth_sendRawTransaction`` returns, so code that reads the
receipt at once (rather than waiting for it, as escrowkit does) must wait. Nothing else:
the blocks, receipts and events are the same.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["GATHER", "IDLE_POLL", "DemandMiner"]

logger = logging.getLogger(__name__)

#: Seconds between two looks at the node's pool when nothing of this process was sent.
IDLE_POLL = 0.05
#: Seconds a poke waits for the sends right behind it before the block is mined (16 threads
#: on anvil, pool mode: about 2.1 instead of 2.6 blocks per 5 spends; 200 against 145 - 178
#: spends/s in one window).
GATHER = 0.001


class DemandMiner:
    """Mines a block whenever the node's pool holds transactions (see the module);
    ``mined`` is called after each block."""

    def __init__(
        self,
        rpc: Callable[[str, list[Any]], Any],
        *,
        idle_poll: float = IDLE_POLL,
        gather: float = GATHER,
        mined: Callable[[], None] | None = None,
    ) -> None:
        self._rpc = rpc
        self._mined = mined
        self.idle_poll = idle_poll
        self.gather = gather
        self._cond = threading.Condition()
        self._poked = False
        self._stopped = False
        #: Blocks this miner mined (for benchmarks and tests).
        self.blocks = 0
        self._thread = threading.Thread(target=self._run, name="escrowkit-miner", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """A transaction was handed to the node: mine it (and whatever joins it) soon."""
        with self._cond:
            self._poked = True
            self._cond.notify()

    def stop(self) -> None:
        """End the thread (pending transactions stay in the node's pool)."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=10)

    def _pending(self) -> int:
        pending = self._rpc("txpool_status", [])["pending"]
        return int(pending, 16) if isinstance(pending, str) else int(pending)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._poked and not self._stopped:
                    self._cond.wait(self.idle_poll)
                if self._stopped:
                    return
                poked, self._poked = self._poked, False
            if poked and self.gather:
                time.sleep(self.gather)
            try:
                # Sends poked during the last block are in the pool now; a poke for a
                # transaction that block already took finds the pool empty: no empty block.
                if self._pending():
                    self._rpc("evm_mine", [])
                    self.blocks += 1
                    if self._mined is not None:
                        self._mined()
            except Exception as exc:  # the node went away or hiccuped: try on the next turn
                logger.debug("mining on demand: %s", exc)
