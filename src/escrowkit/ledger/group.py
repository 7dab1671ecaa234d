"""Group commit: threads queue their writes, and one runs all that are queued, in order,
in one transaction (one ``BEGIN IMMEDIATE``, one fsync), buffering inserts and counter
updates into one statement per table (see :class:`~escrowkit.ledger.unit.UnitOfWork`)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from escrowkit.core.errors import EscrowKitError
from escrowkit.ledger.ledger import Ledger

__all__ = ["GroupCommit"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class _Op(Generic[T]):
    """One call waiting in :meth:`Store.run`'s queue."""

    __slots__ = ("done", "error", "fn", "keys", "reservation_ids", "result", "wake")

    def __init__(
        self,
        fn: Callable[[Ledger], T],
        keys: Sequence[tuple[str, str]],
        reservation_ids: Sequence[str],
    ) -> None:
        self.fn = fn
        self.keys = keys
        self.reservation_ids = reservation_ids
        # Held until the call is done or its thread must lead: a bare lock is the
        # cheapest wake-up (an Event builds a Condition and a lock per wait).
        self.wake = threading.Lock()
        self.wake.acquire()
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None


class GroupCommit:
    """The queue of one store. ``write`` opens the store's write transaction; ``lock`` is
    the store's thread lock, held while a group runs."""

    def __init__(
        self,
        write: Callable[[], contextlib.AbstractContextManager[Ledger]],
        lock: threading.RLock,
    ) -> None:
        self._write = write
        self._lock = lock
        self._turn = threading.Lock()
        self._leading = False
        self._queue: list[_Op[Any]] = []

    @property
    def busy(self) -> bool:
        """Whether a thread is running a group now."""
        return self._leading

    @property
    def queued(self) -> int:
        """How many calls wait for the next group."""
        return len(self._queue)

    def run(
        self,
        fn: Callable[[Ledger], T],
        *,
        keys: Sequence[tuple[str, str]] = (),
        reservation_ids: Sequence[str] = (),
    ) -> T:
        """Run ``fn(ledger)`` in a write transaction shared with other threads' calls.

        Group commit: calls waiting for the lock queue up, and whichever thread gets it
        runs every queued call, in order, in one transaction, so one ``BEGIN IMMEDIATE``
        and one commit serve them all. Each call still sees everything the earlier ones
        wrote: the serial order is exactly the queue's.

        ``fn`` may raise an :class:`EscrowKitError` only before it writes (it is handed
        back to its caller and the others go on). Any other exception rolls the batch
        back, and each call is then run again alone, so only the faulty one fails.

        ``keys`` and ``reservation_ids`` name the (agent, idempotency key) pairs ``fn`` will
        look up and
        the reservations it will move: a group reads them all in one query each
        (:meth:`Ledger.prefetch`). They are hints; ``fn`` is right without them.
        """
        op: _Op[T] = _Op(fn, keys, reservation_ids)
        with self._turn:
            self._queue.append(op)
            leading = not self._leading
            self._leading = True
        if not leading:
            # Another thread is running a group: it runs ours next, or hands us the lead.
            op.wake.acquire()
        if not op.done:
            self._lead(op)
        if op.error is not None:
            raise op.error
        return op.result  # type: ignore[return-value]

    def _lead(self, own: _Op[Any]) -> None:
        """Run everything queued as one group; then wake its callers and pass the lead to
        the first caller that queued meanwhile (only the threads that must run wake)."""
        with self._turn:
            batch, self._queue = self._queue, []
        try:
            with self._lock:
                self._run_batch(batch, own)
        finally:
            with self._turn:
                for op in batch:
                    if op.done and op is not own:
                        op.wake.release()
                if self._queue:
                    self._queue[0].wake.release()
                else:
                    self._leading = False

    def _run_batch(self, batch: list[_Op[Any]], own: _Op[Any]) -> None:
        """One transaction for ``batch``; if it fails unexpectedly, each call alone."""
        try:
            self._run_group(batch)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error, batch[0].done = exc, True
                return
            logger.warning("a grouped write failed (%s); running each call alone", exc)
            for index, op in enumerate(batch):
                try:
                    self._run_batch([op], own)
                except BaseException:
                    self._requeue(batch[index:], own)
                    raise
        except BaseException:
            self._requeue(batch, own)
            raise

    def _run_group(self, batch: list[_Op[Any]]) -> None:
        for op in batch:
            op.result, op.error = None, None
        with self._write() as ledger:
            if len(batch) > 1:  # alone, a call's own queries cost the same or less
                ledger.prefetch(
                    [key for op in batch for key in op.keys],
                    [rid for op in batch for rid in op.reservation_ids],
                )
            for op in batch:
                try:
                    op.result = op.fn(ledger)
                except EscrowKitError as exc:
                    op.error = exc
        for op in batch:
            op.done = True

    def _requeue(self, ops: list[_Op[Any]], own: _Op[Any]) -> None:
        """After a KeyboardInterrupt (or the like) in this thread: its own call ends with
        it; the others go back to the head of the queue for the next leader."""
        with self._turn:
            self._queue[:0] = [op for op in ops if op is not own and not op.done]
