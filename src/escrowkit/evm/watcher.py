"""One receipt watcher per chain: every pending transaction of the process, resolved
together, from one poll per block.

Whoever waits for a receipt gets a ``concurrent.futures.Future`` from
:meth:`ReceiptWatcher.watch` and sleeps on it (a thread) or awaits it (a coroutine, which
holds no thread while it waits). One daemon thread, started when the first transaction is
watched and gone after a while without any, does the polling:

- it asks for the head block (``eth_blockNumber``); only when the head moved does it ask
  for receipts, and only for the hashes that may be in the new blocks, all in one JSON-RPC
  batch on an HTTP node;
- a hash watched for the first time is looked up at once while the node mines as it
  receives (anvil's default): the watcher learns from its hits whether the chain does, and
  otherwise leaves new hashes to the next new block;
- between blocks it sleeps for ``poll_latency``, twice as long after each poll that saw
  no new block (up to 16 times); once it has seen a few blocks come at a steady interval
  it sleeps through most of it, so a chain with two-second blocks costs a few polls per
  block, however many transactions wait in it.

A poll that fails is tried again on the next one; only when polls keep failing for
``give_up_after`` seconds do the waiting futures get the error (as a ChainError).

A transaction still not mined ``resend_after`` blocks after it was first looked up is
handed to the node again (``resend``: the same signed bytes, so the same hash), and again
every ``resend_after`` blocks: a node or a public mempool may drop what it accepted
(evicted, restarted, a transaction stuck behind a pool's bookkeeping), and an unmined
nonce holds up every later transaction of its sender. A node that still has it answers
"already known", which costs nothing. After a snapshot revert nothing is sent again:
what the revert took back stays gone.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from escrowkit.core.errors import ChainError

if TYPE_CHECKING:
    from web3.types import TxReceipt

__all__ = ["ReceiptWatcher", "WatcherStats"]

logger = logging.getLogger(__name__)

#: The watcher thread ends after this many seconds with nothing to watch.
IDLE_EXIT = 5.0
#: New blocks without a watched transaction before it is sent again (see the module).
RESEND_AFTER = 3


@dataclass
class WatcherStats:
    """What the watcher asked the node (for benchmarks and tests)."""

    head_polls: int = 0
    receipt_requests: int = 0  # batches (or single lookups)
    receipts_asked: int = 0  # hashes asked for, over all requests
    resolved: int = 0
    resent: int = 0  # transactions handed to the node again


@dataclass
class _Entry:
    futures: list[concurrent.futures.Future[Any]] = field(default_factory=list)
    checked_at: int = -1  # the head at the last lookup that did not find it
    fresh: bool = True
    #: The head it was first looked up at, or at its last resend (None: never resend).
    since: int | None = -1


class ReceiptWatcher:
    """Resolves receipts for one chain's transactions (see the module).

    ``head()`` returns the latest block number; ``receipts(hashes)`` the receipts of those
    hashes, None for each one not mined yet.
    """

    def __init__(
        self,
        head: Callable[[], int],
        receipts: Callable[[Sequence[str]], list[TxReceipt | None]],
        *,
        poll_latency: float,
        give_up_after: float = 30.0,
        resend: Callable[[str], bool] | None = None,
        resend_after: int = RESEND_AFTER,
    ) -> None:
        self._head = head
        self._receipts = receipts
        self._resend = resend
        self.resend_after = resend_after
        self.poll_latency = poll_latency
        self.give_up_after = give_up_after
        self.stats = WatcherStats()
        self._cond = threading.Condition()
        self._entries: dict[str, _Entry] = {}
        self._thread: threading.Thread | None = None
        self._seen_head = -1
        self._seen_at = 0.0
        self._interval: float | None = None  # learned time between blocks
        self._instant = 1.0  # how often a fresh hash was already mined (moving average)
        self._failing_since: float | None = None
        self._idle = False  # the thread waits for something to watch
        self._quiet = 0  # polls in a row without a new block
        self._poked = False  # a block was mined since the last poll (DemandMiner says so)

    def watch(self, tx_hash: str) -> concurrent.futures.Future[TxReceipt]:
        """A future that gets ``tx_hash``'s receipt once it is mined."""
        future: concurrent.futures.Future[TxReceipt] = concurrent.futures.Future()
        with self._cond:
            entry = self._entries.get(tx_hash)
            if entry is None:
                entry = self._entries[tx_hash] = _Entry()
            entry.futures.append(future)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="escrowkit-receipts", daemon=True
                )
                self._thread.start()
            elif self._idle or self._instant > 0.3:
                # Idle, or the node mines as it receives: look now, not at the next poll.
                self._cond.notify()
        return future

    def poke(self) -> None:
        """A block was just mined (the chain's own miner says so): poll now, not at the
        next poll time, which may be a backed-off one."""
        with self._cond:
            self._poked, self._quiet = True, 0
            if self._entries:
                self._cond.notify()

    def discard(self, tx_hash: str, future: concurrent.futures.Future[Any]) -> None:
        """Stop resolving ``future`` (its waiter gave up); the hash is forgotten when
        nobody waits for it any more."""
        with self._cond:
            entry = self._entries.get(tx_hash)
            if entry is not None and future in entry.futures:
                entry.futures.remove(future)
                if not entry.futures:
                    del self._entries[tx_hash]

    def reset(self) -> None:
        """The chain went back (a snapshot revert): look every hash up again."""
        with self._cond:
            for entry in self._entries.values():
                entry.checked_at = -1
                entry.since = None  # what the revert took back is not sent again
            self._seen_head, self._interval = -1, None

    @property
    def watching(self) -> int:
        """How many transactions are waited for now."""
        with self._cond:
            return len(self._entries)

    # ---- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        idle_since = time.monotonic()
        while True:
            with self._cond:
                if not self._entries:
                    if time.monotonic() - idle_since > IDLE_EXIT:
                        self._thread = None
                        return
                    self._idle = True
                    self._cond.wait(IDLE_EXIT)
                    self._idle = False
                    continue
                fresh = self._instant > 0.3 and any(e.fresh for e in self._entries.values())
                if not (fresh or self._poked):
                    self._cond.wait(self._sleep())
                self._poked = False
            try:
                self._poll()
            except Exception as exc:
                self._failed(exc)
            else:
                self._failing_since = None
            idle_since = time.monotonic()

    def _sleep(self) -> float:
        """Until the next poll: on a chain with a known block interval, through most of
        what is left of it; else ``poll_latency``, doubled for each poll in a row that
        saw no new block (up to 16 times: a node that slows down costs fewer polls)."""
        interval = self._interval
        backoff = self.poll_latency * (1 << min(self._quiet, 4))
        if interval is None or interval < 5 * self.poll_latency:
            return backoff
        wake_at = self._seen_at + 0.85 * interval
        return max(self.poll_latency, wake_at - time.monotonic())

    def _poll(self) -> None:
        """One head poll; receipts for every hash not looked up at this head yet (new
        hashes, and all of them once the head moved)."""
        head = self._head()
        self.stats.head_polls += 1
        if head > self._seen_head:
            self._new_head(head)
            self._quiet = 0
        else:
            self._quiet += 1
        with self._cond:
            due = [h for h, e in self._entries.items() if e.checked_at < head]
            fresh = {h for h in due if self._entries[h].fresh}
            for tx_hash in fresh:
                self._entries[tx_hash].fresh = False
        if not due:
            return
        found = self._lookup(due, head)
        if fresh:
            hits = len(found & fresh) / len(fresh)
            self._instant = 0.8 * self._instant + 0.2 * hits
        if self._resend is not None:
            self._resend_stuck(head)

    def _resend_stuck(self, head: int) -> None:
        """Send again what stayed unmined for ``resend_after`` blocks (see the module)."""
        stuck = []
        with self._cond:
            for tx_hash, entry in self._entries.items():
                if entry.since is None:
                    continue
                if entry.since < 0 or entry.since > head:  # first seen now, or a reorg
                    entry.since = head
                elif head - entry.since >= self.resend_after:
                    entry.since = head
                    stuck.append(tx_hash)
        assert self._resend is not None
        for tx_hash in stuck:
            try:
                if self._resend(tx_hash):
                    self.stats.resent += 1
                    logger.info("%s not mined after %d blocks: sent again", tx_hash,
                                self.resend_after)  # fmt: skip
            except Exception as exc:  # the next poll tries again
                logger.debug("resending %s failed: %s", tx_hash, exc)

    def _new_head(self, head: int) -> None:
        now = time.monotonic()
        if self._seen_head >= 0 and head == self._seen_head + 1:
            gap = now - self._seen_at
            self._interval = gap if self._interval is None else 0.7 * self._interval + 0.3 * gap
        elif self._seen_head >= 0:
            self._interval = None  # several blocks at once: no steady interval to follow
        self._seen_head, self._seen_at = head, now

    def _lookup(self, hashes: list[str], head: int) -> set[str]:
        """Ask for ``hashes``' receipts at ``head``; resolve those mined; their hashes."""
        receipts = self._receipts(hashes)
        self.stats.receipt_requests += 1
        self.stats.receipts_asked += len(hashes)
        found: set[str] = set()
        with self._cond:
            for tx_hash, receipt in zip(hashes, receipts, strict=True):
                entry = self._entries.get(tx_hash)
                if entry is None:
                    continue
                if receipt is None:
                    entry.checked_at = max(entry.checked_at, head)
                    continue
                found.add(tx_hash)
                del self._entries[tx_hash]
                for future in entry.futures:
                    if not future.done():
                        future.set_result(receipt)
        self.stats.resolved += len(found)
        return found

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        logger.debug("receipt poll failed: %s", exc)
        if now - self._failing_since < self.give_up_after:
            time.sleep(min(1.0, self.poll_latency * 10))
            return
        error = exc if isinstance(exc, ChainError) else ChainError(f"waiting for receipts: {exc}")
        with self._cond:
            entries, self._entries = self._entries, {}
        for entry in entries.values():
            for future in entry.futures:
                if not future.done():
                    future.set_exception(error)
        self._failing_since = None
